"""Tests of lazy per-chunk prediction and resumable product writing."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords
from soilfuse.io.gridded import is_complete, open_gridded, pending_regions
from soilfuse.predict import cube_to_frame, monthly_means, predict_cube, write_product


def _cube(nt: int = 10, chunks: dict[str, int] | None = None) -> xr.Dataset:
    grid = Grid.latlon((100.0, 101.0, 30.0, 30.7), 0.1)
    rng = np.random.default_rng(0)
    t = pd.date_range("2020-01-01", periods=nt)
    ds = xr.Dataset(
        {
            "t2m": (("time", "y", "x"), rng.normal(280, 3, (nt, *grid.shape))),
            "elevation": (("y", "x"), rng.uniform(0, 1000, grid.shape)),
        },
        coords={"time": t},
    )
    ds["t2m"][2, 3, 4] = np.nan
    return with_grid(ds, grid).chunk(chunks or {"time": 3, "y": 4, "x": 6})


def _fn(df: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"st": df["t2m"].to_numpy() - 0.0065 * df["elevation"].to_numpy()}


def test_cube_to_frame__row_order_and_broadcast() -> None:
    cube = _cube().compute()
    df = cube_to_frame(cube.isel(time=slice(0, 2)))
    assert len(df) == 2 * 7 * 10
    assert df["t2m"].iloc[7 * 10 + 3] == cube["t2m"].values[1, 0, 3]
    assert df["elevation"].iloc[7 * 10 + 3] == cube["elevation"].values[0, 3]
    assert df["lon"].iloc[3] == pytest.approx(100.35) and df["lat"].iloc[0] == pytest.approx(30.65)
    assert df["doy"].iloc[-1] == 2


@pytest.mark.parametrize(
    "chunks", [{"time": 3, "y": 4, "x": 6}, {"time": 10, "y": 7, "x": 10}, {"time": 1, "y": 2, "x": 3}]
)
def test_predict_cube__lazy_and_chunk_invariant(chunks: dict[str, int]) -> None:
    cube = _cube(chunks=chunks)
    calls = []

    def counting(df: pd.DataFrame) -> dict[str, np.ndarray]:
        calls.append(len(df))
        return _fn(df)

    with dask.config.set(scheduler="synchronous"):
        out = predict_cube(cube, counting, outputs={"st": {"units": "K"}})
        assert calls == []  # building the graph runs no model
        values = out["st"].values
    ref = cube["t2m"].values - 0.0065 * cube["elevation"].values[None]
    np.testing.assert_allclose(values, ref.astype("float32"), rtol=1e-6)
    assert np.isnan(values[2, 3, 4])  # missing input -> missing output, nothing invented


def test_predict_cube__layered_outputs() -> None:
    cube = _cube()
    depth = depth_coords([0, 5, 10], [0, 5, 10])

    def fn(df: pd.DataFrame) -> dict[str, np.ndarray]:
        base = df["t2m"].to_numpy()[:, None]
        return {"st": base + np.array([0.0, 1.0, 2.0])[None, :]}

    out = predict_cube(cube, fn, outputs={"st": {"units": "K"}}, depth=depth).compute()
    assert out["st"].dims == ("time", "depth", "y", "x")
    diff = (out["st"].isel(depth=2) - out["st"].isel(depth=0)).values
    assert np.isnan(diff).sum() == 1
    np.testing.assert_allclose(diff[np.isfinite(diff)], 2.0, atol=1e-4)
    assert out["layer"].values.tolist() == ["0cm", "5cm", "10cm"]


def test_write_product__resumes_only_pending_regions(tmp_path: Path) -> None:
    cube = _cube(chunks={"time": 5, "y": 7, "x": 10})
    calls: list[int] = []

    def counting(df: pd.DataFrame) -> dict[str, np.ndarray]:
        calls.append(len(df))
        return _fn(df)

    lazy = predict_cube(cube, counting, outputs={"st": {"units": "K"}})
    path = tmp_path / "product.zarr"

    class Killed(Exception):
        pass

    def dying(df: pd.DataFrame) -> dict[str, np.ndarray]:
        if calls:
            raise Killed
        return counting(df)

    # one region per batch, so the first region is written before the "kill"
    with dask.config.set(num_workers=1), pytest.raises(Killed):
        write_product(predict_cube(cube, dying, outputs={"st": {"units": "K"}}), path, chunks={"time": 5},
                      progress=False)
    assert not is_complete(path)
    assert len(pending_regions(path)) == 1
    calls.clear()
    write_product(lazy, path, chunks={"time": 5}, progress=False)
    assert len(calls) == 1  # only the second time chunk was computed
    assert is_complete(path)
    back = open_gridded(path, chunks=None)
    ref = cube["t2m"].values - 0.0065 * cube["elevation"].values[None]
    np.testing.assert_allclose(back["st"].values, ref, rtol=1e-6)


def test_monthly_means__min_days() -> None:
    cube = _cube(nt=60).compute()
    m = monthly_means(cube[["t2m"]], min_days=30)
    assert m.sizes["time"] == 2
    jan = cube["t2m"].sel(time="2020-01").mean("time")
    np.testing.assert_allclose(m["t2m"].isel(time=0), jan)
    assert bool(m["t2m"].isel(time=1).isnull().all())  # February 2020 has 29 days < 30
