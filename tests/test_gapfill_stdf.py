"""STDF reconstruction of LST through its xarray wrapper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.gapfill import fill_spatiotemporal, stdf_fill
from soilfuse.grid import Grid
from soilfuse.io import with_grid

GRID = Grid.latlon((100.0, 100.2, 30.0, 30.16), 0.01)  # 16 x 20


def scene(n_days: int = 12, seed: int = 0) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, np.ndarray]:
    """LST that follows the STDF model exactly from each day to the next, with a cloudy block."""
    rng = np.random.default_rng(seed)
    dem = rng.uniform(200, 2500, GRID.shape)
    ndvi = rng.uniform(0.1, 0.8, GRID.shape)
    base = 300 - 0.0065 * dem + 4 * ndvi
    truth = np.stack([base + 0.8 * k - 0.0005 * k * dem for k in range(n_days)])
    obs = truth.copy()
    obs[5:9, 4:10, 6:14] = np.nan
    time = pd.date_range("2020-08-01", periods=n_days)
    lst = with_grid(xr.DataArray(obs, dims=("time", "y", "x"), coords={"time": time}, name="lst_day",
                                 attrs={"units": "K"}), GRID)
    return lst, with_grid(xr.DataArray(ndvi, dims=("y", "x"), name="ndvi"), GRID), \
        with_grid(xr.DataArray(dem, dims=("y", "x"), name="elevation", attrs={"units": "m"}), GRID), truth


def test_stdf_fill__reconstructs_model_lst_with_flags() -> None:
    lst, ndvi, dem, truth = scene()
    out = stdf_fill(lst, ndvi, dem, max_leverage=None)
    np.testing.assert_allclose(out["lst_day"].values, truth, rtol=1e-9)
    flags = out["lst_day_flag"].values
    assert (flags[5:9, 4:10, 6:14] == 3).all()
    assert (flags == 0).sum() == flags.size - 4 * 6 * 8
    assert out["lst_day"].attrs["units"] == "K" and "stdf_fill" in out["lst_day"].attrs["gapfill_method"]


def test_stdf_fill__daily_ndvi_and_target_fraction() -> None:
    lst, ndvi, dem, truth = scene()
    daily = ndvi.expand_dims(time=lst["time"]).transpose("time", "y", "x")
    full = stdf_fill(lst, daily, dem, max_leverage=None)
    np.testing.assert_allclose(full["lst_day"].values, truth, rtol=1e-9)
    # 48 of 320 cells are cloudy: 85 % clear already satisfies a target of 0.8, so nothing is filled
    lazy_target = stdf_fill(lst, daily, dem, target_fraction=0.8)
    assert (lazy_target["lst_day_flag"].values == 255).sum() == 4 * 48


def test_stdf_fill__missing_dem_cells_never_filled_and_chain_keeps_flags() -> None:
    lst, ndvi, dem, _ = scene()
    dem = dem.copy()
    dem[5, 7] = np.nan
    out = stdf_fill(lst, ndvi, dem, max_leverage=None)
    assert (out["lst_day_flag"].values[5:9, 5, 7] == 255).all()
    chained = fill_spatiotemporal(out, window=3)
    flags = chained["lst_day_flag"].values
    assert (flags[5:9, 5, 7] == 1).all() and flags[6, 4, 6] == 3  # 4-day gap: temporal


def test_stdf_fill__bad_inputs_raise() -> None:
    lst, ndvi, dem, _ = scene()
    with pytest.raises(DataError, match="NDVI must be daily"):
        stdf_fill(lst, ndvi.expand_dims(time=3).transpose("time", "y", "x"), dem)
    with pytest.raises(DataError, match="DEM"):
        stdf_fill(lst, ndvi, dem.isel(x=slice(0, 5)))
    with pytest.raises(DataError, match="target_fraction"):
        stdf_fill(lst, ndvi, dem, target_fraction=1.5)
    with pytest.raises(DataError, match="max_leverage"):
        stdf_fill(lst, ndvi, dem, max_leverage=0.0)


def scene_deviating_block() -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, np.ndarray]:
    """Exact STDF scene whose cloudy block is clear only on days 1 (+1 K off) and 4 (+4 K off) around day 2."""
    lst, ndvi, dem, truth = scene(n_days=6)
    truth = truth + np.random.default_rng(5).normal(0, 5, GRID.shape)  # not collinear with DEM and NDVI
    obs = truth.copy()
    obs[[0, 2, 3], 4:10, 6:14] = np.nan
    obs[1, 4:10, 6:14] += 1.0
    obs[4, 4:10, 6:14] += 4.0
    obs[:, 0, :3] = np.nan  # never clear: 100 % is never reached, so every reference date is used
    return lst.copy(data=obs), ndvi, dem, truth


@pytest.mark.parametrize(("weighting", "offset"), [("equal", 2.5), ("inverse_distance", 2.0)])
def test_stdf_fill__weighting_of_reference_dates(weighting: str, offset: float) -> None:
    lst, ndvi, dem, truth = scene_deviating_block()
    out = stdf_fill(lst, ndvi, dem, window_days=2, target_fraction=1.0, max_leverage=None,
                    weighting=weighting)  # type: ignore[arg-type]
    # the exact fits carry each reference's offset over: (1 + 4) / 2, or (1/1 + 4/2) / (1/1 + 1/2)
    np.testing.assert_allclose(out["lst_day"].values[2, 4:10, 6:14], truth[2, 4:10, 6:14] + offset, rtol=1e-9)


def test_stdf_fill__min_r2_skips_a_reference_date_without_skill() -> None:
    rng = np.random.default_rng(4)
    lst, ndvi, dem, _ = scene(n_days=3)
    soil = rng.normal(0, 10, GRID.shape)  # persistent pattern that DEM and NDVI do not explain
    truth = lst.values.copy()
    truth[:] = 300 - 0.0065 * dem.values + 4 * ndvi.values + soil + 0.8 * np.arange(3)[:, None, None]
    obs = truth.copy()
    obs[0] = 290 + rng.normal(0, 3, GRID.shape)  # day 0 (tried first) is unrelated to day 1
    obs[1, 4:10, 6:14] = np.nan
    da = lst.copy(data=obs)
    plain = stdf_fill(da, ndvi, dem, max_leverage=None)
    skipping = stdf_fill(da, ndvi, dem, max_leverage=None, min_r2=0.5)
    block = (1, slice(4, 10), slice(6, 14))
    np.testing.assert_allclose(skipping["lst_day"].values[block], truth[block], rtol=1e-9)
    assert np.sqrt(np.mean((plain["lst_day"].values[block] - truth[block]) ** 2)) > 3.0


def test_stdf_fill__tiles_follow_regional_change_and_fall_back_to_whole_image() -> None:
    lst, ndvi, dem, _ = scene(n_days=2)
    left = np.arange(GRID.shape[1])[None, :] < 10
    truth = lst.values.copy()
    truth[1] = truth[0] + np.where(left, 2.0, 6.0)  # the day-to-day change differs between the halves
    obs = truth.copy()
    obs[1, 2:6, 3:15] = np.nan
    obs[1, 10:16, 10:20] = np.nan  # a whole tile is cloudy: only the whole-image fit reaches it
    da = lst.copy(data=obs)
    whole = stdf_fill(da, ndvi, dem, max_leverage=None)
    tiled = stdf_fill(da, ndvi, dem, max_leverage=None, tiles=(10,))
    np.testing.assert_allclose(tiled["lst_day"].values[1, 2:6, 3:15], truth[1, 2:6, 3:15], rtol=1e-9)
    assert np.abs(whole["lst_day"].values[1, 2:6, 3:15] - truth[1, 2:6, 3:15]).max() > 1.0
    np.testing.assert_array_equal(tiled["lst_day"].values[1, 10:16, 10:20], whole["lst_day"].values[1, 10:16, 10:20])
    assert (tiled["lst_day_flag"].values[1, 10:16, 10:20] == 3).all()


def test_stdf_fill__options_identical_for_dask_awkward_chunks() -> None:
    lst, ndvi, dem, _ = scene_deviating_block()
    options = {"weighting": "inverse_distance", "min_r2": 0.5, "tiles": (8,), "window_days": 2, "time_chunk": 2}
    eager = stdf_fill(lst, ndvi, dem, **options)  # type: ignore[arg-type]
    lazy = stdf_fill(lst.chunk({"time": 4, "y": 5, "x": 7}), ndvi.chunk({"y": 3}), dem, **options)  # type: ignore[arg-type]
    xr.testing.assert_identical(lazy.compute(), eager)
    assert (eager["lst_day_flag"].values == 3).sum() > 0


def test_stdf_fill__bad_options_raise() -> None:
    lst, ndvi, dem, _ = scene()
    with pytest.raises(DataError, match="weighting"):
        stdf_fill(lst, ndvi, dem, weighting="nearest")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="min_r2"):
        stdf_fill(lst, ndvi, dem, min_r2=1.0)
    with pytest.raises(DataError, match="tiles"):
        stdf_fill(lst, ndvi, dem, tiles=(32, 16))


def covariate_scene() -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, xr.DataArray, np.ndarray]:
    """LST that changes from day to day by a weather field (the covariate) that eq. 1 alone cannot see."""
    lst, ndvi, dem, truth = scene()
    rng = np.random.default_rng(5)
    air = rng.normal(0, 3, truth.shape) + 290
    truth = truth + air  # LST(t1) - LST(t0) = model change + air(t1) - air(t0)
    cov = lst.copy(data=air).rename("t2m")
    return lst.copy(data=np.where(np.isnan(lst.values), np.nan, truth)), ndvi, dem, cov, truth


def test_stdf_fill__covariate_joins_the_regression() -> None:
    lst, ndvi, dem, cov, truth = covariate_scene()
    block = (slice(5, 9), slice(4, 10), slice(6, 14))
    plain = stdf_fill(lst, ndvi, dem, max_leverage=None)
    with_cov = stdf_fill(lst, ndvi, dem, max_leverage=None, covariate=cov)
    err_plain = np.abs(plain["lst_day"].values[block] - truth[block]).max()
    np.testing.assert_allclose(with_cov["lst_day"].values, truth, rtol=1e-9)
    assert err_plain > 3.0  # without it the day-to-day air change is noise (sd 4.2 K)
    assert "covariate='t2m'" in with_cov["lst_day"].attrs["gapfill_method"]
    lazy = stdf_fill(lst.chunk({"time": 5, "y": 7}), ndvi, dem, max_leverage=None, covariate=cov.chunk({"time": 3}),
                     time_chunk=4, window_days=3)
    eager = stdf_fill(lst, ndvi, dem, max_leverage=None, covariate=cov, window_days=3)
    xr.testing.assert_identical(lazy.compute(), eager)


def test_stdf_fill__covariate_gaps_and_bad_covariates() -> None:
    lst, ndvi, dem, cov, _ = covariate_scene()
    holed = cov.copy(data=cov.values.copy())
    holed.values[5:9, 4, 6] = np.nan
    out = stdf_fill(lst, ndvi, dem, max_leverage=None, covariate=holed)
    assert (out["lst_day_flag"].values[5:9, 4, 6] == 255).all()
    with pytest.raises(DataError, match=r"covariate must have dims \(time, y, x\)"):
        stdf_fill(lst, ndvi, dem, covariate=cov.isel(time=0))
    with pytest.raises(DataError, match="covariate must be daily on the LST's dates"):
        stdf_fill(lst, ndvi, dem, covariate=cov.isel(time=slice(0, 5)))
