"""Savitzky–Golay and Whittaker smoothers through their xarray wrappers."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.signal import savgol_filter

from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.gapfill import FLAG_MEANINGS, fill_spatiotemporal, savgol, whittaker
from soilfuse.grid import Grid
from soilfuse.io import with_grid

GRID = Grid.latlon((100.0, 100.05, 30.0, 30.04), 0.01)  # 4 x 5
T = np.arange(365.0)
TRUTH = 0.3 + 0.25 * np.sin(2 * np.pi * T / 365) + 0.1 * np.sin(4 * np.pi * T / 365 + 1)


def noisy_gappy(seed: int = 11, noise: float = 0.03, gaps: float = 0.5) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    y = TRUTH[:, None, None] + rng.normal(0, noise, (365, *GRID.shape))
    y[rng.random(y.shape) < gaps] = np.nan
    da = xr.DataArray(y.astype("float32"), dims=("time", "y", "x"), name="ndvi", attrs={"units": "1"},
                      coords={"time": pd.date_range("2019-01-01", periods=365)})
    return with_grid(da, GRID)


@pytest.mark.parametrize("rule", ["vcurve", "gcv"])
def test_whittaker__recovers_smooth_curve_from_noisy_gappy_samples(rule: Literal["vcurve", "gcv"]) -> None:
    da = noisy_gappy()
    out = whittaker(da, lmbda=rule)
    err = out["ndvi"].values - TRUTH[:, None, None]
    # noise sd 0.03 and half the days missing: the smooth is within 0.012 RMSE (measured 0.0081-0.0086)
    assert np.sqrt(np.mean(err**2)) < 0.012
    assert np.abs(err).max() < 0.06
    assert np.isfinite(out["ndvi"].values).all()
    lam = out["ndvi_lambda"].values
    assert lam.shape == GRID.shape and (lam >= 1e2).all()


def test_whittaker__flags_dtype_attrs_and_input_untouched() -> None:
    da = noisy_gappy()
    before = da.copy(deep=True)
    out = whittaker(da, lmbda=500.0)
    xr.testing.assert_identical(da, before)
    flags = out["ndvi_flag"].values
    np.testing.assert_array_equal(flags == 4, np.isfinite(da.values))
    np.testing.assert_array_equal(flags == 1, np.isnan(da.values))
    assert out["ndvi"].dtype == np.float32 and out["ndvi"].attrs["units"] == "1"
    assert out["ndvi_flag"].dtype == np.uint8
    assert out["ndvi_flag"].attrs["flag_meanings"].split() == list(FLAG_MEANINGS.values())
    assert out["ndvi"].attrs["grid_mapping"] == "spatial_ref" and "spatial_ref" in out.coords
    assert "ndvi_lambda" not in out


def test_whittaker__zero_weights_are_interpolated_and_weights_matter() -> None:
    da = noisy_gappy(gaps=0.0)
    spike = da.copy()
    spike[100] = 5.0
    weights = xr.where(spike > 1.0, 0.0, 1.0)
    out = whittaker(spike, weights, lmbda=1000.0)
    assert abs(float(out["ndvi"][100, 0, 0]) - TRUTH[100]) < 0.03
    assert int(out["ndvi_flag"][100, 0, 0]) == 1
    unweighted = whittaker(spike, lmbda=1000.0)
    assert float(unweighted["ndvi"][100, 0, 0]) > TRUTH[100] + 0.1


def test_whittaker__too_few_samples_missing_and_bad_arguments() -> None:
    da = noisy_gappy()
    da[:, 0, 0] = np.nan
    da[5, 0, 0] = 0.3
    out = whittaker(da, lmbda="vcurve")
    assert np.isnan(out["ndvi"][:, 0, 0]).all() and (out["ndvi_flag"][:, 0, 0] == 255).all()
    bad_args: list[dict[str, Any]] = [{"lmbda": -1.0}, {"lmbda": "aic"}, {"order": 5}, {"lambdas": [10.0]}]
    for bad in bad_args:
        with pytest.raises(DataError):
            whittaker(da, **bad)
    with pytest.raises(DataError, match="equally spaced"):
        whittaker(da.isel(time=[0, 1, 3, 4]))


def test_savgol__equals_scipy_on_complete_series_and_keeps_gaps() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(300, 3, (50, *GRID.shape))
    values[10, 1, 1] = np.nan
    da = with_grid(xr.DataArray(values, dims=("time", "y", "x"), name="lst_day", attrs={"units": "K"}), GRID)
    out = savgol(da, window=9, order=3)
    np.testing.assert_allclose(out["lst_day"].values[:, 0, 0], savgol_filter(values[:, 0, 0], 9, 3, mode="interp"))
    assert np.isnan(out["lst_day"].values[10, 1, 1])
    assert int(out["lst_day_flag"][10, 1, 1]) == 255 and int(out["lst_day_flag"][0, 0, 0]) == 4


def test_savgol__after_fill_carries_flags() -> None:
    rng = np.random.default_rng(4)
    values = 300 + np.cumsum(rng.normal(0, 1, (40, *GRID.shape)), axis=0)
    values[[5, 6], 2, 3] = np.nan
    da = with_grid(xr.DataArray(values, dims=("time", "y", "x"), name="lst_day", attrs={"units": "K"}), GRID)
    out = savgol(fill_spatiotemporal(da), window=7, order=2)
    assert out["lst_day_flag"].values[5, 2, 3] == 1 and out["lst_day_flag"].values[4, 2, 3] == 4
    assert np.isfinite(out["lst_day"].values).all()
    assert out["lst_day"].attrs["gapfill_method"].startswith("savgol")


def test_savgol__bad_window_and_ambiguous_dataset_raise() -> None:
    da = noisy_gappy()
    for window, order in ((8, 2), (1, 0), (401, 2), (5, 5)):
        with pytest.raises(DataError, match="window"):
            savgol(da, window=window, order=order)
    with pytest.raises(MissingVariableError, match="one field"):
        savgol(xr.Dataset({"a": da, "b": da}))
