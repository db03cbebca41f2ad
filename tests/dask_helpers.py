"""Test helper: prove that lazy code stays lazy (after xarray's ``raise_if_dask_computes``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask


class CountingScheduler:
    """Dask scheduler that counts computes and refuses more than ``max_computes``."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            msg = f"Too many computes: {self.total_computes} > {self.max_computes}"
            raise RuntimeError(msg)
        return dask.get(dsk, keys, **kwargs)


@contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Run the block under a scheduler that raises on more than ``max_computes`` computes."""
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
