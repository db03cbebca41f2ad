"""soilfuse.regrid with Dask: laziness, awkward chunkings, Datasets, plan warnings."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dask_helpers import raise_if_dask_computes
from soilfuse.grid import Grid, crs_of
from soilfuse.io.canonical import with_grid
from soilfuse.regrid import REGRID_METHODS, Regridder, RegridWarning, coarsen_mean, regrid
from soilfuse.regrid import regridder as regridder_module

FINE = Grid.latlon((100.0, 101.0, 30.0, 30.6), 0.02)  # 30 x 50 cells
COARSE = Grid.latlon((100.0, 101.0, 30.0, 30.6), 0.1)  # 6 x 10 cells, nested
EASE = Grid.ease2("9km").subset((100.1, 100.9, 30.1, 30.5))

# Each method with a target it is meant for.
TARGETS = {
    "bilinear": EASE,
    "nearest": EASE,
    "mean": COARSE,
    "broadcast": Grid.latlon((100.2, 100.8, 30.1, 30.5), 0.01),
}




def cube(n_time: int = 30, *, nan_share: float = 0.2, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = rng.random((n_time, *FINE.shape)).astype("float32")
    values[rng.random(values.shape) < nan_share] = np.nan
    time = pd.date_range("2020-01-01", periods=n_time, freq="D")
    da = xr.DataArray(
        values, dims=("time", "y", "x"), coords={"time": time}, name="sm",
        attrs={"units": "m3 m-3", "long_name": "soil moisture"},
    )
    return with_grid(da, FINE)


def test_regridder__building_and_applying_is_lazy():
    da = cube().chunk({"time": 7, "y": 13, "x": 17})
    with raise_if_dask_computes() as counter:
        rg = Regridder(FINE, COARSE, "mean")
        out = rg(da, return_valid_fraction=True)
        bil = regrid(da, EASE, method="bilinear")
        fast = coarsen_mean(da, 5)
    assert counter.total_computes == 0
    assert out["sm"].chunks is not None and bil.chunks is not None and fast.chunks is not None
    assert out["sm"].chunks[0] == (7, 7, 7, 7, 2)
    with raise_if_dask_computes(max_computes=1) as counter:
        computed = out["sm"].compute()
    assert counter.total_computes == 1
    expected = rg.regrid_array(da.values)
    np.testing.assert_array_equal(computed.values, expected)


@pytest.mark.parametrize("method", sorted(REGRID_METHODS))
@pytest.mark.parametrize(
    "chunks",
    [{"time": 7, "y": 13, "x": 17}, {"time": 30, "y": 4, "x": 49}, {"time": 1}],
    ids=["7-13-17", "30-4-49", "1-whole"],
)
def test_regrid__dask_equals_numpy_with_awkward_chunks(method, chunks):
    da = cube()
    target = TARGETS[method]
    kwargs: dict[str, Any] = {"method": method, "return_valid_fraction": True}
    eager = regrid(da, target, **kwargs)
    lazy = regrid(da.chunk(chunks), target, **kwargs)
    assert lazy["sm"].chunks is not None
    computed = lazy.compute()
    for name in ("sm", "sm_valid_fraction"):
        np.testing.assert_array_equal(computed[name].values, eager[name].values)
    assert eager["sm"].dtype == np.float32
    assert np.isfinite(eager["sm"].values).any()


def test_coarsen_mean__dask_equals_numpy_with_awkward_chunks():
    da = cube(nan_share=0.5)
    eager = coarsen_mean(da, (3, 5), return_valid_fraction=True)
    lazy = coarsen_mean(da.chunk({"time": 7, "y": 13, "x": 17}), (3, 5), return_valid_fraction=True)
    for name in ("sm", "sm_valid_fraction"):
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6, atol=0)
    assert np.isnan(eager["sm"].values).any() and np.isfinite(eager["sm"].values).any()


def test_regrid__dataset_keeps_attrs_dims_and_other_variables():
    da = cube(n_time=4)
    depth = xr.DataArray([2.5, 15.0], dims="depth", attrs={"units": "cm"})
    layered = (da.expand_dims(depth=2).assign_coords(depth=depth) * 2.0).rename("st")
    layered = layered.transpose("time", "depth", "y", "x")
    layered.attrs = {"units": "K"}
    ds = xr.Dataset(
        {
            "sm": da,
            "st": layered,
            "station_count": ("time", np.arange(4)),
            "lat_bnds": (("y", "bnds"), np.zeros((FINE.shape[0], 2))),
        },
        attrs={"title": "twin"},
    )
    ds = with_grid(ds, FINE).chunk({"time": 3})
    out = Regridder(FINE, COARSE, "mean")(ds, return_valid_fraction=True)
    assert set(out.data_vars) == {"sm", "sm_valid_fraction", "st", "st_valid_fraction", "station_count"}
    assert out["st"].dims == ("time", "depth", "y", "x")
    assert out["st"].attrs["units"] == "K" and out["st"].attrs["grid_mapping"] == "spatial_ref"
    assert out["sm"].attrs["long_name"] == "soil moisture"
    assert out["sm_valid_fraction"].attrs["units"] == "1"
    assert out.attrs == {"title": "twin"}
    assert crs_of(out).equals(COARSE.crs)
    assert Grid.from_dataset(out) == COARSE
    np.testing.assert_array_equal(out["station_count"].values, np.arange(4))
    sm = out["sm"].values
    np.testing.assert_allclose(out["st"].isel(depth=1).values, 2.0 * sm, rtol=1e-6)
    assert out["depth"].attrs["units"] == "cm"


def test_regrid__warns_when_plan_is_huge(monkeypatch):
    monkeypatch.setattr(regridder_module, "MAX_BLOCK_BYTES", 10_000)
    da = cube(n_time=10).chunk({"time": 5})
    rg = Regridder(FINE, COARSE, "mean")
    with pytest.warns(RegridWarning, match=r"obj.chunk\(time=") as record:
        rg(da)
    assert record[0].filename == __file__  # stacklevel points at the caller
    with pytest.warns(RegridWarning) as record:
        regrid(da, COARSE, method="mean")
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rg(da.compute())  # numpy input: no Dask plan, no warning
