"""Temporal smoothers: Savitzky–Golay and the weighted Whittaker smoother with automatic λ.

:func:`savgol`
    Savitzky–Golay filter along time (``scipy.signal.savgol_filter``), applied after
    gap filling as in Wang et al. (seed 000 §2.2.1, after Chen et al. 2004). It
    smooths but never fills: positions without a value stay missing.

:func:`whittaker`
    Weighted Whittaker smoother (Eilers 2003), the basis of the vegetation-index
    reconstruction used by Song et al. (seed 003 §2.2.1, after Kong et al. 2019). It
    both smooths and interpolates (zero weight = gap), with λ fixed or chosen per
    pixel by the V-curve (Frasso and Eilers 2015) or generalised cross-validation.

Why not ``whittaker-eilers``?
    The installed ``whittaker-eilers`` 0.2 (Rust) solves one series per Python call,
    must be rebuilt or re-weighted for every pixel, and selects λ only by
    cross-validation through a dense smoother matrix, which its own documentation
    calls extremely slow; it has no V-curve. soilfuse therefore uses its own banded
    LDLᵀ solver vectorised across pixels (:mod:`soilfuse.gapfill._kernels`), with
    V-curve and GCV (the trace of the hat matrix from the band of the inverse). The
    tests check it against ``whittaker-eilers`` for fixed λ.

Flags (``<name>_flag``, :data:`soilfuse.gapfill.FLAG_MEANINGS`): values that were
observed become 4 (smoothed); values earlier gap-fillers made keep their code; values
the Whittaker smoother interpolates across gaps are 1 (temporal); missing stays 255.

Chunking: both need whole series per pixel, so Dask input is rechunked to one
``time`` chunk with spatial tiles sized to a memory budget (``task_bytes``); memory
per task is bounded by it, whatever the domain size.

Usage
-----
>>> import numpy as np, xarray as xr
>>> t = np.arange(60.0)
>>> y = np.sin(t / 10.0); y[20:25] = np.nan
>>> da = xr.DataArray(y[:, None, None], dims=("time", "y", "x"), name="evi")
>>> out = whittaker(da, lmbda=10.0)
>>> int(out["evi_flag"][22, 0, 0]), round(float(out["evi"][22, 0, 0]), 2)
(1, 0.81)
>>> sg = savgol(da, window=7, order=2)
>>> int(sg["evi_flag"][0, 0, 0]), bool(np.isnan(sg["evi"][22, 0, 0]))
(4, True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.gapfill._common import (
    DEFAULT_TASK_BYTES,
    SMOOTHED,
    TEMPORAL,
    assemble,
    check_field,
    combine_flags,
    days_of,
    split_input,
    time_whole,
)
from soilfuse.gapfill._kernels import savgol_kernel, whittaker_kernel

__all__ = ["DEFAULT_LAMBDAS", "savgol", "whittaker"]

logger = logging.getLogger(__name__)

#: Default λ grid searched by the automatic rules (log10 λ from −1 to 5 in steps of 0.5).
DEFAULT_LAMBDAS: tuple[float, ...] = tuple(float(v) for v in 10.0 ** np.arange(-1.0, 5.01, 0.5))


def savgol(
    da: xr.DataArray | xr.Dataset,
    *,
    window: int = 7,
    order: int = 2,
    flags: xr.DataArray | None = None,
    task_bytes: int = DEFAULT_TASK_BYTES,
) -> xr.Dataset:
    """Savitzky–Golay smoothing along time.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        Field with a ``time`` dim (NaN = missing), or the output of a gap-filler such
        as :func:`fill_spatiotemporal` (its flags are carried on).
    window : int
        Odd window length in time steps (days); at most the series length.
    order : int
        Polynomial order, smaller than ``window``.
    flags : xarray.DataArray, optional
        Flags of ``da`` from an earlier step (taken from ``da`` when it is a Dataset).
    task_bytes : int
        Memory budget per Dask task (bytes).

    Returns
    -------
    xarray.Dataset
        ``<name>`` smoothed (dtype and attributes of the input; gaps stay NaN) and
        ``<name>_flag`` (observed → 4, earlier fills keep their code, 255 missing).

    Raises
    ------
    DataError
        If ``window`` is even, longer than the series, or not larger than ``order``.

    Notes
    -----
    Series with gaps are completed by linear interpolation before filtering and the
    gaps are blanked again afterwards (see :func:`soilfuse.gapfill._kernels.savgol_kernel`);
    ``mode="interp"`` fits the edge windows with a polynomial instead of padding.
    """
    field, prior = split_input(da, "savgol()")
    prior = flags if flags is not None else prior
    name = check_field(field, "savgol()")
    nt = field.sizes["time"]
    if window % 2 == 0 or window < 3 or window > nt or not 0 <= order < window:
        msg = (
            f"savgol() needs an odd window in 3..{nt} (the series length) and 0 <= order < window; "
            f"got window={window}, order={order}."
        )
        raise DataError(msg)
    days = days_of(field)
    work = time_whole(field, bytes_per_value=40.0, budget=task_bytes)
    smooth = xr.apply_ufunc(
        savgol_kernel, work, input_core_dims=[["time"]], output_core_dims=[["time"]],
        kwargs={"days": days, "window": window, "order": order}, dask="parallelized",
        output_dtypes=[np.float64],
    ).transpose(*work.dims)
    prior_w = None if prior is None else prior.transpose(*work.dims)
    out_flags = combine_flags(work, smooth, prior_w, filled=TEMPORAL, observed_to=SMOOTHED)
    return assemble(field, smooth, out_flags, name=name, method=f"savgol(window={window}, order={order})")


def whittaker(
    da: xr.DataArray | xr.Dataset,
    weights: xr.DataArray | None = None,
    *,
    lmbda: float | Literal["vcurve", "gcv"] = "vcurve",
    order: int = 2,
    lambdas: Sequence[float] | None = None,
    flags: xr.DataArray | None = None,
    task_bytes: int = DEFAULT_TASK_BYTES,
) -> xr.Dataset:
    """Weighted Whittaker smoother and gap filler (Eilers 2003) along time.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        Field with a ``time`` dim of equally spaced steps (NaN = gap), e.g. daily EVI
        (1); or a gap-filler's output.
    weights : xarray.DataArray, optional
        Non-negative weights broadcastable to ``da`` (e.g. 1 for good QC, 0.5 for
        other quality); 1 by default. Gaps get weight 0.
    lmbda : float or {"vcurve", "gcv"}
        Smoothing parameter λ (> 0), or the rule choosing λ per pixel on ``lambdas``.
    order : int
        Order of the penalised differences (1–3; 2 penalises curvature).
    lambdas : sequence of float, optional
        Candidate λ grid for the automatic rules (:data:`DEFAULT_LAMBDAS` by default).
    flags : xarray.DataArray, optional
        Flags from an earlier step (taken from ``da`` when it is a Dataset).
    task_bytes : int
        Memory budget per Dask task (bytes).

    Returns
    -------
    xarray.Dataset
        ``<name>`` smoothed and gap-free wherever a series has at least ``order + 1``
        weighted values; ``<name>_flag`` (observed → 4, interpolated gaps → 1, 255
        missing); and, for automatic λ, ``<name>_lambda`` (λ chosen per pixel).

    Raises
    ------
    DataError
        If λ, the order or the grid are invalid, or the time steps are not equally spaced.
    """
    field, prior = split_input(da, "whittaker()")
    prior = flags if flags is not None else prior
    name = check_field(field, "whittaker()")
    auto = isinstance(lmbda, str)
    if auto and lmbda not in ("vcurve", "gcv"):
        msg = f"lmbda must be a positive number, 'vcurve' or 'gcv'; got {lmbda!r}."
        raise DataError(msg)
    if not auto and not float(lmbda) > 0:
        msg = f"lmbda must be positive; got {lmbda}."
        raise DataError(msg)
    if order not in (1, 2, 3):
        msg = f"order must be 1, 2 or 3; got {order}."
        raise DataError(msg)
    grid = np.asarray(DEFAULT_LAMBDAS if lambdas is None else lambdas, dtype="float64")
    if auto and (grid.size < 2 or not (grid > 0).all() or not (np.diff(grid) > 0).all()):
        msg = f"lambdas must be at least two increasing positive values; got {grid.tolist()}."
        raise DataError(msg)
    days = days_of(field)
    if days.size > 2 and not np.allclose(np.diff(days), days[1] - days[0]):
        msg = (
            "whittaker() treats samples as equally spaced but the time steps differ; reindex to a "
            "regular daily axis first (new days become gaps)."
        )
        raise DataError(msg)
    w = xr.ones_like(field) if weights is None else weights.broadcast_like(field).transpose(*field.dims)
    work = field.chunk() if (w.chunks is not None and field.chunks is None) else field
    work = time_whole(work, bytes_per_value=8.0 * (6 + order), budget=task_bytes)
    if work.chunks is not None:
        w = w.chunk(work.chunksizes)
    smooth, lam = xr.apply_ufunc(
        whittaker_kernel, work, w, input_core_dims=[["time"], ["time"]], output_core_dims=[["time"], []],
        kwargs={"lmbda": lmbda, "order": order, "lambdas": grid}, dask="parallelized",
        output_dtypes=[np.float64, np.float64],
    )
    smooth = smooth.transpose(*work.dims)
    used = work.where(w > 0)
    prior_w = None if prior is None else prior.transpose(*work.dims)
    out_flags = combine_flags(used, smooth, prior_w, filled=TEMPORAL, observed_to=SMOOTHED)
    method = f"whittaker(lmbda={lmbda!r}, order={order})"
    extra = {}
    if auto:
        lam_da = lam.astype("float32")
        lam_da.attrs = {"units": "1", "long_name": f"Whittaker smoothing parameter chosen by {lmbda}"}
        extra[f"{name}_lambda"] = lam_da
    return assemble(field, smooth, out_flags, name=name, method=method, extra=extra)
