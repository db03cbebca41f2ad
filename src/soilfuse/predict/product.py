"""Write predictions as a resumable Zarr product, with monthly means and NetCDF export.

:func:`write_product` creates the store from the lazy prediction's template with
:func:`soilfuse.io.gridded.init_zarr`, then computes and writes one region at a time
(``time`` × spatial tiles), recording each finished region. Killed and restarted with
``resume=True``, it computes only the regions still pending; the store counts as
complete (:func:`soilfuse.io.gridded.is_complete`) only after the last region.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr, tempfile, pathlib
>>> from soilfuse.grid import Grid
>>> from soilfuse.io.canonical import with_grid
>>> grid = Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.25)
>>> st = xr.DataArray(np.full((4, 4, 4), 280.0, "f4"), dims=("time", "y", "x"),
...                   coords={"time": pd.date_range("2020-01-01", periods=4)}, attrs={"units": "K"})
>>> lazy = with_grid(xr.Dataset({"st": st}), grid).chunk({"time": 2})
>>> path = write_product(lazy, pathlib.Path(tempfile.mkdtemp()) / "p.zarr", chunks={"time": 2})
>>> from soilfuse.io.gridded import is_complete
>>> is_complete(path)
True
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask
import xarray as xr
from tqdm.auto import tqdm

from soilfuse.io.gridded import init_zarr, is_complete, pending_regions, write_zarr

__all__ = ["monthly_means", "write_product"]

logger = logging.getLogger(__name__)


def write_product(
    lazy: xr.Dataset,
    path: str | Path,
    *,
    chunks: Mapping[str, int] | None = None,
    resume: bool = True,
    attrs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Compute ``lazy`` region by region into a Zarr store; resume after interruption.

    Parameters
    ----------
    lazy : xarray.Dataset
        The prediction (Dask-backed), in the canonical layout.
    path : str or Path
        The Zarr store to write.
    chunks : mapping, optional
        On-disk chunks (and region size), default ``time`` 32, ``y``/``x`` 512.
    resume : bool
        Keep an existing, incomplete store made for the same template and write only
        its pending regions. With ``False`` the store is rebuilt.
    attrs : mapping, optional
        Global attributes (title, summary, …) for the product.
    progress : bool
        Show a progress bar over regions.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.exists() and is_complete(path) and resume:
        logger.info("product %s is already complete; nothing to do", path)
        return path
    if not (resume and path.exists() and pending_regions(path)):
        # zeros_like keeps the Dask layout without evaluating the prediction graph
        init_zarr(xr.zeros_like(lazy), path, chunks=chunks, attrs=attrs)
    todo = pending_regions(path)
    logger.info("writing %d region(s) of %s", len(todo), path)
    # Compute as many regions at once as the scheduler has workers (memory: that many
    # blocks), then write and record each one.
    batch = max(1, int(dask.config.get("num_workers", None) or os.cpu_count() or 1))
    with tqdm(total=len(todo), desc=f"writing {path.name}", unit="region", disable=not progress) as bar:
        for i in range(0, len(todo), batch):
            regions = todo[i : i + batch]
            blocks = [lazy.isel({d: s for d, s in r.items() if d in lazy.dims}) for r in regions]
            for region, block in zip(regions, dask.compute(*blocks), strict=True):
                write_zarr(block, path, region=region)
                bar.update(1)
    return path


def monthly_means(ds: xr.Dataset, *, min_days: int = 20) -> xr.Dataset:
    """Calendar-month means (lazy); months with fewer than ``min_days`` valid days are NaN."""
    valid = ds.notnull().resample(time="MS").sum()
    out = ds.resample(time="MS").mean().where(valid >= min_days)
    for name in ds.data_vars:
        out[name].attrs = dict(ds[name].attrs)
        out[name].attrs["cell_methods"] = "time: mean (interval: 1 month)"
    return out
