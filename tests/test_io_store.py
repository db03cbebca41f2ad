"""Tests of soilfuse.io.store: atomic paths, init_zarr, region writes and resuming."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import GridError, SoilfuseWarning
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.io.canonical import with_grid
from soilfuse.io.gridded import open_gridded, write_zarr
from soilfuse.io.store import (
    atomic_path,
    completed_regions,
    init_zarr,
    is_complete,
    pending_regions,
)

GRID = Grid.latlon((100.0, 101.2, 30.0, 30.9), 0.1)


def make_dataset(nt: int, *, layered: bool = False) -> xr.Dataset:
    rng = np.random.default_rng(0)
    shape: tuple[int, ...] = (nt, 2, *GRID.shape) if layered else (nt, *GRID.shape)
    dims = ("time", "depth", "y", "x") if layered else ("time", "y", "x")
    ds = xr.Dataset(
        {"sm": (dims, rng.uniform(0.05, 0.45, shape).astype("float32")),
         "elevation": (("y", "x"), rng.uniform(0, 3000, GRID.shape), {"units": "m"})},
        coords={"time": pd.date_range("2020-01-01", periods=nt)},
    )
    if layered:
        ds = ds.assign_coords(cf.depth_coords([0, 5], [5, 15]))
    return with_grid(ds, GRID)


def failing_block(fail_at: int) -> Callable[..., np.ndarray]:
    def fn(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info is not None and block_info[None]["chunk-location"][0] == fail_at:
            msg = "simulated failure in the middle of a write"
            raise OSError(msg)
        return block

    return fn


def test_atomic_path__file_replaced_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.txt.tmp-")
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_init_zarr__region_writes_and_resume_skip_finished(tmp_path: Path) -> None:
    truth = make_dataset(10, layered=True)
    template = xr.zeros_like(truth.chunk())
    path = init_zarr(template, tmp_path / "prod.zarr", chunks={"time": 4, "y": 5})
    sidecar = tmp_path / "prod.zarr.regions.json"
    assert sidecar.exists() and not is_complete(path)
    assert [p.name for p in path.iterdir() if p.name.startswith(".")] == []
    with pytest.warns(SoilfuseWarning, match="0 of 6 chunks"):
        first = open_gridded(path)
    assert bool(first["sm"].isnull().all())
    regions = pending_regions(path, {"time": 4})
    assert [r["time"] for r in regions] == [slice(0, 4), slice(4, 8), slice(8, 10)]

    # first run: region 0 succeeds, region 1 fails midway, so only region 0 is recorded
    write_zarr(truth.isel(regions[0]), path, region=regions[0])
    block = truth.isel(regions[1])
    sm = block["sm"].chunk({"time": 1}).data
    block["sm"] = (block["sm"].dims, da.map_blocks(failing_block(3), sm, dtype=sm.dtype))
    with pytest.raises(OSError, match="simulated failure"):
        write_zarr(block, path, region=regions[1])
    assert completed_regions(path) == [{"time": slice(0, 4), "depth": slice(0, 2),
                                        "y": slice(0, 9), "x": slice(0, 12)}]

    # resumed run: only the unfinished regions are pending, and get written
    resumed = pending_regions(path, {"time": 4})
    assert [r["time"] for r in resumed] == [slice(4, 8), slice(8, 10)]
    for region in resumed:
        write_zarr(truth.isel(region), path, region=region)
    assert is_complete(path) and pending_regions(path) == []
    back = open_gridded(path)
    assert Grid.from_dataset(back) == GRID
    for name in ("sm", "elevation"):
        np.testing.assert_array_equal(back[name].values, truth[name].values)
    assert back["elevation"].attrs["units"] == "m"
    assert back["layer"].values.tolist() == ["0-5cm", "5-15cm"]
    assert back.attrs["time_coverage_end"] == "2020-01-10T00:00:00Z"
    assert back["sm"].encoding["chunks"] == (4, 2, 5, 12)


def test_write_zarr__region_checks_alignment_and_coordinates(tmp_path: Path) -> None:
    truth = make_dataset(8)
    path = init_zarr(xr.zeros_like(truth.chunk()), tmp_path / "r.zarr", chunks={"time": 4})
    with pytest.raises(GridError, match="chunk boundary"):
        write_zarr(truth.isel(time=slice(2, 6)), path, region={"time": slice(2, 6)})
    with pytest.raises(GridError, match="do not match the store"):
        write_zarr(truth.isel(time=slice(0, 4)), path, region={"time": slice(4, 8)})
    with pytest.raises(GridError, match="length"):
        write_zarr(truth.isel(time=slice(0, 3)), path, region={"time": slice(0, 4)})
    with pytest.raises(FileNotFoundError, match="init_zarr"):
        write_zarr(truth, tmp_path / "none.zarr", region={"time": slice(0, 4)})
    assert completed_regions(path) == []


def test_pending_regions__region_lengths_must_be_chunk_multiples(tmp_path: Path) -> None:
    truth = make_dataset(8)
    path = init_zarr(xr.zeros_like(truth.chunk()), tmp_path / "m.zarr", chunks={"time": 4, "x": 5})
    assert len(pending_regions(path)) == 2 * 3  # 2 time chunks x 3 x-chunks (5, 5, 2)
    assert [r["x"] for r in pending_regions(path, {"time": 8, "x": 10})] == [slice(0, 10), slice(10, 12)]
    with pytest.raises(GridError, match="multiple of the store chunk 4"):
        pending_regions(path, {"time": 6})
    assert pending_regions(tmp_path / "none.zarr") == []
    assert not is_complete(tmp_path / "none.zarr")
