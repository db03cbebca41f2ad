"""Spatio-temporal linear gap filling through its xarray wrapper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.gapfill import fill_spatiotemporal
from soilfuse.grid import Grid
from soilfuse.io import with_grid

GRID = Grid.latlon((100.0, 100.06, 30.0, 30.05), 0.01)  # 5 x 6


def field(values: np.ndarray, name: str = "lst_day") -> xr.DataArray:
    time = pd.date_range("2020-07-01", periods=values.shape[0])
    da = xr.DataArray(values, dims=("time", "y", "x"), coords={"time": time}, name=name, attrs={"units": "K"})
    return with_grid(da, GRID)


def test_fill_spatiotemporal__temporal_then_spatial_values_and_flags() -> None:
    t = np.arange(10.0)
    values = np.broadcast_to(280.0 + 2.0 * t[:, None, None], (10, *GRID.shape)).copy()
    values[3:6, 1, 1] = np.nan          # 3-day gap: temporal, exact on a linear trend
    values[:, 4, 5] = np.nan            # never observed: spatial from neighbours
    values[2:9, 0, 0] = np.nan          # 7-day gap > max_gap=5: spatial instead
    out = fill_spatiotemporal(field(values), max_gap=5, window=3)
    filled, flags = out["lst_day"].values, out["lst_day_flag"].values
    np.testing.assert_allclose(filled[3:6, 1, 1], 280.0 + 2.0 * t[3:6])
    assert (flags[3:6, 1, 1] == 1).all()
    # neighbours of (4, 5) hold 280 + 2t, so the weighted mean is exactly that
    np.testing.assert_allclose(filled[:, 4, 5], 280.0 + 2.0 * t)
    assert (flags[:, 4, 5] == 2).all()
    assert (flags[2:9, 0, 0] == 2).all()
    assert (flags[0] == 0).sum() == GRID.shape[0] * GRID.shape[1] - 1
    assert out["lst_day"].attrs["units"] == "K" and out["lst_day"].attrs["grid_mapping"] == "spatial_ref"


def test_fill_spatiotemporal__still_missing_flagged_255() -> None:
    values = np.full((4, *GRID.shape), np.nan)
    values[1, 0, 0] = 290.0
    out = fill_spatiotemporal(field(values), window=3, min_neighbours=1)
    flags = out["lst_day_flag"].values
    assert flags[1, 0, 0] == 0
    assert (flags[1, :2, :2].ravel()[1:] == 2).all()
    assert (flags[0] == 255).all() and np.isnan(out["lst_day"].values[0]).all()


def test_fill_spatiotemporal__input_untouched_dtype_kept() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(300, 2, (12, *GRID.shape)).astype("float32")
    values[rng.random(values.shape) < 0.3] = np.nan
    da = field(values)
    before = da.copy(deep=True)
    out = fill_spatiotemporal(da)
    xr.testing.assert_identical(da, before)
    assert out["lst_day"].dtype == np.float32
    observed = np.isfinite(values)
    np.testing.assert_array_equal(out["lst_day"].values[observed], values[observed])


def test_fill_spatiotemporal__bad_arguments_raise() -> None:
    da = field(np.zeros((3, *GRID.shape)))
    with pytest.raises(DataError, match="odd window"):
        fill_spatiotemporal(da, window=4)
    with pytest.raises(DataError, match="dims"):
        fill_spatiotemporal(da.isel(x=0))
    with pytest.raises(DataError, match="floating-point"):
        fill_spatiotemporal(da.astype("int16"))
