"""Tests of the DEM reader (soilfuse.io.products.dem)."""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import rasterio
from affine import Affine

from soilfuse.exceptions import DataError, UnitsError
from soilfuse.grid import Grid
from soilfuse.io.products.dem import raster_chunks, read_dem

DEMS = {
    "dem/fort_worth_3arcsec/dem.tif": ((359, 367), (147.0, 298.0)),
    "dem/srtm3_hintereisferner/hef_srtm.tif": ((284, 384), (1052.0, 3727.0)),
    "dem/srtm30_himalaya/himalaya.tif": ((877, 1875), (-3.0, 8685.0)),
    "dem/gmted2010_durham_nc/be30_grd/be30_grd": ((87, 123), (39.0, 247.0)),
    "dem/gmted2010_durham_nc/be75_grd/be75_grd": ((345, 488), (34.0, 261.0)),
    "dem/gmted2010_durham_nc/ds30_grd/ds30_grd": ((87, 123), (34.0, 256.0)),
}


@pytest.mark.parametrize("name", sorted(DEMS))
def test_read_dem__real_files_match_rasterio(real_data: Path, name: str) -> None:
    shape, (lo, hi) = DEMS[name]
    ds = read_dem(real_data / name)
    elev = ds["elevation"]
    assert elev.dims == ("y", "x") and elev.shape == shape
    assert elev.attrs["units"] == "m" and elev.dtype == np.float32
    assert float(elev.min()) == lo and float(elev.max()) == hi
    grid = Grid.from_dataset(ds)
    assert grid.crs.to_epsg() == 4326  # OGC:CRS84 / ESRI WGS 84 reported as EPSG:4326
    with rasterio.open(real_data / name) as src:
        raw = src.read(1)
        assert grid.bounds == pytest.approx(
            (src.bounds.left, src.bounds.right, src.bounds.bottom, src.bounds.top), abs=1e-7)
    for r, c in ((0, 0), (shape[0] // 2, shape[1] // 3), (shape[0] - 1, shape[1] - 1)):
        assert float(elev[r, c]) == float(raw[r, c])
    # x is longitude, increasing; y is latitude, decreasing
    assert float(ds["x"][1] - ds["x"][0]) > 0 and float(ds["y"][1] - ds["y"][0]) < 0


def test_read_dem__sidecar_resolves_to_raster_and_lazy(real_data: Path) -> None:
    ds = read_dem(real_data / "dem/srtm30_himalaya/himalaya.tif.hdr", chunks={"y": 300, "x": 500})
    assert isinstance(ds["elevation"].data, dsa.Array)
    assert ds["elevation"].chunks == ((300, 300, 277), (500, 500, 500, 375))
    # Mount Everest region (27.99 N, 86.93 E) is among the highest cells
    peak = float(ds["elevation"].sel(y=27.99, x=86.93, method="nearest").compute())
    assert peak > 7000.0
    prj = read_dem(real_data / "dem/gmted2010_durham_nc/be30_grd/be30_grd.prj")
    assert prj["elevation"].shape == (87, 123)


def _write(path: Path, data: np.ndarray, *, nodata: float | None, units: str | None = None) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[-1], height=data.shape[-2],
                       count=1 if data.ndim == 2 else data.shape[0], dtype=data.dtype.name,
                       crs="EPSG:4326", transform=Affine(0.01, 0, 10.0, 0, -0.01, 46.0),
                       nodata=nodata) as dst:
        dst.write(data if data.ndim == 3 else data[None])
        if units:
            dst.set_band_unit(1, units)


def test_read_dem__nodata_units_and_bands(tmp_path: Path) -> None:
    data = np.array([[100, -32768], [250, 300]], dtype="int16")
    _write(tmp_path / "dem.tif", data, nodata=-32768)
    ds = read_dem(tmp_path / "dem.tif")
    assert np.isnan(float(ds["elevation"][0, 1]))
    assert float(ds["elevation"][1, 0]) == 250.0
    _write(tmp_path / "dem_km.tif", np.array([[1.5, 2.0], [0.1, 0.0]], dtype="float32"),
           nodata=None, units="km")
    assert float(read_dem(tmp_path / "dem_km.tif")["elevation"][0, 0]) == pytest.approx(1500.0)
    _write(tmp_path / "dem_ft.tif", np.ones((2, 2), dtype="float32"), nodata=None, units="ft")
    with pytest.raises(UnitsError):
        read_dem(tmp_path / "dem_ft.tif")
    _write(tmp_path / "two.tif", np.ones((2, 2, 2), dtype="float32"), nodata=None)
    with pytest.raises(DataError, match="single-band"):
        read_dem(tmp_path / "two.tif")


def test_raster_chunks__forms() -> None:
    assert raster_chunks(None) is None
    assert raster_chunks(256) == {"y": 256, "x": 256}
    assert raster_chunks({"y": 10}) == {"y": 10}
    assert raster_chunks("auto") == "auto"
