"""Spatio-temporal linear gap filling of daily fields (LST, vegetation indices).

Wang et al. (seed 000 §2.2.1) fill cloud gaps in daily MODIS LST and EVI with a
temporal-then-spatial linear interpolation adapted from Chen et al. (2017) and Cao et
al. (2018), before Savitzky–Golay smoothing. :func:`fill_spatiotemporal` does:

1. **Temporal** (flag 1): each missing value is linearly interpolated in time between
   the nearest valid observations of the same pixel before and after it, when these
   are at most ``max_gap + 1`` days apart (a run of at most ``max_gap`` missing days);
   no extrapolation past the first or last observation.
2. **Spatial** (flag 2): what is still missing on a day is the inverse-distance
   weighted mean (weights ``d ** -power``, ``d`` in cells) of the cells holding a value
   after step 1 within a ``window × window`` square around it, when there are at least
   ``min_neighbours`` of them. Cells beyond the grid edge count as missing.

Values that stay missing are flagged 255. Observed values are never changed (flag 0).

Chunking: step 1 needs whole time series, so the field is rechunked to one ``time``
chunk with spatial tiles sized to a memory budget; step 2 adds a halo of
``window // 2`` cells around each tile (:func:`dask.array.map_overlap`). The result is
identical for any input chunking.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr
>>> v = np.full((5, 3, 3), 300.0); v[2, 1, 1] = np.nan; v[:, 0, 0] = np.nan
>>> da = xr.DataArray(v, dims=("time", "y", "x"), name="lst_day",
...                   coords={"time": pd.date_range("2020-01-01", periods=5)})
>>> out = fill_spatiotemporal(da, max_gap=2, window=3)
>>> out["lst_day_flag"].values[2].tolist()
[[2, 0, 0], [0, 1, 0], [0, 0, 0]]
"""

from __future__ import annotations

import logging
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.gapfill._common import (
    DEFAULT_TASK_BYTES,
    SPATIAL,
    TEMPORAL,
    assemble,
    check_field,
    combine_flags,
    days_of,
    split_input,
    time_whole,
)
from soilfuse.gapfill._kernels import idw_fill_kernel, interpolate_time_kernel

__all__ = ["fill_spatiotemporal"]

logger = logging.getLogger(__name__)


def fill_spatiotemporal(
    da: xr.DataArray | xr.Dataset,
    *,
    max_gap: int = 16,
    window: int = 11,
    power: float = 2.0,
    min_neighbours: int = 3,
    task_bytes: int = DEFAULT_TASK_BYTES,
) -> xr.Dataset:
    """Fill gaps by linear interpolation in time, then inverse-distance interpolation in space.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        Field with dims ``(time, y, x)`` (any order; NaN = missing), e.g. daily
        ``lst_day`` in K or ``evi`` (1); or the output of another gap-filler (its
        flags are carried on).
    max_gap : int
        Longest run of missing days bridged in time (days).
    window : int
        Odd edge of the square spatial search window (cells).
    power : float
        Inverse-distance power.
    min_neighbours : int
        Valid cells needed in the window for a spatial fill.
    task_bytes : int
        Memory budget per Dask task for choosing spatial tiles (bytes).

    Returns
    -------
    xarray.Dataset
        ``<name>`` (same dtype, units and attributes as the input) and
        ``<name>_flag`` (uint8: 0 observed, 1 temporal, 2 spatial, 255 missing;
        see :data:`soilfuse.gapfill.FLAG_MEANINGS`). Lazy for Dask input, with one
        ``time`` chunk.

    Raises
    ------
    DataError
        If dims are missing, the field is not floating point, or parameters are out
        of range.

    See Also
    --------
    savgol : smooth the filled series.
    stdf_fill : regression-based LST reconstruction for long cloudy spells.
    """
    field, prior = split_input(da, "fill_spatiotemporal()")
    name = check_field(field, "fill_spatiotemporal()", ("time", "y", "x"))
    if max_gap < 0 or window < 1 or window % 2 == 0 or min_neighbours < 1:
        msg = (
            f"Need max_gap >= 0, an odd window >= 1 and min_neighbours >= 1; got max_gap={max_gap}, "
            f"window={window}, min_neighbours={min_neighbours}."
        )
        raise DataError(msg)
    days = days_of(field)
    work = time_whole(field.transpose(..., "y", "x"), bytes_per_value=48.0, budget=task_bytes)
    temporal = xr.apply_ufunc(
        interpolate_time_kernel, work, input_core_dims=[["time"]], output_core_dims=[["time"]],
        kwargs={"days": days, "max_gap": float(max_gap)}, dask="parallelized", output_dtypes=[np.float64],
    ).transpose(*work.dims)
    spatial_kwargs: dict[str, Any] = {"window": window, "power": power, "min_neighbours": min_neighbours}
    data = temporal.data
    if isinstance(data, dsa.Array):
        axes = {temporal.get_axis_num("y"): window // 2, temporal.get_axis_num("x"): window // 2}
        filled = dsa.map_overlap(idw_fill_kernel, data, depth=axes, boundary="none", dtype=np.float64,
                                 meta=np.empty((0,) * data.ndim), **spatial_kwargs)
    else:
        filled = idw_fill_kernel(data, **spatial_kwargs)
    spatial = temporal.copy(data=filled)
    flags = combine_flags(work, temporal, None if prior is None else prior.transpose(*work.dims), filled=TEMPORAL)
    flags = combine_flags(temporal, spatial, flags, filled=SPATIAL)
    method = (
        f"fill_spatiotemporal(max_gap={max_gap} d, window={window} cells, power={power}, "
        f"min_neighbours={min_neighbours})"
    )
    return assemble(field, spatial, flags, name=name, method=method)
