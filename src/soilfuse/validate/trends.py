"""Sen's slope and the Mann–Kendall trend test, vectorised over many pixels.

:func:`mann_kendall` is a numpy kernel over the last axis (time) of an array with any
number of leading pixel axes; :func:`trend_test` is its xarray front for ``(time, y,
x)`` cubes, lazy over Dask chunks with ``apply_ufunc(dask="parallelized")``.

What is computed (per pixel, over the finite values only)
-------------------------------------------------------
* ``s``: the Mann–Kendall score, the sum of ``sign(x_j - x_i)`` over all pairs
  ``i < j`` of valid values (Mann 1945; Kendall 1975).
* ``var_s``: its variance under no trend, ``(n(n-1)(2n+5) - sum_t t(t-1)(2t+5)) / 18``
  with ``t`` the sizes of groups of tied values (tie correction, Gilbert 1987).
* With ``correction="hamed_rao"`` the variance is multiplied by the Hamed & Rao (1998)
  factor ``1 + 2 / (n(n-1)(n-2)) * sum_i (n-i)(n-i-1)(n-i-2) rho_i``, where ``rho_i``
  are the significant lag-``i`` autocorrelations of the ranks of the Sen-detrended
  series (all lags, significance at ``alpha``). The default ``correction="none"``
  applies no autocorrelation correction.
* ``z = (s - sign(s)) / sqrt(var_s)``, two-sided normal ``p``, ``tau = s / (n(n-1)/2)``.
* ``slope``: Sen's (1968) median of ``(x_j - x_i) / (t_j - t_i)`` over valid pairs, in
  data units per unit of ``t`` (per time step by default); ``intercept`` as
  ``median(x) - median(t) * slope`` (Conover 1980).

Results agree with ``pymannkendall.original_test`` (and ``hamed_rao_modification_test``
on gap-free series; on gappy series the detrending here uses the true time positions
where pymannkendall uses the positions in the gap-free sequence). Pixels with fewer than
three valid values get NaN.

Usage
-----
>>> import numpy as np
>>> x = np.array([[1.0, 2.0, 2.0, 4.0, 5.0], [5.0, 4.0, np.nan, 2.0, 1.0]])
>>> res = mann_kendall(x)
>>> res.slope.tolist(), res.s.tolist()
([1.0, -1.0], [9.0, -6.0])
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import xarray as xr
from scipy import stats

from soilfuse._typing import FloatArray
from soilfuse.exceptions import ConfigError, DataError

__all__ = ["TrendResult", "mann_kendall", "trend_test"]

Correction = Literal["none", "hamed_rao"]

#: Pixels processed together; bounds the pairwise-slope buffer to ~8k x n(n-1)/2 floats.
_BLOCK = 8192


class TrendResult(NamedTuple):
    """Per-pixel trend statistics (arrays over the leading axes of the input)."""

    slope: FloatArray
    intercept: FloatArray
    s: FloatArray
    var_s: FloatArray
    z: FloatArray
    p: FloatArray
    tau: FloatArray
    n: FloatArray
    trend: npt.NDArray[np.int8]


def _sorted_median(a: FloatArray) -> FloatArray:
    """Median along the last axis ignoring NaN (NaN where the row is empty).

    Sorting once (NaN sort last) and picking the middle of the finite part is much
    faster than ``np.nanmedian`` along an axis, which falls back to per-row work.
    """
    s = np.sort(a, axis=-1)
    m = np.isfinite(s).sum(axis=-1)
    lo = np.clip((m - 1) // 2, 0, None)
    hi = np.clip(m // 2, 0, None)
    med = 0.5 * (np.take_along_axis(s, lo[..., None], -1)[..., 0] + np.take_along_axis(s, hi[..., None], -1)[..., 0])
    return np.where(m > 0, med, np.nan)


def _hamed_rao_factor(
    x: FloatArray, valid: npt.NDArray[np.bool_], t: FloatArray, slope: FloatArray, n: FloatArray, alpha: float
) -> FloatArray:
    """Variance inflation factor of Hamed & Rao (1998) for a block of pixels ``(P, T)``."""
    detrended = np.where(valid, x - slope[:, None] * t[None, :], np.nan)
    # Move valid values to the front (order kept) so lags count steps of the gap-free series.
    order = np.argsort(~valid, axis=1, kind="stable")
    d = np.take_along_axis(detrended, order, axis=1)
    ranks = np.asarray(stats.rankdata(d, axis=1, nan_policy="omit"), dtype="float64")
    ok = np.isfinite(ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, ranks, 0.0).sum(axis=1) / n
        yv = np.where(ok, ranks - mean[:, None], 0.0)
        acov0 = (yv * yv).sum(axis=1) / n
        bound = stats.norm.ppf(1 - alpha / 2) / np.sqrt(n)
        total = np.zeros(x.shape[0])
        for lag in range(1, x.shape[1]):
            acf = (yv[:, :-lag] * yv[:, lag:]).sum(axis=1) / n / acov0
            weight = (n - lag) * (n - lag - 1) * (n - lag - 2)
            significant = (np.abs(acf) > bound) & (lag < n)
            total += np.where(significant, weight * acf, 0.0)
        return 1.0 + 2.0 / (n * (n - 1) * (n - 2)) * total


def _block(x: FloatArray, t: FloatArray, alpha: float, correction: Correction) -> tuple[FloatArray, ...]:
    n_pix, n_t = x.shape
    valid = np.isfinite(x)
    n = valid.sum(axis=1).astype("float64")
    s = np.zeros(n_pix)
    same = np.ones((n_pix, n_t))  # size of each value's tie group, itself included
    slopes = np.empty((n_pix, n_t * (n_t - 1) // 2))
    pos = 0
    for lag in range(1, n_t):
        d = x[:, lag:] - x[:, :-lag]  # NaN when either value is missing
        s += (d > 0).sum(axis=1) - (d < 0).sum(axis=1)
        tie = (d == 0).astype("float64")
        same[:, lag:] += tie
        same[:, :-lag] += tie
        slopes[:, pos : pos + n_t - lag] = d / (t[lag:] - t[:-lag])
        pos += n_t - lag
    ties = np.where(valid, (same - 1.0) * (2.0 * same + 5.0), 0.0).sum(axis=1)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    slope = _sorted_median(slopes)
    t_valid = np.where(valid, t[None, :], np.nan)
    intercept = _sorted_median(x) - _sorted_median(t_valid) * slope
    if correction == "hamed_rao":
        var_s = var_s * _hamed_rao_factor(x, valid, t, slope, n, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s == 0, 0.0, (s - np.sign(s)) / np.sqrt(var_s))
        tau = s / (0.5 * n * (n - 1))
    p = 2.0 * stats.norm.sf(np.abs(z))
    crit = stats.norm.ppf(1 - alpha / 2)
    trend = np.where(np.abs(z) > crit, np.sign(z), 0.0)
    few = n < 3
    out = [slope, intercept, s, var_s, z, p, tau]
    out = [np.where(few, np.nan, v) for v in out]
    return (*out, n, np.where(few, 0.0, trend))


def mann_kendall(
    x: npt.ArrayLike,
    *,
    axis: int = -1,
    t: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    correction: Correction = "none",
) -> TrendResult:
    """Mann–Kendall test and Sen's slope of every series along ``axis``.

    Parameters
    ----------
    x : array_like
        Values; NaN marks missing. Any number of pixel axes.
    axis : int
        The time axis.
    t : array_like, optional
        Time position of each step (e.g. decimal years); the slope is in data units
        per unit of ``t``. Default ``0, 1, 2, ...`` (slope per time step).
    alpha : float
        Significance level of ``trend`` (and of the lags kept by Hamed–Rao).
    correction : {"none", "hamed_rao"}
        Autocorrelation correction of ``var_s``.

    Returns
    -------
    TrendResult
        ``slope``, ``intercept``, ``s``, ``var_s``, ``z``, ``p`` (two-sided), ``tau``,
        ``n`` (valid values) and ``trend`` (int8: +1 significant increase, -1 decrease,
        0 none), each shaped like ``x`` without ``axis``.

    Raises
    ------
    ConfigError
        For an unknown ``correction`` or ``alpha`` outside (0, 1).
    DataError
        If ``t`` does not match the time axis or is not strictly increasing, or the
        series has fewer than 3 steps.
    """
    if correction not in ("none", "hamed_rao"):
        msg = f"correction must be 'none' or 'hamed_rao'; got {correction!r}."
        raise ConfigError(msg)
    if not 0.0 < alpha < 1.0:
        msg = f"alpha must lie in (0, 1); got {alpha}."
        raise ConfigError(msg)
    a = np.moveaxis(np.asarray(x, dtype="float64"), axis, -1)
    lead, n_t = a.shape[:-1], a.shape[-1]
    tt = np.arange(n_t, dtype="float64") if t is None else np.asarray(t, dtype="float64")
    if tt.shape != (n_t,) or (n_t > 1 and not (np.diff(tt) > 0).all()):
        msg = f"t must be {n_t} strictly increasing time positions; got shape {tt.shape}."
        raise DataError(msg)
    if n_t < 3:
        msg = f"The time axis has {n_t} steps; the Mann-Kendall test needs at least 3."
        raise DataError(msg)
    flat = a.reshape(-1, n_t)
    results = [np.empty(flat.shape[0]) for _ in TrendResult._fields]
    for start in range(0, flat.shape[0], _BLOCK):
        part = _block(flat[start : start + _BLOCK], tt, alpha, correction)
        for buf, values in zip(results, part, strict=True):
            buf[start : start + _BLOCK] = values
    slope, intercept, s, var_s, z, p, tau, n, trend = (r.reshape(lead) for r in results)
    return TrendResult(slope, intercept, s, var_s, z, p, tau, n, trend.astype("int8"))


def _kernel(x: FloatArray, t: FloatArray | None, alpha: float, correction: Correction) -> tuple[npt.NDArray[Any], ...]:
    res = mann_kendall(x, t=t, alpha=alpha, correction=correction)
    return tuple(getattr(res, name) for name in TrendResult._fields)


def trend_test(
    da: xr.DataArray,
    *,
    dim: str = "time",
    alpha: float = 0.05,
    correction: Correction = "none",
    per: Literal["step", "year"] = "step",
) -> xr.Dataset:
    """Mann–Kendall test and Sen's slope of every pixel of a ``(time, y, x)`` array.

    Parameters
    ----------
    da : xarray.DataArray
        Values with a ``dim`` dimension (numpy or Dask; chunks along ``dim`` are merged
        into one, other chunks are kept and processed in parallel).
    dim : str
        Time dimension.
    alpha, correction
        See :func:`mann_kendall`.
    per : {"step", "year"}
        Unit of the slope: per time step, or per year (365.25 days; needs a datetime
        ``dim`` coordinate).

    Returns
    -------
    xarray.Dataset
        ``slope`` (units "<da units> per step|year"), ``intercept``, ``s``, ``var_s``,
        ``z``, ``p``, ``tau``, ``n`` and ``trend`` (int8), on ``da``'s other dims; lazy
        when ``da`` is.

    Raises
    ------
    DataError
        If ``dim`` is missing, or ``per="year"`` without datetimes.
    """
    if dim not in da.dims:
        msg = f"DataArray has no {dim!r} dimension (dims: {da.dims}); pass dim=..."
        raise DataError(msg)
    t: FloatArray | None = None
    if per == "year":
        coord = da[dim].values
        if not np.issubdtype(coord.dtype, np.datetime64):
            msg = f"per='year' needs datetime values on {dim!r}; got dtype {coord.dtype}. Use per='step'."
            raise DataError(msg)
        t = (coord - coord[0]) / np.timedelta64(1, "D") / 365.25
    elif per != "step":
        msg = f"per must be 'step' or 'year'; got {per!r}."
        raise ConfigError(msg)
    if da.chunks is not None:
        da = da.chunk({dim: -1})
    fields = TrendResult._fields
    outputs = xr.apply_ufunc(
        _kernel,
        da,
        input_core_dims=[[dim]],
        output_core_dims=[[] for _ in fields],
        kwargs={"t": t, "alpha": alpha, "correction": correction},
        dask="parallelized",
        output_dtypes=["float64"] * (len(fields) - 1) + ["int8"],
    )
    ds = xr.Dataset(dict(zip(fields, outputs, strict=True)))
    units = da.attrs.get("units", "1")
    ds["slope"].attrs.update(units=f"{units} per {per}", long_name="Sen's slope")
    ds["intercept"].attrs.update(units=units, long_name="intercept of the Kendall-Theil line")
    ds["p"].attrs["long_name"] = "two-sided p-value of the Mann-Kendall test"
    ds["trend"].attrs.update(long_name="significant trend sign", flag_values=[-1, 0, 1])
    ds.attrs.update(alpha=alpha, autocorrelation_correction=correction)
    return ds
