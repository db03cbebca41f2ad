"""Gap-fillers build lazy graphs without computing and give the numpy numbers for awkward chunks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dask_helpers import raise_if_dask_computes
from soilfuse import gapfill
from soilfuse.grid import Grid
from soilfuse.io import with_grid

GRID = Grid.latlon((100.0, 100.13, 30.0, 30.19), 0.01)  # 19 x 13
N_DAYS = 45
AWKWARD = {"time": 7, "y": 5, "x": 4}




def inputs() -> xr.Dataset:
    rng = np.random.default_rng(9)
    t = np.arange(N_DAYS)[:, None, None]
    dem = rng.uniform(100, 3000, GRID.shape)
    ndvi = 0.3 + 0.2 * np.sin(t / 15.0) + 0.05 * rng.normal(size=(N_DAYS, *GRID.shape))
    lst = 295 + 5 * np.sin(t / 9.0) - 0.006 * dem + 3 * ndvi + rng.normal(0, 0.5, (N_DAYS, *GRID.shape))
    yy, xx = np.mgrid[: GRID.shape[0], : GRID.shape[1]]
    cloud = np.zeros(lst.shape, bool)
    for start, cy, cx in ((3, 4, 4), (12, 12, 8), (20, 6, 10), (31, 14, 3)):
        cloud[start:start + 9] |= ((yy - cy) ** 2 + (xx - cx) ** 2 < 12)[None]
    lst[cloud] = np.nan
    ndvi_obs = np.where(rng.random(ndvi.shape) < 0.4, np.nan, ndvi)
    ds = xr.Dataset(
        {"lst_day": (("time", "y", "x"), lst.astype("float32"), {"units": "K"}),
         "ndvi": (("time", "y", "x"), ndvi_obs, {"units": "1"}),
         "ndvi_true": (("time", "y", "x"), ndvi, {"units": "1"}),
         "elevation": (("y", "x"), dem, {"units": "m"})},
        coords={"time": pd.date_range("2020-05-01", periods=N_DAYS)},
    )
    return with_grid(ds, GRID)


CASES: dict[str, Callable[[xr.Dataset], xr.Dataset]] = {
    "fill_spatiotemporal": lambda ds: gapfill.fill_spatiotemporal(ds["lst_day"], max_gap=5, window=5),
    "savgol": lambda ds: gapfill.savgol(gapfill.fill_spatiotemporal(ds["lst_day"]), window=7, order=2),
    "whittaker_vcurve": lambda ds: gapfill.whittaker(ds["ndvi"], lmbda="vcurve"),
    "whittaker_gcv_weights": lambda ds: gapfill.whittaker(ds["ndvi"], xr.where(ds["ndvi"] > 0.3, 1.0, 0.5),
                                                          lmbda="gcv", order=3),
    "stdf": lambda ds: gapfill.stdf_fill(ds["lst_day"], ds["ndvi_true"], ds["elevation"], window_days=10,
                                         time_chunk=6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gapfill__lazy_graph_computes_nothing(name: str) -> None:
    ds = inputs().chunk({d: AWKWARD[d] for d in ("time", "y", "x")})
    with raise_if_dask_computes() as counter:
        out = CASES[name](ds)
    assert counter.total_computes == 0
    assert all(v.chunks is not None for v in out.data_vars.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_gapfill__dask_awkward_chunks_identical_to_numpy(name: str) -> None:
    ds = inputs()
    eager = CASES[name](ds)
    lazy = CASES[name](ds.chunk({d: AWKWARD[d] for d in ("time", "y", "x")})).compute()
    xr.testing.assert_identical(lazy, eager)
    field = next(str(k) for k in eager.data_vars if not str(k).endswith(("_flag", "_lambda")))
    assert (eager[f"{field}_flag"] != 0).any()  # the case exercises filling or smoothing


def test_gapfill__small_task_budget_same_result() -> None:
    ds = inputs()
    small = gapfill.whittaker(ds["ndvi"].chunk({"time": 9}), lmbda=100.0, task_bytes=40_000)
    # 8 (6 + order) bytes per value and day: the 19 x 13 field is split into tiles within the budget
    assert max(small.chunks["y"]) * max(small.chunks["x"]) * N_DAYS * 8 * (6 + 2) <= 40_000
    assert small.chunks["time"] == (N_DAYS,)
    xr.testing.assert_identical(small.compute(), gapfill.whittaker(ds["ndvi"], lmbda=100.0))
