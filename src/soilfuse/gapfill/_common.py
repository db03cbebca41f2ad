"""Shared plumbing of the gap-fillers: the flag registry, input splitting, chunking, output assembly."""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.gapfill._kernels import MISSING, OBSERVED, SMOOTHED, SPATIAL, STDF, TEMPORAL, combine_flags_kernel

__all__ = [
    "DEFAULT_TASK_BYTES",
    "FLAG_MEANINGS",
    "MISSING",
    "OBSERVED",
    "SMOOTHED",
    "SPATIAL",
    "STDF",
    "TEMPORAL",
    "assemble",
    "check_field",
    "combine_flags",
    "days_of",
    "flag_attrs",
    "split_input",
    "time_whole",
]

logger = logging.getLogger(__name__)

#: How each value of a gap-filled field was obtained: flag code -> meaning.
FLAG_MEANINGS: Mapping[int, str] = {
    OBSERVED: "observed",
    TEMPORAL: "temporal_interpolation",
    SPATIAL: "spatial_interpolation",
    STDF: "stdf_regression",
    SMOOTHED: "observed_smoothed",
    MISSING: "missing",
}

#: Default memory budget of one Dask task's work arrays (bytes).
DEFAULT_TASK_BYTES = 256 * 2**20


def split_input(obj: xr.DataArray | xr.Dataset, what: str) -> tuple[xr.DataArray, xr.DataArray | None]:
    """The field and its flags (or None) from a DataArray or a gap-filler's output Dataset."""
    if isinstance(obj, xr.DataArray):
        return obj, None
    if isinstance(obj, xr.Dataset):
        names = [str(n) for n in obj.data_vars if not str(n).endswith(("_flag", "_lambda"))]
        if len(names) != 1:
            msg = (
                f"{what} takes a DataArray or a Dataset with one field and its '<name>_flag'; "
                f"got variables {sorted(map(str, obj.data_vars))}. Select the field: ds['<name>']."
            )
            raise MissingVariableError(msg)
        name = names[0]
        flags = obj[f"{name}_flag"] if f"{name}_flag" in obj else None
        return obj[name], flags
    msg = f"{what} takes an xarray.DataArray or Dataset; got {type(obj).__name__}."
    raise DataError(msg)


def check_field(da: xr.DataArray, what: str, dims: tuple[str, ...] = ("time",)) -> str:
    """Name of ``da`` after checking it has ``dims`` (``"value"`` when unnamed)."""
    missing = [d for d in dims if d not in da.dims]
    if missing:
        msg = (
            f"{what} needs dims {list(dims)} but the input has {tuple(map(str, da.dims))}; "
            f"bring it to the canonical (time, y, x) layout with soilfuse.io.canonicalize."
        )
        raise DataError(msg)
    if da.dtype.kind != "f":
        msg = f"{what} needs a floating-point field with NaN for gaps; got dtype {da.dtype}. Cast it first."
        raise DataError(msg)
    return str(da.name) if da.name is not None else "value"


def days_of(da: xr.DataArray) -> FloatArray:
    """Time of each step in days since the first (the index when ``time`` has no datetime coordinate)."""
    if "time" in da.coords and np.issubdtype(da["time"].dtype, np.datetime64):
        times = pd.DatetimeIndex(da["time"].values)
        days = np.asarray((times - times[0]) / pd.Timedelta(days=1), dtype="float64")
        if days.size > 1 and not (np.diff(days) > 0).all():
            msg = "The time coordinate must increase strictly; sort it (da.sortby('time')) and drop duplicates."
            raise DataError(msg)
        return days
    return np.arange(da.sizes["time"], dtype="float64")


def time_whole(da: xr.DataArray, bytes_per_value: float, budget: int = DEFAULT_TASK_BYTES) -> xr.DataArray:
    """Rechunk a Dask-backed field so every chunk holds whole time series within a memory budget.

    ``time`` becomes one chunk; the spatial chunks are kept when
    ``nt * chunk_y * chunk_x * bytes_per_value <= budget`` and otherwise split into
    square tiles that fit. Numpy-backed fields are returned unchanged.
    """
    if da.chunks is None:
        return da
    nt = da.sizes["time"]
    spec: dict[Hashable, Any] = {"time": -1}
    others = [d for d in da.dims if d != "time"]
    current = {d: max(da.chunksizes[d]) for d in others}
    cells = math.prod(current.values()) if current else 1
    if nt * cells * bytes_per_value > budget and others:
        side = max(1, int(math.sqrt(budget / (nt * bytes_per_value))))
        spec.update({d: min(current[d], side) for d in others})
    return da.chunk(spec)


def combine_flags(before: xr.DataArray, after: xr.DataArray, prior: xr.DataArray | None, *, filled: int,
                  observed_to: int | None = None) -> xr.DataArray:
    """Lazy flags after one step (see :func:`soilfuse.gapfill._kernels.combine_flags_kernel`)."""
    if prior is None:
        prior = xr.zeros_like(before, dtype=np.uint8)
    return xr.apply_ufunc(
        combine_flags_kernel, before, after, prior.astype(np.uint8),
        kwargs={"filled": filled, "observed_to": observed_to},
        dask="parallelized", output_dtypes=[np.uint8],
    )


def flag_attrs(name: str, method: str) -> dict[str, Any]:
    """CF flag attributes of ``<name>_flag``."""
    return {
        "long_name": f"how each value of {name} was obtained",
        "flag_values": np.array(list(FLAG_MEANINGS), dtype=np.uint8),
        "flag_meanings": " ".join(FLAG_MEANINGS.values()),
        "comment": f"produced by {method}; codes in soilfuse.gapfill.FLAG_MEANINGS",
    }


def assemble(source: xr.DataArray, values: xr.DataArray, flags: xr.DataArray, *, name: str, method: str,
             extra: Mapping[str, xr.DataArray] | None = None) -> xr.Dataset:
    """The output Dataset: ``name`` (dtype, dims and attributes of ``source``) and ``<name>_flag``."""
    values = values.transpose(*source.dims).astype(source.dtype)
    values.attrs = {**source.attrs, "gapfill_method": method}
    flags = flags.transpose(*source.dims)
    flags.attrs = flag_attrs(name, method)
    if "spatial_ref" in source.coords:
        flags.attrs["grid_mapping"] = "spatial_ref"
        values.attrs["grid_mapping"] = "spatial_ref"
    data = {name: values.rename(name), f"{name}_flag": flags.rename(f"{name}_flag")}
    for key, da in (extra or {}).items():
        data[key] = da.rename(key)
    return xr.Dataset(data)
