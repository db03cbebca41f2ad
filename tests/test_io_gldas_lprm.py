"""Tests of soilfuse.io.products.gldas and .lprm on the real GLDAS and AMSR2 LPRM files."""

from __future__ import annotations

from pathlib import Path

import dask
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import ConfigError, MissingVariableError, UnitsError
from soilfuse.io.products import read_gldas, read_lprm
from soilfuse.io.products.gldas import grib_layer, water_content_to_volumetric

GLDAS21 = "gldas/noah_v2.1_netcdf_2016-01-01"
GLDAS1 = "gldas/noah_v1_grib_2015-01-01"
LPRM = "amsr2/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"
FR_AQUI = (-0.727, 44.467)
REMEDHUS = (-5.490, 41.349)


def _no_compute(*args: object, **kwargs: object) -> None:
    msg = "a Dask computation ran while only a lazy result was expected"
    raise AssertionError(msg)


def _gldas21_raw(folder: Path, name: str, lon: float, lat: float) -> np.ndarray:
    """Raw values (kg m-2) of ``name`` at the cell of (lon, lat) in every 3-hourly file."""
    values = []
    for path in sorted(folder.glob("*.nc4")):
        with netCDF4.Dataset(path) as nc:
            row = int(np.argmin(np.abs(nc["lat"][:] - lat)))
            col = int(np.argmin(np.abs(nc["lon"][:] - lon)))
            values.append(float(nc[name][0, row, col]))
    return np.array(values)


# ---------------------------------------------------------------------------- GLDAS
def test_read_gldas__v21_kg_m2_to_m3_m3(real_data: Path) -> None:
    folder = real_data / GLDAS21
    top = _gldas21_raw(folder, "SoilMoi0_10cm_inst", *FR_AQUI)
    sub = _gldas21_raw(folder, "SoilMoi10_40cm_inst", *FR_AQUI)
    assert top.size == 4 and np.isfinite(top).all()
    region = (-2.0, 1.0, 43.0, 46.0)
    native = read_gldas(folder, daily=False, region=region)
    assert pd.DatetimeIndex(native["time"].values).hour.tolist() == [3, 9, 15, 21]
    cell = native["sm"].sel(x=FR_AQUI[0], y=FR_AQUI[1], method="nearest")
    np.testing.assert_allclose(cell.sel(depth=5.0).values, top / 100.0, rtol=1e-6)  # 0-10 cm
    np.testing.assert_allclose(cell.sel(depth=25.0).values, sub / 300.0, rtol=1e-6)  # 10-40 cm
    assert native["layer"].values.tolist() == ["0-10cm", "10-40cm"]
    assert native["depth_bnds"].values.tolist() == [[0.0, 10.0], [10.0, 40.0]]
    assert native["sm"].attrs["units"] == "m3 m-3"
    # 4 of the 8 three-hourly steps: a daily mean needs min_coverage <= 0.5
    assert read_gldas(folder, region=region).sizes["time"] == 0
    with dask.config.set(scheduler=_no_compute):
        daily = read_gldas(folder, region=region, min_coverage=0.5, chunks={"time": 1})
    assert isinstance(daily["sm"].data, dask.array.Array)
    value = daily["sm"].sel(x=FR_AQUI[0], y=FR_AQUI[1], depth=5.0, method="nearest")
    assert float(value.isel(time=0)) == pytest.approx(top.mean() / 100.0, rel=1e-6)
    assert "depth_bnds" in daily.coords


def test_read_gldas__v1_grib_four_layers(real_data: Path) -> None:
    import eccodes  # after soilfuse (pyproj) is loaded

    folder = real_data / GLDAS1
    ds = read_gldas(folder, daily=False)
    assert ds["st"].sizes["depth"] == 4
    assert ds["layer"].values.tolist() == ["0-10cm", "10-40cm", "40-100cm", "100-200cm"]
    assert pd.DatetimeIndex(ds["time"].values).hour.tolist() == [0, 12]
    first = ds["st"].isel(time=0)
    # minima and maxima listed per layer in the NASA granule metadata (.grb.xml) of
    # GLDAS_NOAH025SUBP_3H.A2015001.0000: TSoil1_0-10_cm 225.03-311.32 K ...
    # TSoil4_100-200_cm 224.72-306.41 K
    np.testing.assert_allclose(first.min(("y", "x")).values, [225.03, 224.90, 224.84, 224.72],
                               atol=0.01)
    np.testing.assert_allclose(first.max(("y", "x")).values, [311.32, 309.42, 308.32, 306.41],
                               atol=0.01)
    # Siberian winter: colder at the surface, warmer with depth
    profile = first.sel(x=130.0, y=62.0, method="nearest").values
    assert (np.diff(profile) > 0).all()
    # the 0-10 cm layer is the message with bottomLevel code 4, read here with eccodes
    path = sorted(folder.glob("*.0000.*.grb"))[0]
    with path.open("rb") as fh:
        while (handle := eccodes.codes_grib_new_from_file(fh)) is not None:
            if eccodes.codes_get(handle, "bottomLevel") == 4:
                raw = eccodes.codes_get_values(handle).reshape(600, 1440)  # south-up rows
            eccodes.codes_release(handle)
    row, col = round((62.125 + 59.875) / 0.25), round((130.125 + 179.875) / 0.25)
    value = float(first.sel(depth=5.0, y=62.125, x=130.125))
    assert value == pytest.approx(raw[row, col], abs=1e-4)
    assert np.nanmin(ds["st"].values) > 200.0 and np.nanmax(ds["st"].values) < 330.0
    with dask.config.set(scheduler=_no_compute):
        lazy = read_gldas(folder, daily=False, region=(120.0, 140.0, 50.0, 70.0), chunks={})
    assert isinstance(lazy["st"].data, dask.array.Array)
    np.testing.assert_array_equal(lazy["st"].values, ds["st"].sel(x=slice(120, 140),
                                                                  y=slice(70, 50)).values)


def test_read_gldas__declared_units_and_missing_variable(real_data: Path) -> None:
    folder = real_data / GLDAS21
    with pytest.raises(UnitsError, match=r"declared as 'm3 m-3'.*'kg m-2'"):
        read_gldas(folder, daily=False, units={"SoilMoi0_10cm_inst": "m3 m-3"})
    with pytest.raises(MissingVariableError, match="st"):
        read_gldas(folder, daily=False, variables=["st"])


def test_water_content_to_volumetric__layer_thickness() -> None:
    assert water_content_to_volumetric(25.0, 10.0) == pytest.approx(0.25)
    assert water_content_to_volumetric(90.0, 30.0) == pytest.approx(0.30)
    assert grib_layer(0, 4) == (0.0, 10.0) and grib_layer(0, 1) == (100.0, 200.0)
    assert grib_layer(10, 40) == (10.0, 40.0)


# ---------------------------------------------------------------------------- LPRM
def test_read_lprm__orientation_and_percent(real_data: Path) -> None:
    path = real_data / LPRM
    with netCDF4.Dataset(path) as nc:
        raw = np.ma.filled(nc["soil_moisture_c1"][:].astype("float64"), np.nan)  # (lon, lat)
        raw_err = np.ma.filled(nc["soil_moisture_c1_error"][:].astype("float64"), np.nan)
        raw_x = np.ma.filled(nc["soil_moisture_x"][:].astype("float64"), np.nan)
        raw_ts = np.ma.filled(nc["ts"][:].astype("float64"), np.nan)
        lat = np.asarray(nc["Latitude"][:])
        lon = np.asarray(nc["Longitude"][:])
    ds = read_lprm(path)
    assert ds["sm"].dims == ("time", "y", "x")
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2015-04-01")
    # REMEDHUS El Tomillar: 29 % vol (README), i.e. 0.29 m3 m-3
    col, row = int(np.argmin(np.abs(lon - REMEDHUS[0]))), int(np.argmin(np.abs(lat - REMEDHUS[1])))
    assert raw[col, row] == pytest.approx(29.0)
    value = ds["sm"].isel(time=0).sel(x=REMEDHUS[0], y=REMEDHUS[1], method="nearest")
    assert float(value) == pytest.approx(0.29)
    # every cell: transposed to (lat, lon), rows north to south, % -> m3 m-3
    north_up = np.argsort(-lat)
    assert lat[north_up[0]] == pytest.approx(89.875)
    for name, values, scale in (("sm", raw, 0.01), ("sm_uncertainty", raw_err, 0.01),
                                ("tskin", raw_ts, 1.0), ("sm_x", raw_x, 0.01)):
        np.testing.assert_allclose(ds[name].isel(time=0).values, values.T[north_up] * scale,
                                   rtol=1e-6, equal_nan=True, err_msg=name)
    # the valid values sit on land: none in the middle of the Pacific, many over Spain
    assert np.isnan(ds["sm"].sel(x=slice(-160, -140), y=slice(10, -10))).all()
    spain = ds["sm"].sel(x=slice(-7, -2), y=slice(42, 38))
    assert np.isfinite(spain).mean() > 0.8
    assert ds["sm"].attrs["units"] == "m3 m-3" and ds["tskin"].attrs["units"] == "K"
    assert ds.attrs["overpass"] == "descending"


def test_read_lprm__band_region_and_units(real_data: Path) -> None:
    path = real_data / LPRM
    ds = read_lprm(path, band="x", region=(-10.0, 5.0, 35.0, 45.0), chunks={"x": 16})
    assert isinstance(ds["sm"].data, dask.array.Array)
    assert "sm_c1" in ds.data_vars and "sm_x" not in ds.data_vars
    with netCDF4.Dataset(path) as nc:
        lat = np.asarray(nc["Latitude"][:])
        lon = np.asarray(nc["Longitude"][:])
        col = int(np.argmin(np.abs(lon - REMEDHUS[0])))
        row = int(np.argmin(np.abs(lat - REMEDHUS[1])))
        raw_x = float(nc["soil_moisture_x"][col, row])
    value = float(ds["sm"].isel(time=0).sel(x=REMEDHUS[0], y=REMEDHUS[1], method="nearest"))
    assert value == pytest.approx(raw_x / 100.0)
    assert ds["sm"].shape == (1, 40, 60)
    with pytest.raises(UnitsError, match=r"declared as 'm3 m-3'.*'percent'"):
        read_lprm(path, units={"soil_moisture_c1": "m3 m-3"})
    with pytest.raises(ConfigError, match="band"):
        read_lprm(path, band="ku")  # type: ignore[arg-type]
    with pytest.raises(MissingVariableError, match="vod"):
        read_lprm(path, variables=["vod"])


def test_read_lprm__synthetic_lat_lon_order(tmp_path: Path) -> None:
    """A file already stored (Latitude, Longitude) is not transposed again."""
    lat = np.array([10.125, 10.375])
    lon = np.array([20.125, 20.375, 20.625])
    sm = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])  # rows = latitude, south first
    path = tmp_path / "LPRM-AMSR2_L3_A_SOILM3_V001_20200105120000.nc4"
    xr.Dataset(
        {"soil_moisture_c1": (("Latitude", "Longitude"), sm, {"units": "percent"})},
        coords={"Latitude": ("Latitude", lat, {"units": "degrees_north"}),
                "Longitude": ("Longitude", lon, {"units": "degrees_east"})},
    ).to_netcdf(path)
    ds = read_lprm(path)
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2020-01-05")
    assert float(ds["sm"].isel(time=0).sel(y=10.375, x=20.125)) == pytest.approx(0.40)
    assert float(ds["sm"].isel(time=0).sel(y=10.125, x=20.625)) == pytest.approx(0.30)
    assert ds.attrs["overpass"] == "ascending"
