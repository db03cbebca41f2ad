"""Tests of soilfuse.io.geotiff: write_geotiff / open_raster round trips and real DEM rasters."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine

from soilfuse.exceptions import DataError, GridError
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.io.canonical import with_grid
from soilfuse.io.geotiff import open_raster, raster_grid, write_geotiff
from soilfuse.io.gridded import open_gridded

GRIDS = {
    "latlon": Grid.latlon((100.0, 101.2, 30.0, 30.9), 0.1),
    "ease2_36km": Grid.ease2("36km").slice(slice(50, 61), slice(700, 713)),
    "utm50n": Grid.projected("EPSG:32650", (400000.0, 411000.0, 3300000.0, 3308000.0), 1000.0),
}


def lst_stack(grid: Grid, nt: int = 4, seed: int = 0) -> xr.DataArray:
    """MODIS-like daily LST (K) with a cloud gap, on ``grid``."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(250.0, 330.0, (nt, *grid.shape))
    values[1, 2:4, 3:6] = np.nan
    t = pd.date_range("2021-08-15", periods=nt)
    da_ = xr.DataArray(values, dims=("time", "y", "x"), coords={"time": t}, name="lst_day",
                       attrs={"units": "K", "long_name": "daytime LST", "source": "twin", "n": 3})
    return with_grid(da_, grid)


@pytest.mark.parametrize("grid_name", sorted(GRIDS))
def test_write_geotiff__float_roundtrip_exact(tmp_path: Path, grid_name: str) -> None:
    grid = GRIDS[grid_name]
    da_ = lst_stack(grid).astype("float32")
    path = write_geotiff(da_, tmp_path / "lst.tif")
    back = open_raster(path)
    assert Grid.from_dataset(back) == grid
    assert raster_grid(path).transform == grid.transform  # bit-exact transform in the file
    assert raster_grid(path).crs.equals(grid.crs)
    np.testing.assert_array_equal(back["lst_day"].values, da_.values)
    assert back["lst_day"].dtype == np.float32
    np.testing.assert_array_equal(back["time"].values, da_["time"].values)
    attrs = back["lst_day"].attrs
    assert (attrs["units"], attrs["long_name"], attrs["source"], attrs["n"]) == ("K", "daytime LST", "twin", 3)
    assert attrs["standard_name"] == "surface_temperature"  # filled from the registry


@pytest.mark.parametrize(("dtype", "nodata"), [("uint16", 0), ("int16", None)])
def test_write_geotiff__integer_packing_to_scale_precision(tmp_path: Path, dtype: str,
                                                          nodata: int | None) -> None:
    grid = GRIDS["latlon"]
    da_ = lst_stack(grid, nt=5)
    offset = 0.0 if dtype == "uint16" else 290.0
    path = write_geotiff(da_, tmp_path / "lst.tif", dtype=dtype, scale_factor=0.02,
                         add_offset=offset, nodata=nodata)
    with rasterio.open(path) as src:
        assert src.dtypes[0] == dtype
        assert src.nodatavals[0] == (0 if nodata == 0 else -32768)
        assert src.scales == (0.02,) * 5
        assert src.descriptions[0] == "2021-08-15"
        raw = src.read(1)
        assert raw[0, 0] == round((float(da_[0, 0, 0]) - offset) / 0.02)
    back = open_gridded(path)
    got, want = back["lst_day"].values, da_.values
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # packing error is at most half a step (0.01 K) plus float32 rounding near 330 K
    assert np.nanmax(np.abs(got - want)) <= 0.01 + 5e-5
    assert back["lst_day"].attrs["units"] == "K"


def test_write_geotiff__depth_bands_become_layers(tmp_path: Path) -> None:
    grid = GRIDS["utm50n"]
    coords = cf.depth_coords([0, 5, 15], [5, 15, 30])
    clay = xr.DataArray(np.arange(3 * 8 * 11, dtype="float32").reshape(3, 8, 11), dims=("depth", "y", "x"),
                        coords={"depth": coords["depth"], "layer": coords["layer"]}, name="clay")
    path = write_geotiff(with_grid(clay, grid), tmp_path / "clay.tif")
    with rasterio.open(path) as src:
        assert src.descriptions == ("0-5cm", "5-15cm", "15-30cm")
        assert src.units == ("%", "%", "%")
    back = open_raster(path)
    assert back["clay"].dims == ("depth", "y", "x")
    assert back["layer"].values.tolist() == ["0-5cm", "5-15cm", "15-30cm"]
    assert back["depth_bnds"].values.tolist() == [[0, 5], [5, 15], [15, 30]]
    np.testing.assert_array_equal(back["clay"].values, clay.values)


def test_write_geotiff__static_uint8_map_keeps_integers(tmp_path: Path) -> None:
    grid = GRIDS["latlon"]
    lc = with_grid(xr.DataArray(np.arange(108, dtype="uint8").reshape(grid.shape) % 6 + 1,
                                dims=("y", "x"), name="land_cover"), grid)
    back = open_raster(write_geotiff(lc, tmp_path / "lc.tif"))
    assert back["land_cover"].dtype == np.uint8
    np.testing.assert_array_equal(back["land_cover"].values, lc.values)


def test_write_geotiff__packing_errors_name_the_fix(tmp_path: Path) -> None:
    da_ = lst_stack(GRIDS["latlon"])
    with pytest.raises(DataError, match=r"outside int16.*larger scale_factor"):
        write_geotiff(da_, tmp_path / "a.tif", scale_factor=0.001)
    with pytest.raises(DataError, match="pack to the nodata value"):
        write_geotiff(da_.fillna(300.0) * 0 + 300.0, tmp_path / "b.tif", dtype="uint16",
                      scale_factor=1.0, nodata=300)
    with pytest.raises(GridError, match="dims"):
        write_geotiff(da_.expand_dims(band=2), tmp_path / "c.tif")
    assert list(tmp_path.iterdir()) == []


def test_write_geotiff__written_block_by_block_with_the_same_values_and_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import soilfuse.io.geotiff as geotiff

    grid = Grid.latlon((100.0, 103.0, 30.0, 33.0), 0.01)  # 300 x 300: two 256-row strips
    da_ = lst_stack(grid, nt=6)
    monkeypatch.setattr(geotiff, "_WRITE_BLOCK_BYTES", 300 * 256 * 8)  # one band of 256 rows
    assert geotiff._blocks_to_write(da_.data, 300, 300).chunks == ((1,) * 6, (256, 44), (300,))
    whole = write_geotiff(da_, tmp_path / "numpy.tif", dtype="uint16", scale_factor=0.02, nodata=0)
    lazy = write_geotiff(da_.chunk({"time": 4, "y": 70, "x": 130}), tmp_path / "dask.tif", dtype="uint16",
                         scale_factor=0.02, nodata=0)
    again = write_geotiff(da_.chunk({"time": 4, "y": 70, "x": 130}), tmp_path / "again.tif", dtype="uint16",
                          scale_factor=0.02, nodata=0)
    a, b = open_raster(whole)["lst_day"], open_raster(lazy)["lst_day"]
    xr.testing.assert_identical(a, b)
    np.testing.assert_allclose(a.values, da_.values, atol=0.01)
    assert lazy.read_bytes() == again.read_bytes()  # blocks go to the file in a fixed order


def test_write_geotiff__failure_midway_leaves_no_file(tmp_path: Path) -> None:
    da_ = lst_stack(GRIDS["latlon"]).chunk({"time": 1})

    def fail_third(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info is not None and block_info[None]["chunk-location"][0] == 2:
            msg = "simulated failure"
            raise OSError(msg)
        return block

    broken = da_.copy(data=da.map_blocks(fail_third, da_.data, dtype=da_.dtype))
    with pytest.raises(OSError, match="simulated failure"):
        write_geotiff(broken, tmp_path / "x.tif")
    assert list(tmp_path.iterdir()) == []


def test_open_raster__external_file_scale_offset_nodata_and_named_bands(tmp_path: Path) -> None:
    """A file not written by soilfuse: per-band scales, nodata, identifier band names."""
    path = tmp_path / "refl.tif"
    raw = np.array([[[100, -9999], [2500, 0]], [[4000, 5], [-9999, 1]]], dtype="int16")
    transform = Affine(500.0, 0, 600000.0, 0, -500.0, 5100000.0)
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 2, "dtype": "int16",
               "crs": "EPSG:32633", "transform": transform,
               "nodata": -9999}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(raw)
        dst.scales = (0.0001, 0.001)
        dst.offsets = (0.0, -0.5)
        dst.set_band_description(1, "red")
        dst.set_band_description(2, "nir")
    back = open_raster(path)
    assert sorted(map(str, back.data_vars)) == ["nir", "red"]
    np.testing.assert_allclose(back["red"].values, [[0.01, np.nan], [0.25, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(back["nir"].values, [[3.5, -0.495], [np.nan, -0.499]], rtol=1e-6)
    assert Grid.from_dataset(back) == Grid("EPSG:32633", transform, (2, 2))
    single = open_raster(path, variable="refl")
    assert single["refl"].dims == ("band", "y", "x")
    assert single["band"].values.tolist() == [1, 2]


def test_open_raster__lazy_with_chunks(tmp_path: Path) -> None:
    grid = Grid.latlon((0.0, 3.0, 0.0, 3.0), 0.01)
    path = write_geotiff(lst_stack(grid, nt=3), tmp_path / "big.tif", dtype="uint16",
                         scale_factor=0.02, nodata=0)

    def no_compute(*args: object, **kwargs: object) -> None:
        msg = "open_raster computed a Dask graph"
        raise RuntimeError(msg)

    with dask.config.set(scheduler=no_compute):
        back = open_raster(path, chunks={"time": 1, "y": 128, "x": 256})
    assert isinstance(back["lst_day"].data, da.Array)
    assert back["lst_day"].chunks == ((1, 1, 1), (128, 128, 44), (256, 44))
    auto = open_raster(path)
    assert isinstance(auto["lst_day"].data, da.Array)
    assert float(auto["lst_day"][2, 299, 299]) == pytest.approx(
        float(lst_stack(grid, nt=3)[2, 299, 299]), abs=0.0101)


# ---------------------------------------------------------------------- real DEMs
# (file, variable, shape (ny, nx), README bounds (west, east, south, north), row, col)
REAL_DEMS = [
    ("fort_worth_3arcsec/dem.tif", "dem", (359, 367), (-97.485, -97.179, 32.5225, 32.8217), 10, 20),
    ("srtm30_himalaya/himalaya.tif", "himalaya", (877, 1875), (78.3167, 93.9417, 24.2333, 31.5417), 400, 900),
    ("gmted2010_durham_nc/be30_grd/be30_grd", "be30_grd", (87, 123), (-79.2751, -78.2501, 35.5165, 36.2415), 40, 60),
]


@pytest.mark.parametrize(("rel", "name", "shape", "bounds", "row", "col"), REAL_DEMS)
def test_open_gridded__real_dem_rasters(real_data: Path, rel: str, name: str, shape: tuple[int, int],
                                        bounds: tuple[float, ...], row: int, col: int) -> None:
    path = real_data / "dem" / rel
    ds = open_gridded(path)
    assert list(ds.data_vars) == [name]
    assert ds[name].shape == shape
    grid = Grid.from_dataset(ds)
    assert grid.crs.to_epsg() == 4326  # OGC:CRS84 (ENVI, AAIGrid) reported as EPSG:4326
    np.testing.assert_allclose(grid.bounds, bounds, atol=2e-4)
    with rasterio.open(path) as src:  # independent read of one cell
        expected = float(src.read(1, window=((row, row + 1), (col, col + 1)))[0, 0])
        x, y = src.xy(row, col)
    assert float(ds[name][row, col]) == expected
    assert float(ds[name].sel(x=x, y=y, method="nearest")) == expected
    assert not bool(ds[name].isnull().any())


def test_open_raster__real_envi_value_and_range(real_data: Path) -> None:
    ds = open_raster(real_data / "dem" / "srtm30_himalaya" / "himalaya.tif", chunks=None)
    elevation = ds["himalaya"]
    assert elevation.dtype == np.int16  # no nodata, no scaling: integers kept
    assert (int(elevation.min()), int(elevation.max())) == (-3, 8685)  # README value range
