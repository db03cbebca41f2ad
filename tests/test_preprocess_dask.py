"""Preprocess functions stay lazy on Dask input and give the numpy numbers for awkward chunks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dask_helpers import raise_if_dask_computes
from soilfuse import preprocess
from soilfuse.grid import Grid
from soilfuse.io import with_grid

GRID = Grid.latlon((100.0, 100.13, 30.0, 30.2), 0.01)  # 20 x 13 cells
AWKWARD = {"time": 4, "y": 7, "x": 5}




def modis_like(seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (10, *GRID.shape)
    time = pd.date_range("2021-06-01", periods=10)
    data: dict[str, Any] = {}
    for b, (lo, hi) in enumerate([(0.02, 0.2), (0.2, 0.5), (0.01, 0.1), (0.03, 0.2), (0.2, 0.45),
                                  (0.1, 0.35), (0.05, 0.25)], start=1):
        values = rng.uniform(lo, hi, shape)
        values[rng.random(shape) < 0.1] = np.nan
        data[f"refl_b{b}"] = (("time", "y", "x"), values.astype("float32"), {"units": "1"})
    data["lst_day"] = (("time", "y", "x"), rng.uniform(280, 320, shape), {"units": "K"})
    data["lst_night"] = (("time", "y", "x"), rng.uniform(270, 290, shape), {"units": "K"})
    data["albedo"] = (("time", "y", "x"), rng.uniform(0.1, 0.5, shape), {"units": "1"})
    data["tp"] = (("time", "y", "x"), rng.gamma(0.5, 4.0, shape), {"units": "mm day-1"})
    data["qc_day"] = (("time", "y", "x"), rng.integers(0, 4, shape).astype("uint8"))
    data["elevation"] = (("y", "x"), rng.uniform(0, 3000, GRID.shape), {"units": "m"})
    return with_grid(xr.Dataset(data, coords={"time": time}), GRID)


CASES: dict[str, Callable[[xr.Dataset], xr.Dataset | xr.DataArray]] = {
    "spectral_indices": lambda ds: preprocess.spectral_indices(ds),
    "lst_mean": preprocess.lst_mean,
    "dtr": preprocess.dtr,
    "see": lambda ds: preprocess.soil_evaporative_efficiency(ds["lst_day"], preprocess.ndvi(ds), block=6),
    "slope_aspect": lambda ds: preprocess.slope_aspect(ds["elevation"], edge="reflect"),
    "tpi": lambda ds: preprocess.tpi(ds["elevation"]),
    "antecedent": lambda ds: preprocess.antecedent_precipitation(ds["tp"], m=3),
    "masks": lambda ds: preprocess.apply_masks(ds["lst_day"], preprocess.snow_frozen_mask(ds["lst_day"], ds["albedo"]),
                                               preprocess.qc_bad_mask(ds["qc_day"], product="MOD11")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_preprocess__lazy_and_chunk_independent(name: str) -> None:
    ds = modis_like()
    eager = CASES[name](ds)
    chunked = ds.chunk({d: AWKWARD[str(d)] for d in ds.dims})
    with raise_if_dask_computes() as counter:
        lazy = CASES[name](chunked)
    assert counter.total_computes == 0
    lazy_vars = lazy.data_vars.values() if isinstance(lazy, xr.Dataset) else [lazy]
    assert all(v.chunks is not None for v in lazy_vars)
    xr.testing.assert_allclose(lazy.compute(), eager, rtol=0, atol=0)
    assert "spatial_ref" in lazy.coords
