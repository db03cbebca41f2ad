"""Tests of soilfuse.io.products.cci: ESA CCI SM and C3S SM, real and synthetic files."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import dask
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import ConfigError, MissingVariableError, UnitsError
from soilfuse.grid import Grid, crs_of
from soilfuse.io.products import CCI_FLAG_BITS, read_cci
from soilfuse.io.products.cci import flag_keep, flag_table

V052 = "esa_cci_sm/v05.2/ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20160607000000-fv05.2.nc"
ACTIVE = "esa_cci_sm/v05.2/ESACCI-SOILMOISTURE-L3S-SSMS-ACTIVE-20160607000000-fv05.2.nc"
V022 = "esa_cci_sm/v02.2/ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20140101000000-fv02.2.nc"
FR_AQUI = (-0.727, 44.467)  # lon, lat
EUROPE = (-10.0, 30.0, 35.0, 72.0)


def _raw_cell(path: Path, name: str, lon: float, lat: float) -> float:
    """Value of ``name`` at the 0.25 degree cell containing (lon, lat), read with netCDF4."""
    with netCDF4.Dataset(path) as nc:
        row = int(np.argmin(np.abs(nc["lat"][:] - lat)))
        col = int(np.argmin(np.abs(nc["lon"][:] - lon)))
        value = nc[name][0, row, col]
    return float(np.ma.filled(np.ma.asarray(value, dtype="float64"), np.nan))


def _no_compute(*args: object, **kwargs: object) -> None:
    msg = "a Dask computation ran while only a lazy result was expected"
    raise AssertionError(msg)


def _at(ds: xr.Dataset, name: str, lon: float, lat: float) -> xr.DataArray:
    return ds[name].sel(x=lon, y=lat, method="nearest")


# ---------------------------------------------------------------------------- real files
def test_read_cci__v052_combined_at_fr_aqui(real_data: Path) -> None:
    path = real_data / V052
    ds = read_cci(path, region=(-2.0, 1.0, 43.0, 46.0))
    value = float(_at(ds, "sm", *FR_AQUI).isel(time=0))
    assert value == pytest.approx(_raw_cell(path, "sm", *FR_AQUI), rel=1e-6)
    assert value == pytest.approx(0.201, abs=5e-4)  # README: 0.201 vs station 0.222
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2016-06-07")
    assert ds["sm"].attrs["units"] == "m3 m-3"
    assert ds["sm"].dims == ("time", "y", "x")
    unc = float(_at(ds, "sm_uncertainty", *FR_AQUI).isel(time=0))
    assert unc == pytest.approx(_raw_cell(path, "sm_uncertainty", *FR_AQUI), rel=1e-6)
    assert {"t0", "dnflag", "mode", "sensor", "freqbandID", "flag"} <= set(ds.data_vars)
    assert ds["x"].size == 12 and ds["y"].size == 12  # the region only
    assert float(ds["y"][0]) > float(ds["y"][-1])  # north-up
    assert crs_of(ds).to_epsg() == 4326 and ds["sm"].attrs["grid_mapping"] == "spatial_ref"
    assert Grid.from_dataset(ds).bounds == (-2.0, 1.0, 43.0, 46.0)


def test_read_cci__active_is_percent_of_saturation(real_data: Path) -> None:
    path = real_data / ACTIVE
    ds = read_cci(path, region=EUROPE)
    assert "sm" not in ds.data_vars
    assert ds["sm_saturation"].attrs["units"] == "%"
    assert ds["sm_saturation_uncertainty"].attrs["units"] == "%"
    values = ds["sm_saturation"].values
    assert np.nanmax(values) > 50.0  # percent, not a fraction
    assert float(np.nanmax(values)) <= 100.0
    lon, lat = 2.375, 47.875  # a valid cell in France
    raw = _raw_cell(path, "sm", lon, lat)
    assert np.isfinite(raw)
    assert float(_at(ds, "sm_saturation", lon, lat).isel(time=0)) == pytest.approx(raw, rel=1e-6)
    with pytest.raises(MissingVariableError, match="sm_saturation"):
        read_cci(path, region=EUROPE, variables=["sm"])


def test_read_cci__v022_time_and_flag_codes(real_data: Path) -> None:
    path = real_data / V022
    with netCDF4.Dataset(path) as nc:
        stored = float(nc["time"][0])
        nc.set_auto_maskandscale(False)
        raw_flag = np.asarray(nc["flag"][0])
        lat = np.asarray(nc["lat"][:])
    assert stored < 16071.0  # 2013-12-31T23:59:59.99996
    ds = read_cci(path, flags="none", variables=["flag", "sm"])
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2014-01-01")
    flag = ds["flag"].isel(time=0).sel(y=lat, method="nearest").values  # file's row order
    # v02.2 code 3 (no convergence) becomes bit 4; codes 0 and 2 keep their value
    assert (flag[raw_flag == 3] == 4).all() and (raw_flag == 3).sum() > 1000
    assert (flag[raw_flag == 0] == 0).all()
    assert np.isnan(flag[raw_flag == 127]).all()
    assert ds["flag"].attrs["source_flag_values"] == "0 1 2 3"


def test_read_cci__c3s_monthly_at_cosmos_stations(real_data: Path) -> None:
    folder = real_data / "c3s_sm/monthly"
    ds = read_cci(folder, region=(-160.0, -90.0, 30.0, 75.0), chunks={"time": 4})
    assert isinstance(ds["sm"].data, dask.array.Array)
    assert pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m-%d").tolist() == [
        f"2018-{m:02d}-01" for m in range(1, 9)]
    arm1 = (-97.488, 36.605)
    raw = _raw_cell(folder / "C3S-SOILMOISTURE-L3S-SSMV-COMBINED-MONTHLY-20180601000000-ICDR-"
                    "v201706.0.0.nc", "sm", *arm1)
    june = float(_at(ds, "sm", *arm1).sel(time="2018-06-01"))
    assert june == pytest.approx(raw, rel=1e-6)
    assert june == pytest.approx(0.162, abs=1e-3)  # README: 0.162 vs COSMOS 0.137
    assert np.isfinite(_at(ds, "sm", *arm1).values).all()
    assert np.isnan(_at(ds, "sm", -156.629, 71.330).values).all()  # Barrow: masked
    assert "nobs" in ds.data_vars and "flag" not in ds.data_vars
    assert "no flag variable" in ds.attrs["flags_applied"]


def test_read_cci__region_reads_only_the_window(real_data: Path) -> None:
    path = real_data / V052
    read_cci(path, region=(-1.0, 0.0, 44.0, 45.0))  # warm caches and imports
    tracemalloc.start()
    try:
        ds = read_cci(path, region=(-1.0, 0.0, 44.0, 45.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ds["sm"].shape == (1, 4, 4)
    # one global float32 image alone is 720 * 1440 * 4 B = 4.1 MB
    assert peak < 2_000_000


def test_read_cci__mixed_products_and_units(real_data: Path) -> None:
    with pytest.raises(ConfigError, match="mix products"):
        read_cci([real_data / V052, real_data / ACTIVE], region=EUROPE)
    with pytest.raises(UnitsError, match=r"declared as 'percent'.*'m3 m-3'"):
        read_cci(real_data / V052, region=EUROPE, units={"sm": "percent"})


# ---------------------------------------------------------------------------- synthetic files
_MEANINGS_V05 = [
    "no_data_inconsistency_detected", "snow_coverage_or_temperature_below_zero",
    "dense_vegetation", "combination_of_flag_values_1_and_2",
    "others_no_convergence_in_the_model_thus_no_valid_sm_estimates", "NaN",
]


def _write_regional(folder: Path, day: str, sm: np.ndarray, flag: np.ndarray) -> Path:
    """A regional CCI-like daily file (0.25 degree, 100-101 E, 30-31 N), CCI naming."""
    folder.mkdir(exist_ok=True)
    lat = 30.875 - 0.25 * np.arange(4)
    lon = 100.125 + 0.25 * np.arange(4)
    stamp = pd.Timestamp(day).strftime("%Y%m%d")
    path = folder / f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{stamp}000000-fv05.2.nc"
    flag_attrs = {"flag_values": np.array([0, 1, 2, 3, 4, 127], "int8"),
                  "flag_meanings": " ".join(_MEANINGS_V05), "_FillValue": np.int8(127)}
    xr.Dataset(
        {
            "sm": (("time", "lat", "lon"), sm[None].astype("float32"),
                   {"units": "m3 m-3", "_FillValue": np.float32(-9999.0)}),
            "sm_uncertainty": (("time", "lat", "lon"), np.full((1, 4, 4), 0.04, "float32"),
                               {"units": "m3 m-3"}),
            "flag": (("time", "lat", "lon"), flag[None].astype("int8"), flag_attrs),
        },
        coords={"time": [pd.Timestamp(day)], "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
    ).to_netcdf(path)
    return path


def test_read_cci__regional_synthetic_flags(tmp_path: Path) -> None:
    sm = np.full((4, 4), 0.25)
    flag = np.zeros((4, 4), dtype="int8")
    flag[0, 0], flag[0, 1], flag[0, 2], flag[0, 3] = 1, 2, 3, 4  # snow, veg, snow+veg, no conv.
    folder = tmp_path / "cci"
    _write_regional(folder, "2020-01-02", sm, flag)
    _write_regional(folder, "2020-01-01", sm, flag)
    strict = read_cci(folder)
    assert strict.sizes == {"time": 2, "y": 4, "x": 4}
    assert pd.Timestamp(strict["time"].values[0]) == pd.Timestamp("2020-01-01")  # sorted
    assert float(strict["x"][0]) == pytest.approx(100.125)  # regional extent kept
    row = strict["sm"].isel(time=0, y=0).values
    assert np.isnan(row).all()
    assert float(strict["sm"].isel(time=0, y=1, x=0)) == pytest.approx(0.25)
    assert np.isnan(strict["sm_uncertainty"].isel(time=0, y=0)).all()
    veg = read_cci(folder, flags={2})
    np.testing.assert_array_equal(np.isnan(veg["sm"].isel(time=0, y=0).values),
                                  [True, False, True, True])
    veg_snow = read_cci(folder, flags=[1, 2])
    np.testing.assert_array_equal(np.isnan(veg_snow["sm"].isel(time=0, y=0).values),
                                  [False, False, False, True])
    with dask.config.set(scheduler=_no_compute):
        everything = read_cci(folder, flags="none", chunks={"time": 1, "x": 2})
        lazy_strict = read_cci(folder, chunks={"time": 1, "x": 2})
    assert isinstance(everything["sm"].data, dask.array.Array)
    np.testing.assert_array_equal(lazy_strict["sm"].values, strict["sm"].values)
    assert not np.isnan(everything["sm"].values).any()
    with pytest.raises(ConfigError, match="single bits"):
        read_cci(folder, flags=[3])


def test_flag_table__v022_codes_and_v05_bits() -> None:
    v022 = flag_table([0, 1, 2, 3], ["no_data_inconsistency_detected",
                                     "snow_coverage_or_temperature_below_zero", "dense_vegetation",
                                     "others_no_convergence_in_the_model_thus_no_valid_sm_estimates"])
    assert v022 == {0: 0, 1: 1, 2: 2, 3: 4}
    v05 = flag_table([0, 1, 2, 3, 4, 127], _MEANINGS_V05)
    assert v05 == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}
    assert CCI_FLAG_BITS[8] == "soil_moisture_value_exceeds_physical_boundary"
    keep = flag_keep(np.array([0.0, 1.0, 2.0, 3.0, np.nan]), allowed=2)
    assert keep.tolist() == [True, False, True, False, False]
