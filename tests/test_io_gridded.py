"""Tests of soilfuse.io.gridded: open_gridded, write_zarr, write_netcdf, regions and resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import MissingVariableError, SoilfuseError, UnsupportedFileError
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.io.canonical import with_grid
from soilfuse.io.gridded import is_complete, open_gridded, write_netcdf, write_zarr

GRIDS = {
    "latlon": Grid.latlon((100.0, 101.2, 30.0, 30.9), 0.1),
    "ease2_36km": Grid.ease2("36km").slice(slice(50, 61), slice(700, 713)),
    "utm50n": Grid.projected("EPSG:32650", (400000.0, 411000.0, 3300000.0, 3308000.0), 1000.0),
}


class CountingScheduler:
    """Dask scheduler that counts computes and fails beyond ``max_computes`` (xarray's idea)."""

    def __init__(self, max_computes: int = 0) -> None:
        self.count = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.count += 1
        if self.count > self.max_computes:
            msg = f"Too many Dask computes: {self.count} > {self.max_computes}."
            raise RuntimeError(msg)
        return dask.get(dsk, keys, **kwargs)


def make_dataset(grid: Grid, nt: int = 6, *, layered: bool = False, seed: int = 0) -> xr.Dataset:
    """Soil moisture (optionally with two layers), a static map and a NaN, on ``grid``."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2020-01-01", periods=nt)
    shape: tuple[int, ...] = (nt, 2, *grid.shape) if layered else (nt, *grid.shape)
    dims = ("time", "depth", "y", "x") if layered else ("time", "y", "x")
    sm = rng.uniform(0.05, 0.45, shape).astype("float32")
    sm.flat[3] = np.nan
    ds = xr.Dataset(
        {
            "sm": (dims, sm, {"units": "m3 m-3", "comment": "synthetic"}),
            "elevation": (("y", "x"), rng.uniform(0, 3000, grid.shape), {"units": "m"}),
            "land_cover": (("y", "x"), rng.integers(1, 7, grid.shape).astype("uint8")),
        },
        coords={"time": t},
        attrs={"title": "test product", "license": "CC0-1.0"},
    )
    if layered:
        ds = ds.assign_coords(cf.depth_coords([0, 5], [5, 15]))
    return with_grid(ds, grid)


def failing_block(fail_at: int) -> Callable[..., np.ndarray]:
    def fn(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info is not None and block_info[None]["chunk-location"][0] == fail_at:
            msg = "simulated failure in the middle of a write"
            raise OSError(msg)
        return block

    return fn


def assert_same(back: xr.Dataset, ds: xr.Dataset, grid: Grid) -> None:
    assert Grid.from_dataset(back) == grid
    for name in ds.data_vars:
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].dtype == ds[name].dtype
        assert back[name].dims == ds[name].dims
    assert back["sm"].attrs["units"] == "m3 m-3"
    assert back["sm"].attrs["comment"] == "synthetic"
    assert back["sm"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert back["sm"].attrs["grid_mapping"] == "spatial_ref"
    assert back["elevation"].attrs["units"] == "m"
    assert back.attrs["Conventions"] == "CF-1.10, ACDD-1.3"
    assert back.attrs["title"] == "test product"
    assert back.attrs["license"] == "CC0-1.0"
    assert back["time"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(back["time"].values, ds["time"].values)


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@pytest.mark.parametrize("backend", ["numpy", "dask"])
def test_write_zarr__roundtrip_keeps_grid_values_attrs(tmp_path: Path, grid_name: str, backend: str) -> None:
    grid = GRIDS[grid_name]
    ds = make_dataset(grid)
    src = ds.chunk({"time": 4, "y": 3, "x": 5}) if backend == "dask" else ds
    path = write_zarr(src, tmp_path / "p.zarr", chunks={"time": 4, "y": 4, "x": 6})
    assert (path / "zarr.json").exists()
    assert json.loads((path / "zarr.json").read_text())["zarr_format"] == 3
    back = open_gridded(path)
    assert_same(back, ds, grid)
    assert back["sm"].encoding["chunks"] == (4, 4, 6)
    assert back.attrs["geospatial_lat_max"] == pytest.approx(grid.lonlat()[1].max(), abs=0.6)


@pytest.mark.parametrize("grid_name", sorted(GRIDS))
@pytest.mark.parametrize("engine", ["h5netcdf", "netcdf4"])
def test_write_netcdf__roundtrip_keeps_grid_values_attrs(tmp_path: Path, grid_name: str, engine: str) -> None:
    grid = GRIDS[grid_name]
    ds = make_dataset(grid)
    path = write_netcdf(ds.chunk({"time": 5}), tmp_path / "p.nc", engine=engine)  # type: ignore[arg-type]
    back = open_gridded(path)
    assert_same(back, ds, grid)
    with netCDF4.Dataset(path) as nc:
        assert nc.data_model == "NETCDF4"
        assert nc["sm"].grid_mapping == "spatial_ref"
        assert "crs_wkt" in nc["spatial_ref"].ncattrs()


def test_write_netcdf__time_chunks_divide_series_and_zlib(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["latlon"], nt=365)
    path = write_netcdf(ds, tmp_path / "year.nc", compression="zlib")
    with netCDF4.Dataset(path) as nc:
        assert nc["sm"].chunking() == [73, 9, 12]  # 365 = 5 x 73: no padded chunk
        assert nc["sm"].filters()["zlib"] is True
        assert nc["time"].units == "days since 1970-01-01"
    np.testing.assert_array_equal(open_gridded(path)["sm"].values, ds["sm"].values)


@pytest.mark.parametrize("fmt", ["zarr", "netcdf"])
def test_write_zarr__layered_depth_bnds_roundtrip(tmp_path: Path, fmt: str) -> None:
    grid = GRIDS["ease2_36km"]
    ds = make_dataset(grid, layered=True)
    path = (write_zarr(ds, tmp_path / "l.zarr") if fmt == "zarr"
            else write_netcdf(ds, tmp_path / "l.nc"))
    back = open_gridded(path)
    assert_same(back, ds, grid)
    assert back["sm"].dims == ("time", "depth", "y", "x")
    assert back["depth"].values.tolist() == [2.5, 10.0]
    assert back["depth_bnds"].values.tolist() == [[0.0, 5.0], [5.0, 15.0]]
    assert back["layer"].values.tolist() == ["0-5cm", "5-15cm"]
    assert back["depth"].attrs["units"] == "cm"
    assert back["depth"].attrs["positive"] == "down"
    assert not isinstance(back["layer"].data, da.Array)


@pytest.mark.parametrize(
    ("dask_chunks", "disk_chunks"),
    [({"time": 5, "y": 4, "x": 7}, {"time": 3, "y": 5, "x": 4}),  # misaligned, non-divisible
     ({"time": 1, "y": 2, "x": 3}, {"time": 6, "y": 9, "x": 12}),  # many small -> one chunk
     ({"time": 6, "y": 9, "x": 12}, {"time": 4, "y": 2, "x": 5})],  # one -> many
)
def test_write_zarr__awkward_chunkings(tmp_path: Path, dask_chunks: dict[str, int],
                                       disk_chunks: dict[str, int]) -> None:
    ds = make_dataset(GRIDS["latlon"])
    path = write_zarr(ds.chunk(dask_chunks), tmp_path / "c.zarr", chunks=disk_chunks)
    back = open_gridded(path, chunks={"time": 4, "y": 7, "x": 5})
    assert back["sm"].encoding["chunks"] == tuple(disk_chunks[d] for d in ("time", "y", "x"))
    assert back["sm"].chunks == ((4, 2), (7, 2), (5, 5, 2))
    np.testing.assert_array_equal(back["sm"].values, ds["sm"].values)


# ---------------------------------------------------------------------- opening
def count_backend_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Record the shape of every array the file backends are asked to read."""
    import rioxarray._io
    from xarray.backends import h5netcdf_, netCDF4_, zarr

    reads: list[tuple[int, ...]] = []
    for cls in (zarr.ZarrArrayWrapper, netCDF4_.NetCDF4ArrayWrapper,
                h5netcdf_.H5NetCDFArrayWrapper, rioxarray._io.RasterioArrayWrapper):
        original = cls.__getitem__

        def wrapped(self: Any, key: Any, _original: Any = original) -> Any:
            reads.append(tuple(self.shape))
            return _original(self, key)

        monkeypatch.setattr(cls, "__getitem__", wrapped)
    return reads


@pytest.mark.parametrize("fmt", ["zarr", "netcdf", "geotiff"])
def test_open_gridded__is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    from soilfuse.io.geotiff import write_geotiff

    ds = make_dataset(GRIDS["utm50n"], layered=True)
    if fmt == "geotiff":  # packed integers with nodata: decoding must stay lazy too
        ds = ds.isel(time=0, drop=True)
        path = write_geotiff(ds["sm"], tmp_path / "z.tif", scale_factor=1e-4, nodata=-1)
    else:
        path = (write_zarr(ds, tmp_path / "z.zarr", chunks={"time": 2}) if fmt == "zarr"
                else write_netcdf(ds, tmp_path / "z.nc"))
    reads = count_backend_reads(monkeypatch)
    counter = CountingScheduler(max_computes=0)
    with dask.config.set(scheduler=counter):
        back = open_gridded(path)
        subset = back["sm"].isel(time=slice(1, 3)).mean("depth") if fmt != "geotiff" else back["sm"]
    assert counter.count == 0  # no Dask compute ...
    data_shapes = {ds[name].shape for name in ds.data_vars}
    assert not data_shapes & set(reads)  # ... and no data read, only coordinates
    assert isinstance(back["sm"].data, da.Array)
    assert isinstance(subset.data, da.Array)
    expected = ds["sm"].isel(time=slice(1, 3)).mean("depth") if fmt != "geotiff" else ds["sm"]
    np.testing.assert_allclose(subset.values, expected.values, atol=5e-5)


def test_open_gridded__chunks_none_is_numpy_backed(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["latlon"])
    back = open_gridded(write_zarr(ds, tmp_path / "n.zarr"), chunks=None, variables=["sm"])
    assert list(back.data_vars) == ["sm"]
    assert back["sm"].chunks is None
    assert float(back["sm"][1, 2, 3]) == float(ds["sm"][1, 2, 3])


def test_open_gridded__netcdf3_south_up_0_360_is_canonicalised(tmp_path: Path) -> None:
    lat = np.arange(-1.0, 1.01, 0.5)
    lon = np.arange(0.0, 360.0, 90.0)
    values = np.arange(lat.size * lon.size, dtype="float32").reshape(1, lat.size, lon.size)
    raw = xr.Dataset(
        {"swvl1": (("valid_time", "latitude", "longitude"), values, {"units": "m**3 m**-3"})},
        coords={"valid_time": [np.datetime64("2010-01-01T00", "ns")], "latitude": lat, "longitude": lon},
    )
    path = tmp_path / "era5_like.nc"
    raw.to_netcdf(path, format="NETCDF3_64BIT", engine="netcdf4")
    assert path.read_bytes()[:3] == b"CDF"
    back = open_gridded(path)
    assert back["swvl1"].dims == ("time", "y", "x")
    assert back["y"].values.tolist() == [1.0, 0.5, 0.0, -0.5, -1.0]
    assert back["x"].values.tolist() == [-180.0, -90.0, 0.0, 90.0]
    # north-west cell: latitude 1.0 (row 4 in the file), longitude 180 (column 2)
    assert float(back["swvl1"][0, 0, 0]) == values[0, 4, 2]
    assert Grid.from_dataset(back).crs.to_epsg() == 4326


def test_open_gridded__real_era5_global(real_data: Path) -> None:
    path = real_data / "era5" / "global" / "ERA5_AN_20100101_0000.nc"
    back = open_gridded(path, variables=["swvl1"])
    assert back["swvl1"].shape == (721, 1440)  # one analysis time, stored without a time dim
    assert (float(back["x"].min()), float(back["x"].max())) == (-180.0, 179.75)
    assert (float(back["y"][0]), float(back["y"][-1])) == (90.0, -90.0)
    with netCDF4.Dataset(path) as nc:
        lat = nc["latitude"][:]
        lon = nc["longitude"][:]
        i = int(np.argmin(np.abs(lat - 44.5)))
        j = int(np.argmin(np.abs(lon - 359.25)))
        expected = float(nc["swvl1"][..., i, j].squeeze())
    assert float(back["swvl1"].sel(y=44.5, x=-0.75)) == pytest.approx(expected, rel=1e-6)


def test_open_gridded__missing_variable_and_unsupported_inputs(tmp_path: Path) -> None:
    path = write_zarr(make_dataset(GRIDS["latlon"]), tmp_path / "v.zarr")
    with pytest.raises(MissingVariableError, match=r"\['smx'\].*'elevation'"):
        open_gridded(path, variables=["smx"])
    (tmp_path / "folder").mkdir()
    with pytest.raises(UnsupportedFileError, match="not a Zarr store"):
        open_gridded(tmp_path / "folder")
    bad = tmp_path / "junk.nc"
    bad.write_bytes(b"\x0e\x03\x13\x01 not netcdf")
    with pytest.raises(UnsupportedFileError, match="neither netCDF3 nor HDF5"):
        open_gridded(bad)
    with pytest.raises(FileNotFoundError):
        open_gridded(tmp_path / "nothing.nc")


def test_open_gridded__zarr_v2_and_h5_suffix(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["utm50n"])
    write_netcdf(ds, tmp_path / "a.nc").rename(tmp_path / "a.h5")
    v2 = tmp_path / "v2.zarr"
    ds.to_zarr(v2, zarr_format=2, consolidated=True)
    for path in (tmp_path / "a.h5", v2):
        back = open_gridded(path)
        assert Grid.from_dataset(back) == GRIDS["utm50n"]
        np.testing.assert_array_equal(back["sm"].values, ds["sm"].values)
    assert (v2 / ".zgroup").exists()
    with pytest.raises(SoilfuseError, match="chunks must be"):
        open_gridded(v2, chunks="big")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- atomic writes
def test_write_zarr__failure_midway_leaves_previous_store(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["latlon"])
    path = write_zarr(ds, tmp_path / "a.zarr", chunks={"time": 2})
    broken = ds.copy()
    sm = ds["sm"].chunk({"time": 2}).data
    broken["sm"] = (ds["sm"].dims, da.map_blocks(failing_block(2), sm + 1, dtype=sm.dtype))
    with pytest.raises(OSError, match="simulated failure"):
        write_zarr(broken, path, chunks={"time": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]  # no temporaries left
    np.testing.assert_array_equal(open_gridded(path)["sm"].values, ds["sm"].values)
    with pytest.raises(OSError, match="simulated failure"):
        write_zarr(broken, tmp_path / "new.zarr", chunks={"time": 2})
    assert not (tmp_path / "new.zarr").exists()


def test_write_netcdf__failure_midway_leaves_no_file(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["latlon"])
    sm = ds["sm"].chunk({"time": 2}).data
    ds["sm"] = (ds["sm"].dims, da.map_blocks(failing_block(1), sm, dtype=sm.dtype))
    with pytest.raises(OSError, match="simulated failure"):
        write_netcdf(ds, tmp_path / "f.nc")
    assert list(tmp_path.iterdir()) == []


def test_write_zarr__mode_w_minus_refuses_existing(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["latlon"])
    path = write_zarr(ds, tmp_path / "x.zarr", mode="w-")
    with pytest.raises(FileExistsError, match="mode='w'"):
        write_zarr(ds, path, mode="w-")


def test_write_zarr__append_time_updates_coverage(tmp_path: Path) -> None:
    ds = make_dataset(GRIDS["latlon"], nt=6)
    path = write_zarr(ds.isel(time=slice(0, 4)), tmp_path / "ap.zarr", chunks={"time": 2})
    write_zarr(ds.isel(time=slice(4, 6)), path, append_dim="time", attrs={"product_version": "2"})
    back = open_gridded(path)
    np.testing.assert_array_equal(back["sm"].values, ds["sm"].values)
    np.testing.assert_array_equal(back["elevation"].values, ds["elevation"].values)
    assert back.attrs["time_coverage_end"] == "2020-01-06T00:00:00Z"
    assert back.attrs["product_version"] == "2"
    assert is_complete(path)
