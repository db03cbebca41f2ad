"""Numpy kernel applying a sparse weight matrix over the trailing ``(y, x)`` axes, NaN-aware.

For weights ``W`` (target cells × source cells) and a field ``v`` the result at a
target cell ``t`` is the weighted mean over the *valid* (non-NaN) source cells::

    value[t]          = sum_s W[t, s] v[s] / sum_{s valid} W[t, s]
    valid_fraction[t] = sum_{s valid} W[t, s] / sum_s W[t, s]

and ``value[t]`` is NaN when ``valid_fraction[t] < min_valid_fraction`` or when no
source cell contributes. For bilinear weights this renormalises the interpolation over
the valid neighbours; for area weights it is the area-weighted mean over the valid part
of the covered area. Infinite values are treated as data, not as missing.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import sparse

from soilfuse._typing import FloatArray, IntArray

__all__ = ["apply_weights", "output_dtype"]

#: Tolerance on the valid-fraction threshold, so that e.g. exactly half-valid cells pass
#: ``min_valid_fraction=0.5`` despite rounding in the sums of areas.
FRACTION_TOL = 1e-9
#: Grids with at least this many source cells are regridded one leading index at a time.
_PER_STEP_MIN_SOURCE = 4096


def output_dtype(dtype: npt.DTypeLike) -> np.dtype:
    """Floating dtype of a regridded field: float32 stays float32, wider types become float64."""
    return np.result_type(dtype, np.float32)


def apply_weights(
    data: npt.ArrayLike,
    weights: sparse.csr_array,
    row_sums: FloatArray,
    target_shape: tuple[int, int],
    *,
    min_valid_fraction: float,
    return_valid_fraction: bool = False,
    source_index: IntArray | None = None,
) -> FloatArray | tuple[FloatArray, FloatArray]:
    """Regrid the trailing two axes of ``data`` with ``weights``.

    Parameters
    ----------
    data : array_like
        Shape ``(..., ny_source, nx_source)``; NaN marks missing values.
    weights : scipy.sparse.csr_array
        Shape ``(ny_target * nx_target, ny_source * nx_source)``, or
        ``(ny_target * nx_target, len(source_index))`` with ``source_index``.
    row_sums : numpy.ndarray
        ``weights @ ones``, shape ``(ny_target * nx_target,)``; precomputed once.
    target_shape : tuple of int
        ``(ny_target, nx_target)``.
    min_valid_fraction : float
        Smallest valid fraction (0-1) of a target's total weight for a value.
    return_valid_fraction : bool
        Also return the valid fraction (NaN where no source cell contributes).
    source_index : numpy.ndarray of int, optional
        Flat (C-order) indices of the source cells the columns of ``weights`` refer to;
        all cells in order when None.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        Regridded values of shape ``(..., ny_target, nx_target)`` in
        :func:`output_dtype`, and the valid fraction (same shape) if requested.
    """
    arr = np.asarray(data)
    lead = arr.shape[:-2]
    n_lead = math.prod(lead)
    flat = arr.reshape(n_lead, arr.shape[-2] * arr.shape[-1])
    if source_index is not None:
        flat = flat[:, source_index]
    if flat.shape[1] >= _PER_STEP_MIN_SOURCE:
        total, valid_weight = _per_step(flat, weights, row_sums)
    else:
        total, valid_weight = _all_steps(flat, weights, row_sums)
    # total and valid_weight have shape (leading index, target cell).
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = valid_weight / row_sums
        value = total / valid_weight
    keep = (valid_weight > 0) & (fraction >= min_valid_fraction - FRACTION_TOL)
    value = np.where(keep, value, np.nan)
    dtype = output_dtype(arr.dtype)
    out = value.reshape(*lead, *target_shape).astype(dtype, copy=False)
    if not return_valid_fraction:
        return out
    frac = np.where(row_sums > 0, fraction, np.nan)
    return out, frac.reshape(*lead, *target_shape).astype(dtype, copy=False)


def _per_step(
    flat: FloatArray, weights: sparse.csr_array, row_sums: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weighted sums, one sparse mat-vec per leading index (rows of ``flat`` are contiguous).

    On large grids this beats one multi-vector product, which would first need a
    transposed float64 copy of the whole block.
    """
    shape = (flat.shape[0], weights.shape[0])
    total = np.empty(shape)
    valid_weight = np.empty(shape)
    for i, values in enumerate(flat):
        missing = np.isnan(values)
        if missing.any():
            total[i] = weights @ np.where(missing, 0.0, values)
            valid_weight[i] = weights @ (~missing).astype("float64")
        else:
            total[i] = weights @ values.astype("float64", copy=False)
            valid_weight[i] = row_sums
    return total, valid_weight


def _all_steps(
    flat: FloatArray, weights: sparse.csr_array, row_sums: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weighted sums of all leading indices in one multi-vector product (small grids)."""
    columns = np.ascontiguousarray(flat.T, dtype="float64")  # may be the caller's memory
    missing = np.isnan(columns)
    if missing.any():
        columns = np.where(missing, 0.0, columns)
        valid_weight = weights @ (~missing).astype("float64")
    else:
        valid_weight = np.repeat(row_sums[:, None], flat.shape[0], axis=1)
    return (weights @ columns).T, valid_weight.T
