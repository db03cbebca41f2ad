"""Snow/frozen, water and MODIS QC masks, and antecedent precipitation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import DataError, UnitsError
from soilfuse.preprocess import (
    antecedent_precipitation,
    apply_masks,
    qc_bad_mask,
    screen_qc,
    snow_frozen_mask,
    water_mask,
)


def test_snow_frozen_mask__both_conditions_needed() -> None:
    lst = xr.DataArray([-5.0, -5.0, 5.0, 5.0, np.nan, -0.01], dims="x", attrs={"units": "degC"})
    albedo = xr.DataArray([0.5, 0.2, 0.5, 0.2, 0.5, 0.31], dims="x", attrs={"units": "1"})
    assert snow_frozen_mask(lst, albedo).values.tolist() == [True, False, False, False, False, True]


def test_snow_frozen_mask__kelvin_threshold_and_static_albedo_broadcast() -> None:
    lst = xr.DataArray([[273.0, 274.0]], dims=("time", "x"), attrs={"units": "K"})
    albedo = xr.DataArray([0.4, 0.4], dims="x")
    assert snow_frozen_mask(lst, albedo).values.tolist() == [[True, False]]
    with pytest.raises(UnitsError):
        snow_frozen_mask(lst.assign_attrs(units=""), albedo)


def test_water_mask__fraction_and_percent() -> None:
    frac = xr.DataArray([0.0, 0.2, 0.21, np.nan], dims="x", attrs={"units": "1"})
    assert water_mask(frac).values.tolist() == [False, False, True, False]
    pct = xr.DataArray([10.0, 25.0], dims="x", attrs={"units": "%"})
    assert water_mask(pct).values.tolist() == [False, True]
    with pytest.raises(DataError, match=r"0\.2"):
        water_mask(frac, max_fraction=20)


@pytest.mark.parametrize(
    ("product", "codes", "good"),
    [
        ("MOD11", [0b00, 0b01, 0b10, 0b11, 0b1000_0000, 0b0100_0001], [True, False, False, False, True, False]),
        ("MYD13A2", [0b00, 0b01, 0b10, 0b11, 0b0100_0000, 0b0100_0010], [True, False, False, False, True, False]),
        ("MOD09GA", [0b00, 0b01, 0b10, 0b11, 0b1000_0100, 0xFFFF], [True, False, False, True, True, False]),
    ],
)
def test_qc_bad_mask__bit_rules(product: str, codes: list[int], good: list[bool]) -> None:
    qc = xr.DataArray(np.array(codes, dtype="uint16"), dims="x")
    assert qc_bad_mask(qc, product=product).values.tolist() == [not g for g in good]


def test_screen_qc__keeps_only_good_and_attrs() -> None:
    lst = xr.DataArray([300.0, 301.0, 302.0], dims="x", name="lst_day", attrs={"units": "K"})
    qc = xr.DataArray(np.array([0, 2, 0], dtype="uint8"), dims="x")
    out = screen_qc(lst, qc, product="MOD11")
    np.testing.assert_array_equal(out.values, [300.0, np.nan, 302.0])
    assert out.attrs == {"units": "K"} and out.name == "lst_day"


def test_apply_masks__any_mask_removes() -> None:
    da = xr.DataArray(np.arange(4.0), dims="x", attrs={"units": "1"})
    m1 = xr.DataArray([True, False, False, False], dims="x")
    m2 = xr.DataArray([False, False, True, False], dims="x")
    np.testing.assert_array_equal(apply_masks(da, m1, m2).values, [np.nan, 1.0, np.nan, 3.0])


def daily(values: list[float], units: str = "mm day-1") -> xr.DataArray:
    time = pd.date_range("2020-05-01", periods=len(values), freq="D")
    return xr.DataArray(np.array(values), dims="time", coords={"time": time}, attrs={"units": units}, name="tp")


def test_antecedent_precipitation__five_days_including_today() -> None:
    out = antecedent_precipitation(daily([10.0, 0.0, 5.0, 0.0, 0.0, 20.0, 0.0]))
    # day 5: (10+0+5+0+0)/5 = 3; day 6: (0+5+0+0+20)/5 = 5; day 7: (5+0+0+20+0)/5 = 5
    np.testing.assert_allclose(out.values, [np.nan] * 4 + [3.0, 5.0, 5.0])
    assert out.name == "ap" and out.attrs["antecedent_days"] == 5


def test_antecedent_precipitation__excluding_today_and_nan_window() -> None:
    out = antecedent_precipitation(daily([2.0, 4.0, 6.0, np.nan, 8.0, 10.0]), m=2, include_current=False)
    np.testing.assert_allclose(out.values, [np.nan, np.nan, 3.0, 5.0, np.nan, np.nan])


def test_antecedent_precipitation__rate_units_converted() -> None:
    out = antecedent_precipitation(daily([1 / 86400.0] * 3, units="kg m-2 s-1"), m=3)
    assert float(out[-1]) == pytest.approx(1.0)


def test_antecedent_precipitation__gappy_time_axis_raises() -> None:
    tp = daily([1.0, 2.0, 3.0]).isel(time=[0, 2])
    with pytest.raises(DataError, match="consecutive daily"):
        antecedent_precipitation(tp)
    with pytest.raises(DataError, match="positive"):
        antecedent_precipitation(daily([1.0]), m=0)


def test_antecedent_precipitation__lazy_rolling_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    tp = xr.DataArray(rng.gamma(0.5, 4.0, (40, 3, 4)), dims=("time", "y", "x"),
                      coords={"time": pd.date_range("2020-01-01", periods=40)}, attrs={"units": "mm day-1"})
    lazy = antecedent_precipitation(tp.chunk({"time": 7, "y": 2}))
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, antecedent_precipitation(tp).values, rtol=1e-12)
