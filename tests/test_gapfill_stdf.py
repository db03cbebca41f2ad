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
