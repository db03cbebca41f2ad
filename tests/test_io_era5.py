"""Tests of soilfuse.io.products.era5: real ERA5 / ERA5-Land files and tiny synthetic files."""

from __future__ import annotations

from pathlib import Path

import dask
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import ConfigError, MissingVariableError, UnitsError
from soilfuse.grid import Grid
from soilfuse.io.products import read_era5

ERA5_LAND_WA = "era5_land/western_australia_2020-01/ERA5_Western-Australia_20200101_20200128.nc"
MURRUMBIDGEE = "era5/regional_hourly_subsets/murrumbidgee_weekly_2018-08_2020-07"


def _raw_hourly(path: Path, name: str, day: str, lat: float, lon: float) -> np.ndarray:
    """The 24 raw values of ``day`` at the cell nearest (lat, lon), read with netCDF4."""
    with netCDF4.Dataset(path) as nc:
        times = pd.to_datetime(nc["valid_time"][:], unit="s")
        row = int(np.argmin(np.abs(nc["latitude"][:] - lat)))
        col = int(np.argmin(np.abs(nc["longitude"][:] - lon)))
        steps = np.flatnonzero(times.normalize() == pd.Timestamp(day))
        return np.asarray(nc[name][steps, row, col], dtype="float64")


def _no_compute(*args: object, **kwargs: object) -> None:
    msg = "a Dask computation ran while only a lazy result was expected"
    raise AssertionError(msg)


# ---------------------------------------------------------------------------- real files
def test_read_era5__land_daily_mean_equals_mean_of_24_hours(real_data: Path) -> None:
    path = real_data / ERA5_LAND_WA
    raw = _raw_hourly(path, "swvl1", "2020-01-05", -30.0, 119.0)
    assert raw.size == 24
    ds = read_era5(path)
    assert ds.attrs["source"] == "ERA5-Land"  # 0.1 degree grid
    assert ds.sizes["time"] == 31  # 2020-01-01 ... 2020-01-31, despite the file name
    value = ds["sm"].sel(time="2020-01-05", depth=3.5, y=-30.0, x=119.0)
    assert float(value) == pytest.approx(raw.mean(), rel=1e-6)
    assert ds["sm"].dims == ("time", "depth", "y", "x")
    grid = Grid.from_dataset(ds)
    assert grid.shape == (51, 61) and grid.resolution == pytest.approx((0.1, 0.1))
    assert ds["sm"].attrs["units"] == "m3 m-3"
    assert ds["sm"].attrs["source_name"] == "swvl1"
    assert ds["layer"].values.tolist() == ["0-7cm"]
    assert ds["depth_bnds"].values.tolist() == [[0.0, 7.0]]
    # lsm is static: its own odd time (2013-11-29) is dropped
    assert ds["land_fraction"].dims == ("y", "x")
    with netCDF4.Dataset(path) as nc:
        lsm = float(nc["lsm"][0, 20, 30])  # latitude -29.0, longitude 119.0
    assert float(ds["land_fraction"].sel(y=-29.0, x=119.0)) == pytest.approx(lsm)


def test_read_era5__murrumbidgee_concatenates_on_valid_time(real_data: Path) -> None:
    folder = real_data / MURRUMBIDGEE
    ds = read_era5(folder, chunks={"time": 64})
    times = pd.DatetimeIndex(ds["time"].values)
    assert isinstance(ds["sm"].data, dask.array.Array)
    # 103 three-day windows = 309 days, minus 3 days held by two files each
    assert times.size == 306
    assert times.is_unique and times.is_monotonic_increasing
    # ERA5_20190930_20190902.nc really holds 2019-09-01, 09-02 and 09-30
    mislabelled = folder / "ERA5_20190930_20190902.nc"
    for day in ("2019-09-01", "2019-09-30"):
        raw = _raw_hourly(mislabelled, "swvl1", day, -35.15, 146.3)
        value = ds["sm"].sel(time=day, depth=3.5).sel(y=-35.15, x=146.3, method="nearest")
        assert float(value) == pytest.approx(raw.mean(), rel=1e-6)
    assert pd.Timestamp("2019-10-02") not in times  # the date in the file name


def test_read_era5__grib_t2m_daily_mean(real_data: Path) -> None:
    import eccodes  # after soilfuse (pyproj) is loaded

    path = real_data / "era5/global/era5-2mt-2019-03-uk.grib"
    raw = []
    with path.open("rb") as fh:
        while (handle := eccodes.codes_grib_new_from_file(fh)) is not None:
            if eccodes.codes_get(handle, "validityDate") == 20190315:
                values = eccodes.codes_get_values(handle).reshape(33, 49)  # 58N..50N, 10W..2E
                raw.append(values[24, 36])  # 52.0 N, 1.0 W
            eccodes.codes_release(handle)
    assert len(raw) == 24
    ds = read_era5(path)
    assert ds.sizes["time"] == 31
    value = ds["t2m"].sel(time="2019-03-15", y=52.0, x=-1.0)
    assert float(value) == pytest.approx(np.mean(raw), rel=1e-6)
    assert ds["t2m"].attrs["units"] == "K"


def test_read_era5__global_analysis_native_step_rolls_longitudes(real_data: Path) -> None:
    path = real_data / "era5/global/ERA5_AN_20100101_0000.nc"
    ds = read_era5(path, daily=False, region=(-10.0, 5.0, 40.0, 50.0))
    with netCDF4.Dataset(path) as nc:
        raw = float(nc["swvl2"][160, 1420])  # 90 - 0.25 * 160 = 50 N, 0.25 * 1420 = 355 E
        lat, lon = float(nc["latitude"][160]), float(nc["longitude"][1420])
    assert (lat, lon) == (50.0, 355.0)
    assert float(ds["x"].min()) == -10.0 and float(ds["x"].max()) == 5.0
    value = ds["sm"].sel(time="2010-01-01", depth=17.5, y=50.0, x=-5.0)
    assert float(value) == pytest.approx(raw)
    assert ds["layer"].values.tolist() == ["0-7cm", "7-28cm"]


# ---------------------------------------------------------------------------- synthetic files
def _write(path: Path, times: pd.DatetimeIndex, data: dict[str, tuple[np.ndarray, str]],
           *, step: float = 0.25, attrs: dict[str, str] | None = None) -> Path:
    """A CDS-like NetCDF with dims (valid_time, latitude, longitude) on a 3 x 2 grid."""
    lat = -30.0 - step * np.arange(3)
    lon = 120.0 + step * np.arange(2)
    variables = {}
    for name, (values, units) in data.items():
        full = np.broadcast_to(np.asarray(values, "float32")[:, None, None], (times.size, 3, 2))
        variables[name] = (("valid_time", "latitude", "longitude"), full.copy(), {"units": units})
    ds = xr.Dataset(
        variables,
        coords={"valid_time": times, "latitude": ("latitude", lat, {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"})},
        attrs=attrs or {},
    )
    ds.to_netcdf(path)
    return path


def _hourly_amounts() -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Steps 2020-01-01 00:00 ... 2020-01-03 00:00; amount of the hour ending at step k is k * 1e-4 m."""
    times = pd.date_range("2020-01-01 00:00", "2020-01-03 00:00", freq="h")
    return times, 1e-4 * np.arange(times.size)


def test_read_era5__era5_hourly_accumulations_summed_to_next_midnight(tmp_path: Path) -> None:
    times, amounts = _hourly_amounts()
    path = _write(tmp_path / "era5.nc", times, {
        "tp": (amounts, "m"), "e": (-amounts, "m"),
        "ssrd": (np.full(times.size, 3.6e6), "J m**-2"),
    })
    ds = read_era5(path)
    assert ds.attrs["source"] == "ERA5"  # 0.25 degree grid
    # 2019-12-31 has one hour (00:00 Jan 1) only and is dropped; Jan 1 = hours k = 1..24
    assert pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m-%d").tolist() == [
        "2020-01-01", "2020-01-02"]
    tp = ds["tp"].isel(y=0, x=0).values
    np.testing.assert_allclose(tp, [1000 * 1e-4 * 300, 1000 * 1e-4 * 876], rtol=1e-5)  # 30, 87.6 mm
    np.testing.assert_allclose(ds["e"].isel(y=0, x=0).values, tp, rtol=1e-5)  # sign flipped
    np.testing.assert_allclose(ds["ssrd"].values, 1000.0, rtol=1e-6)  # 3.6e6 J m-2 per hour
    assert ds["tp"].attrs["units"] == "mm day-1" and ds["ssrd"].attrs["units"] == "W m-2"


def test_read_era5__land_accumulations_since_midnight(tmp_path: Path) -> None:
    times, amounts = _hourly_amounts()
    day = pd.DatetimeIndex(times).floor("D")
    hour = pd.DatetimeIndex(times).hour
    cumulative = np.zeros(times.size)
    for k in range(1, times.size):
        cumulative[k] = amounts[k] + (cumulative[k - 1] if hour[k] != 1 else 0.0)
    cumulative[0] = 0.5  # the total of 2019-12-31: ignored (day incomplete)
    assert day[24] == pd.Timestamp("2020-01-02") and cumulative[24] == pytest.approx(0.03)
    path = _write(tmp_path / "land.nc", times, {"tp": (cumulative, "m")}, step=0.1)
    ds = read_era5(path)
    assert ds.attrs["source"] == "ERA5-Land"
    np.testing.assert_allclose(ds["tp"].isel(y=0, x=0).values, [30.0, 87.6], rtol=1e-5)
    hourly = read_era5(path, daily=False)
    # hour ending 2020-01-01 05:00: 5e-4 m in one hour = 12 mm day-1
    assert float(hourly["tp"].sel(time="2020-01-01 05:00").isel(y=0, x=0)) == pytest.approx(
        12.0, rel=1e-5)
    assert np.isnan(hourly["tp"].isel(time=0)).all()  # previous hour unknown
    forced = read_era5(path, product="era5")  # wrong convention: cumulative values summed
    assert float(forced["tp"].isel(time=0, y=0, x=0)) > 100.0


def test_read_era5__coverage_rule(tmp_path: Path) -> None:
    times = pd.date_range("2020-01-01 00:00", "2020-01-02 16:00", freq="h")  # day 2: 17 steps
    t2m = np.full((times.size, 3, 2), 280.0, dtype="float32")
    t2m[:24, 0, 0] = 270.0 + np.arange(24)
    t2m[:6, 0, 0] = np.nan  # 18 valid hours: kept
    t2m[:7, 0, 1] = np.nan  # 17 valid hours: NaN
    path = tmp_path / "t2m.nc"
    xr.Dataset(
        {"t2m": (("valid_time", "latitude", "longitude"), t2m, {"units": "K"})},
        coords={"valid_time": times, "latitude": [-30.0, -30.25, -30.5],
                "longitude": ("longitude", [120.0, 120.25], {"units": "degrees_east"})},
    ).to_netcdf(path)
    ds = read_era5(path)
    assert ds.sizes["time"] == 1  # 2020-01-02 has 17 of 24 steps: dropped
    assert float(ds["t2m"].isel(time=0, y=0, x=0)) == pytest.approx(np.mean(270.0 + np.arange(6, 24)))
    assert np.isnan(float(ds["t2m"].isel(time=0, y=0, x=1)))
    assert float(ds["t2m"].isel(time=0, y=1, x=0)) == pytest.approx(280.0)
    relaxed = read_era5(path, min_coverage=0.5)
    assert relaxed.sizes["time"] == 2
    assert float(relaxed["t2m"].isel(time=0, y=0, x=1)) == pytest.approx(280.0)  # 17 of 24 valid


def test_read_era5__daily_input_kept(tmp_path: Path) -> None:
    times = pd.date_range("2020-01-01", periods=3, freq="D")
    path = _write(tmp_path / "daily.nc", times, {
        "tp": (np.array([0.005, 0.0, 0.012]), "m"),
        "ssrd": (np.array([8.64e6, 1.728e7, 0.0]), "J m**-2"),
        "swvl1": (np.array([0.2, 0.21, 0.22]), "m**3 m**-3"),
        "u10": (np.array([3.0, 0.0, -6.0]), "m s**-1"),
        "v10": (np.array([4.0, 1.0, 8.0]), "m s**-1"),
    }, attrs={"time_aggregation": "daily"})
    ds = read_era5(path)
    assert ds.sizes["time"] == 3
    np.testing.assert_allclose(ds["tp"].isel(y=0, x=0).values, [5.0, 0.0, 12.0], rtol=1e-6)
    np.testing.assert_allclose(ds["ssrd"].isel(y=0, x=0).values, [100.0, 200.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(ds["wind10"].isel(y=0, x=0).values, [5.0, 1.0, 10.0], rtol=1e-6)
    np.testing.assert_allclose(ds["sm"].isel(depth=0, y=0, x=0).values, [0.2, 0.21, 0.22], rtol=1e-6)


def test_read_era5__declared_units_mismatch_raises(tmp_path: Path) -> None:
    times = pd.date_range("2020-01-01", periods=24, freq="h")
    path = _write(tmp_path / "sm.nc", times, {"swvl1": (np.full(24, 0.3), "m**3 m**-3")})
    assert float(read_era5(path, units={"swvl1": "m3 m-3"})["sm"].mean()) == pytest.approx(0.3)
    with pytest.raises(UnitsError, match=r"declared as '%'.*file says 'm\*\*3 m\*\*-3'"):
        read_era5(path, units={"swvl1": "%"})
    with pytest.raises(ConfigError, match="tp"):
        read_era5(path, units={"tp": "m"})


def test_read_era5__missing_variable_raises(tmp_path: Path) -> None:
    times = pd.date_range("2020-01-01", periods=24, freq="h")
    path = _write(tmp_path / "sm.nc", times, {"swvl1": (np.full(24, 0.3), "m**3 m**-3")})
    with pytest.raises(MissingVariableError, match=r"'stl1'.*swvl1"):
        read_era5(path, variables=["stl1"])
    with pytest.raises(MissingVariableError):
        read_era5(path, variables=["wind10"])


def test_read_era5__stays_lazy_with_chunks(tmp_path: Path) -> None:
    times, amounts = _hourly_amounts()
    path = _write(tmp_path / "lazy.nc", times, {
        "tp": (amounts, "m"), "t2m": (np.full(times.size, 290.0), "K"),
        "u10": (np.ones(times.size), "m s-1"), "v10": (np.ones(times.size), "m s-1"),
    })
    with dask.config.set(scheduler=_no_compute):
        ds = read_era5(path, chunks={"time": 1, "y": 2, "x": 1})
    assert all(isinstance(ds[v].data, dask.array.Array) for v in ds.data_vars)
    np.testing.assert_allclose(ds["wind10"].values, np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(ds["tp"].isel(y=0, x=0).values, [30.0, 87.6], rtol=1e-5)


def test_grib_valid_time__time_by_step_becomes_valid_time() -> None:
    from soilfuse.io.products.era5 import _grib_valid_time

    # cfgrib's layout of an ERA5-Land accumulation: forecasts from 00 UTC, steps 1-24 h
    times = pd.to_datetime(["2020-01-01", "2020-01-02"])
    steps = pd.to_timedelta([1, 2, 24], unit="h")
    valid = times.values[:, None] + steps.values[None, :]
    cube = xr.Dataset(
        {"tp": (("time", "step", "latitude", "longitude"),
                np.arange(6.0).reshape(2, 3, 1, 1), {"units": "m"})},
        coords={"time": times, "step": steps, "valid_time": (("time", "step"), valid),
                "latitude": [-30.0], "longitude": [120.0], "number": 0},
    )
    flat = _grib_valid_time(cube, Path("land.grib"))
    assert pd.DatetimeIndex(flat["time"].values).strftime("%d %H").tolist() == [
        "01 01", "01 02", "02 00", "02 01", "02 02", "03 00"]
    np.testing.assert_array_equal(flat["tp"].transpose("time", ...).values.ravel(), np.arange(6.0))


def test_read_era5__static_variable_only(tmp_path: Path) -> None:
    times = pd.date_range("2020-01-01", periods=24, freq="h")
    path = _write(tmp_path / "lsm.nc", times, {"lsm": (np.full(24, 0.75), "(0 - 1)"),
                                               "swvl1": (np.full(24, 0.3), "m**3 m**-3")})
    ds = read_era5(path, variables=["land_fraction"])
    assert list(ds.data_vars) == ["land_fraction"]
    assert ds["land_fraction"].dims == ("y", "x") and "time" not in ds.dims
    np.testing.assert_allclose(ds["land_fraction"].values, 0.75)
    assert ds["land_fraction"].attrs["units"] == "1"
