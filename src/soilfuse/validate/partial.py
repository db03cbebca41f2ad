"""Partial correlation of a target with each of several drivers, per pixel.

Li et al. (2022, §4.4) map how soil moisture responds to precipitation, air
temperature and radiation by the partial correlation of soil moisture with each driver
while holding the other drivers fixed. :func:`partial_correlation` computes it for
every pixel at once; :func:`partial_correlation_map` is the xarray front for
``(time, y, x)`` cubes (lazy over Dask chunks).

The partial correlation of the target ``y`` with driver ``x_j`` given the other drivers
equals the Pearson correlation of the residuals of ``y`` and of ``x_j`` after linear
regression (with intercept) on the other drivers. It is read off the inverse ``P`` of
the correlation (or covariance) matrix of ``[y, x_1, ..., x_k]``:
``r_j = -P[0, j] / sqrt(P[0, 0] * P[j, j])`` (e.g. Whittaker 1990). Its two-sided
p-value uses a t law with ``n - k - 1`` degrees of freedom (``n`` samples, ``k``
drivers). Only time steps where the target and every driver are finite count.

Usage
-----
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> rain, temp = rng.normal(size=(2, 500))
>>> sm = 0.8 * rain - 0.3 * temp + 0.2 * rng.normal(size=500)
>>> r, p, n = partial_correlation(sm, [rain, temp])
>>> np.round(r, 2).tolist(), int(n)
([0.97, -0.82], 500)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import xarray as xr
from scipy import stats

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError

__all__ = ["partial_correlation", "partial_correlation_map"]


def partial_correlation(
    target: npt.ArrayLike,
    drivers: npt.ArrayLike | Sequence[npt.ArrayLike],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Partial correlation of ``target`` with each driver, controlling for the others.

    Parameters
    ----------
    target : array_like, shape ``(..., n)``
        Target series (time last), e.g. soil moisture per pixel.
    drivers : array_like, shape ``(..., k, n)``, or a sequence of ``k`` arrays ``(..., n)``
        The ``k >= 1`` drivers (precipitation, temperature...), broadcastable to ``target``.

    Returns
    -------
    r : numpy.ndarray, shape ``(..., k)``
        Partial correlation of the target with each driver (dimensionless).
    p : numpy.ndarray, shape ``(..., k)``
        Two-sided p-values (t law, ``n - k - 1`` degrees of freedom).
    n : numpy.ndarray, shape ``(...)``
        Number of time steps used. Pixels with ``n < k + 3`` or a constant series get NaN.

    Raises
    ------
    DataError
        If the shapes do not line up.
    """
    y = np.asarray(target, dtype="float64")
    if isinstance(drivers, (list, tuple)):
        xs = np.stack(np.broadcast_arrays(*[np.asarray(d, dtype="float64") for d in drivers]), axis=-2)
    else:
        xs = np.asarray(drivers, dtype="float64")
    if xs.ndim < 2:
        msg = f"drivers must have shape (..., k, n); got {xs.shape}."
        raise DataError(msg)
    try:
        lead = np.broadcast_shapes(y.shape[:-1], xs.shape[:-2])
        n_t = np.broadcast_shapes(y.shape[-1:], xs.shape[-1:])
    except ValueError as err:
        msg = f"target {y.shape} and drivers {xs.shape} do not line up as (..., n) and (..., k, n)."
        raise DataError(msg) from err
    k = xs.shape[-2]
    data = np.concatenate(
        [np.broadcast_to(y[..., None, :], (*lead, 1, *n_t)), np.broadcast_to(xs, (*lead, k, *n_t))], axis=-2
    )
    valid = np.isfinite(data).all(axis=-2)  # (..., n)
    n = valid.sum(axis=-1).astype("float64")
    z = np.where(valid[..., None, :], data, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = z.sum(axis=-1) / n[..., None]
        zc = np.where(valid[..., None, :], z - mean[..., None], 0.0)
        cov = np.einsum("...it,...jt->...ij", zc, zc) / n[..., None, None]
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        corr = cov / (sd[..., :, None] * sd[..., None, :])
    bad = (n < k + 3) | ~np.isfinite(corr).all(axis=(-2, -1)) | (sd <= 0).any(axis=-1)
    corr = np.where(bad[..., None, None], np.eye(k + 1), corr)
    prec = _inverse(corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = -prec[..., 0, 1:] / np.sqrt(prec[..., 0, 0][..., None] * np.diagonal(prec, axis1=-2, axis2=-1)[..., 1:])
        r = np.clip(r, -1.0, 1.0)
        dof = (n - k - 1)[..., None]
        t = r * np.sqrt(dof / ((1.0 - r) * (1.0 + r)))
        p = 2.0 * stats.t.sf(np.abs(t), np.where(dof > 0, dof, 1.0))
    r = np.where(bad[..., None], np.nan, r)
    p = np.where(bad[..., None], np.nan, p)
    return r, p, n


def _inverse(m: FloatArray) -> FloatArray:
    """Batched inverse; a pseudo-inverse where drivers are exactly collinear."""
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(m, hermitian=True)


def partial_correlation_map(
    target: xr.DataArray,
    drivers: Mapping[str, xr.DataArray] | xr.Dataset,
    *,
    dim: str = "time",
) -> xr.Dataset:
    """Per-pixel partial correlation of ``target`` with each driver (xarray front).

    Parameters
    ----------
    target : xarray.DataArray
        E.g. daily or monthly soil moisture ``(time, y, x)``.
    drivers : mapping of name to xarray.DataArray, or xarray.Dataset
        Drivers on the same ``dim`` and grid (e.g. ``{"tp": ..., "t2m": ..., "ssrd": ...}``).
    dim : str
        The dimension to correlate over.

    Returns
    -------
    xarray.Dataset
        ``partial_r`` and ``p_value`` with a ``driver`` dimension (labelled by the
        driver names) on the target's other dims, and ``n`` (samples used). Lazy when the
        inputs are Dask-backed.

    Raises
    ------
    DataError
        If there are no drivers or ``dim`` is missing.
    """
    source = drivers.data_vars if isinstance(drivers, xr.Dataset) else drivers
    items: dict[str, xr.DataArray] = {str(name): da for name, da in source.items()}
    if not items:
        msg = "partial_correlation_map needs at least one driver."
        raise DataError(msg)
    if dim not in target.dims:
        msg = f"target has no {dim!r} dimension (dims: {target.dims})."
        raise DataError(msg)
    names = list(items)
    stacked = xr.concat(list(items.values()), dim="driver", coords="minimal", compat="override")
    stacked = stacked.assign_coords(driver=names)
    if target.chunks is not None or stacked.chunks is not None:
        target = target.chunk({dim: -1})
        stacked = stacked.chunk({dim: -1, "driver": -1})
    r, p, n = xr.apply_ufunc(
        partial_correlation,
        target,
        stacked,
        input_core_dims=[[dim], ["driver", dim]],
        output_core_dims=[["driver"], ["driver"], []],
        dask="parallelized",
        output_dtypes=["float64", "float64", "float64"],
    )
    out = xr.Dataset({"partial_r": r, "p_value": p, "n": n})
    out["partial_r"].attrs.update(
        units="1", long_name=f"partial correlation of {target.name or 'target'} with each driver"
    )
    out["p_value"].attrs.update(units="1", long_name="two-sided p-value of the partial correlation")
    return out
