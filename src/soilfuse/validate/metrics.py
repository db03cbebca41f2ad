"""Pairwise validation metrics: plain, vectorised, NaN-aware numpy kernels.

Every metric takes ``obs`` (the reference: in-situ, truth) and ``pred`` (the product or
model estimate) of the same shape and reduces one ``axis`` (the last one by default;
``None`` flattens). Only *pairs* where both values are finite count, so a station's
gaps do not need to be removed first, and a 2-D ``(station, time)`` array gives one
value per station in a single call.

Sign and naming conventions
---------------------------
* ``bias = mean(pred - obs)``: positive means the product is too wet / too warm
  (pytesmo's ``bias(x, y)`` is ``mean(x - y)``, so it equals ``bias(pred, obs)``).
* RMSE and RMSD are the same number; so are ubRMSE, ubRMSD and QA4SM's ``urmsd``.
* Variances and covariances are population moments (divide by ``n``), as in pytesmo.
* ``r_squared`` is the square of Pearson's R; the coefficient of determination
  ``1 - SSE/SST`` (scikit-learn's ``r2_score``) is :func:`nse`.

Pooled versus per-station scores differ (Li et al., 2022, discuss both): pooling all
stations and days rewards reproducing between-station differences, while the median
of per-station scores measures the temporal agreement at a typical site.
:func:`metrics_table` gives either, and :func:`pooled_and_median` both side by side.

Usage
-----
>>> import numpy as np
>>> obs = np.array([0.10, 0.20, 0.30, 0.40])
>>> pred = np.array([0.12, 0.18, 0.33, 0.45])
>>> round(float(bias(obs, pred)), 4)
0.02
>>> round(float(rmse(obs, pred)), 4)
0.0324
>>> table = metrics_table(obs, pred, min_obs=3)
>>> table.loc["all", ["n_obs", "BIAS"]].round(4).tolist()
[4.0, 0.02]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError

__all__ = [
    "METRICS",
    "bias",
    "bias_ci",
    "g_down",
    "g_down_components",
    "g_down_table",
    "kge",
    "mad",
    "mae",
    "metrics_table",
    "mse_decomposition",
    "n_pairs",
    "nse",
    "pearson_r",
    "pearson_r_ci",
    "pearson_r_pvalue",
    "pooled_and_median",
    "r_squared",
    "rmse",
    "rmse_ci",
    "spearman_rho",
    "spearman_rho_ci",
    "ubrmse",
    "ubrmse_ci",
]

Axis = int | None


class _Moments(NamedTuple):
    """First and second population moments over valid pairs (the reduced axis is last)."""

    n: FloatArray
    mo: FloatArray
    mp: FloatArray
    vo: FloatArray
    vp: FloatArray
    cov: FloatArray


# ---------------------------------------------------------------------- helpers
def _paired(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Float copies with the reduced axis last and NaN wherever either member is missing."""
    o = np.asarray(obs, dtype="float64")
    p = np.asarray(pred, dtype="float64")
    try:
        o, p = np.broadcast_arrays(o, p)
    except ValueError as err:
        msg = f"obs and pred must have broadcastable shapes; got {o.shape} and {p.shape}."
        raise DataError(msg) from err
    if axis is None:
        o, p = o.reshape(-1), p.reshape(-1)
    else:
        o, p = np.moveaxis(o, axis, -1), np.moveaxis(p, axis, -1)
    valid = np.isfinite(o) & np.isfinite(p)
    return np.where(valid, o, np.nan), np.where(valid, p, np.nan), valid


def _mean(a: FloatArray, valid: npt.NDArray[np.bool_], n: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, a, 0.0).sum(axis=-1) / n


def _moments_of(o: FloatArray, p: FloatArray, valid: npt.NDArray[np.bool_]) -> _Moments:
    n = valid.sum(axis=-1).astype("float64")
    mo, mp = _mean(o, valid, n), _mean(p, valid, n)
    do = o - mo[..., None]
    dp = p - mp[..., None]
    return _Moments(n, mo, mp, _mean(do * do, valid, n), _mean(dp * dp, valid, n), _mean(do * dp, valid, n))


def _moments(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis) -> _Moments:
    return _moments_of(*_paired(obs, pred, axis))


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(num / den, dtype="float64")


def _r_from(m: _Moments) -> FloatArray:
    return np.clip(_ratio(m.cov, np.sqrt(m.vo * m.vp)), -1.0, 1.0)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        msg = f"alpha (1 - confidence level) must lie in (0, 1); got {alpha}. Use e.g. 0.05 for 95 % intervals."
        raise DataError(msg)


def _rank(a: FloatArray) -> FloatArray:
    """Average ranks along the last axis, NaN kept as NaN (ties share their mean rank)."""
    return np.asarray(stats.rankdata(a, axis=-1, nan_policy="omit"), dtype="float64")


# ---------------------------------------------------------------------- metrics
def n_pairs(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Number of pairs where both ``obs`` and ``pred`` are finite."""
    return _paired(obs, pred, axis)[2].sum(axis=-1).astype("float64")


def bias(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Mean difference ``mean(pred - obs)``, in the unit of the data (e.g. m3 m-3, K)."""
    m = _moments(obs, pred, axis)
    return m.mp - m.mo


def rmse(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Root-mean-square error (RMSD), ``sqrt(mean((pred - obs)**2))``, in data units."""
    o, p, valid = _paired(obs, pred, axis)
    n = valid.sum(axis=-1).astype("float64")
    return np.sqrt(_mean((p - o) ** 2, valid, n))


def ubrmse(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Unbiased RMSE (ubRMSD, QA4SM ``urmsd``): RMSE after removing each series' mean.

    Equals ``sqrt(RMSE**2 - bias**2)`` (Entekhabi et al., 2010), in data units.
    """
    o, p, valid = _paired(obs, pred, axis)
    n = valid.sum(axis=-1).astype("float64")
    d = (p - _mean(p, valid, n)[..., None]) - (o - _mean(o, valid, n)[..., None])
    return np.sqrt(_mean(d * d, valid, n))


def mae(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Mean absolute error ``mean(|pred - obs|)`` (pytesmo ``aad``), in data units."""
    o, p, valid = _paired(obs, pred, axis)
    n = valid.sum(axis=-1).astype("float64")
    return _mean(np.abs(p - o), valid, n)


def mad(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Median absolute difference ``median(|pred - obs|)`` (pytesmo ``mad``), in data units."""
    o, p, _ = _paired(obs, pred, axis)
    d = np.abs(p - o)
    out = np.full(d.shape[:-1], np.nan)
    has = np.isfinite(d).any(axis=-1)
    if has.any():
        out[has] = np.nanmedian(d[has], axis=-1)
    return out


def pearson_r(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Pearson's linear correlation coefficient R (dimensionless, in [-1, 1])."""
    return _r_from(_moments(obs, pred, axis))


def _r_pvalue(r: FloatArray, n: FloatArray) -> FloatArray:
    """Two-sided p-value of R under no correlation (the exact beta law scipy uses)."""
    a = n / 2.0 - 1.0
    out = np.full(np.shape(r), np.nan)
    ok = np.isfinite(r) & (n > 2)
    out[ok] = 2.0 * stats.beta.cdf(-np.abs(r[ok]), a[ok], a[ok], loc=-1, scale=2)
    return out


def pearson_r_pvalue(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Two-sided p-value of Pearson's R against zero correlation (as ``scipy.stats.pearsonr``)."""
    m = _moments(obs, pred, axis)
    return _r_pvalue(_r_from(m), m.n)


def spearman_rho(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Spearman's rank correlation (Pearson's R of average ranks of the valid pairs)."""
    o, p, valid = _paired(obs, pred, axis)
    return _r_from(_moments_of(_rank(o), _rank(p), valid))


def r_squared(
    obs: npt.ArrayLike,
    pred: npt.ArrayLike,
    axis: Axis = -1,
    *,
    kind: Literal["pearson", "determination"] = "pearson",
) -> FloatArray:
    """Explained variance: ``R**2`` (``kind="pearson"``) or ``1 - SSE/SST`` (``"determination"``).

    The papers behind soilfuse use both under the name R² (Li et al., 2022, report the
    square of R; Liu et al., 2024, the coefficient of determination). The second is
    identical to :func:`nse` and to scikit-learn's ``r2_score``.
    """
    if kind == "pearson":
        return pearson_r(obs, pred, axis) ** 2
    if kind == "determination":
        return nse(obs, pred, axis)
    msg = f"kind must be 'pearson' or 'determination'; got {kind!r}."
    raise DataError(msg)


def nse(obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Nash–Sutcliffe efficiency ``1 - sum((pred - obs)**2) / sum((obs - mean(obs))**2)``.

    1 is perfect, 0 is no better than the observed mean, unbounded below.
    """
    o, p, valid = _paired(obs, pred, axis)
    n = valid.sum(axis=-1).astype("float64")
    sse = _mean((p - o) ** 2, valid, n)
    sst = _mean((o - _mean(o, valid, n)[..., None]) ** 2, valid, n)
    return 1.0 - _ratio(sse, sst)


def kge(
    obs: npt.ArrayLike,
    pred: npt.ArrayLike,
    axis: Axis = -1,
    *,
    version: Literal[2009, 2012] = 2009,
) -> FloatArray:
    """Kling–Gupta efficiency (1 is perfect).

    ``KGE = 1 - sqrt((r - 1)**2 + (v - 1)**2 + (beta - 1)**2)`` with ``beta`` the ratio of
    means ``mean(pred) / mean(obs)`` and ``v`` the ratio of standard deviations
    ``std(pred) / std(obs)`` (Gupta et al., 2009) or, for ``version=2012``, the ratio of
    coefficients of variation ``(std/mean)(pred) / (std/mean)(obs)`` (Kling et al., 2012),
    which keeps bias and variability errors apart.
    """
    m = _moments(obs, pred, axis)
    r = _r_from(m)
    beta = _ratio(m.mp, m.mo)
    if version == 2009:
        v = np.sqrt(_ratio(m.vp, m.vo))
    elif version == 2012:
        v = _ratio(_ratio(np.sqrt(m.vp), m.mp), _ratio(np.sqrt(m.vo), m.mo))
    else:
        msg = f"version must be 2009 (Gupta et al.) or 2012 (Kling et al.); got {version!r}."
        raise DataError(msg)
    return 1.0 - np.sqrt((r - 1.0) ** 2 + (v - 1.0) ** 2 + (beta - 1.0) ** 2)


def mse_decomposition(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Mean square error and its parts ``(mse, mse_corr, mse_bias, mse_var)`` (squared data units).

    ``mse = 2*s_o*s_p*(1 - r) + (m_p - m_o)**2 + (s_p - s_o)**2`` (Gupta et al., 2009), with
    population standard deviations ``s`` and means ``m``; names follow QA4SM.
    """
    m = _moments(obs, pred, axis)
    so, sp = np.sqrt(m.vo), np.sqrt(m.vp)
    corr = 2.0 * so * sp * (1.0 - _r_from(m))
    bias2 = (m.mp - m.mo) ** 2
    var = (sp - so) ** 2
    return corr + bias2 + var, corr, bias2, var


# ---------------------------------------------------------------------- G_down
def g_down_components(
    obs: npt.ArrayLike,
    fine: npt.ArrayLike,
    coarse: npt.ArrayLike,
    axis: Axis = -1,
) -> dict[str, FloatArray]:
    """The downscaling gain G_down of Merlin et al. (2015) and its three parts.

    Compares a downscaled (``fine``) and the original coarse (``coarse``) product
    against the same in-situ series ``obs``, using only times when all three are finite.
    For each product the correlation ``R``, the mean bias ``B = mean(product - obs)``
    and the slope ``S = cov(product, obs) / var(obs)`` of the product regressed on the
    in-situ data are computed; each gain compares the distance to its ideal value::

        G_R = (|1 - R_c| - |1 - R_f|) / (|1 - R_c| + |1 - R_f|)
        G_B = (|B_c| - |B_f|) / (|B_c| + |B_f|)
        G_S = (|1 - S_c| - |1 - S_f|) / (|1 - S_c| + |1 - S_f|)
        G_down = (G_R + G_B + G_S) / 3

    All lie in [-1, 1]; positive means the downscaled product is closer to the
    stations than the coarse one. A part whose two distances are both zero is 0.

    Returns
    -------
    dict
        ``G_down``, ``G_R``, ``G_B``, ``G_S`` and the inputs ``R_fine``, ``R_coarse``,
        ``B_fine``, ``B_coarse``, ``S_fine``, ``S_coarse``; arrays over the kept axes.
    """
    o = np.asarray(obs, dtype="float64")
    f = np.asarray(fine, dtype="float64")
    c = np.asarray(coarse, dtype="float64")
    o, f, c = np.broadcast_arrays(o, f, c)
    both = np.isfinite(f) & np.isfinite(c)
    o = np.where(both, o, np.nan)
    parts: dict[str, FloatArray] = {}
    for name, prod in (("fine", f), ("coarse", c)):
        m = _moments(o, prod, axis)
        parts[f"R_{name}"] = _r_from(m)
        parts[f"B_{name}"] = m.mp - m.mo
        parts[f"S_{name}"] = _ratio(m.cov, m.vo)

    def gain(dist_coarse: FloatArray, dist_fine: FloatArray) -> FloatArray:
        num = dist_coarse - dist_fine
        den = dist_coarse + dist_fine
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(np.isnan(den), np.nan, 0.0))

    g_r = gain(np.abs(1 - parts["R_coarse"]), np.abs(1 - parts["R_fine"]))
    g_b = gain(np.abs(parts["B_coarse"]), np.abs(parts["B_fine"]))
    g_s = gain(np.abs(1 - parts["S_coarse"]), np.abs(1 - parts["S_fine"]))
    return {"G_down": (g_r + g_b + g_s) / 3.0, "G_R": g_r, "G_B": g_b, "G_S": g_s, **parts}


def g_down(obs: npt.ArrayLike, fine: npt.ArrayLike, coarse: npt.ArrayLike, axis: Axis = -1) -> FloatArray:
    """Downscaling gain G_down in [-1, 1] (see :func:`g_down_components`); > 0 means a gain."""
    return g_down_components(obs, fine, coarse, axis)["G_down"]


def g_down_table(
    obs: npt.ArrayLike,
    fine: npt.ArrayLike,
    coarse: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    min_obs: int = 10,
) -> pd.DataFrame:
    """G_down and its parts per group (station) from 1-D paired columns.

    Parameters
    ----------
    obs, fine, coarse : array_like, 1-D
        In-situ value, downscaled and coarse product value of each station-day.
    groups : array_like, 1-D
        Station (or other group) of each row.
    min_obs : int
        Groups with fewer complete triplets get NaN.

    Returns
    -------
    pandas.DataFrame
        Index ``group``; columns of :func:`g_down_components` plus ``n_obs``.
    """
    o, f, c = (np.asarray(a, dtype="float64") for a in (obs, fine, coarse))
    g = np.asarray(groups)
    if not (o.ndim == 1 and o.shape == f.shape == c.shape == g.shape):
        msg = f"obs, fine, coarse and groups must be 1-D of one length; got {o.shape}, {f.shape}, {c.shape}, {g.shape}."
        raise DataError(msg)
    codes, labels = pd.factorize(pd.Series(g), sort=True)
    keep = codes >= 0
    arrays = [_by_group(a[keep], codes[keep], len(labels)) for a in (o, f, c)]
    parts = g_down_components(arrays[0], arrays[1], arrays[2])
    n = (np.isfinite(arrays[0]) & np.isfinite(arrays[1]) & np.isfinite(arrays[2])).sum(axis=-1).astype("float64")
    table = pd.DataFrame(parts, index=pd.Index(labels, name="group"))
    table[n < min_obs] = np.nan
    table["n_obs"] = n
    return table


# ---------------------------------------------------------------------- confidence intervals
def _r_ci(r: FloatArray, n: FloatArray, alpha: float, scale: FloatArray | float = 1.0) -> tuple[FloatArray, FloatArray]:
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.arctanh(r)
        half = z * scale / np.sqrt(n - 3)
        half = np.where(n > 3, half, np.nan)
        return np.tanh(v - half), np.tanh(v + half)


def pearson_r_ci(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Fisher-z confidence interval ``tanh(atanh(R) ± z_{1-alpha/2} / sqrt(n - 3))`` of R."""
    _check_alpha(alpha)
    m = _moments(obs, pred, axis)
    return _r_ci(_r_from(m), m.n, alpha)


def spearman_rho_ci(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Confidence interval of Spearman's rho with the Bonett & Wright (2000) variance ``1 + rho²/2``."""
    _check_alpha(alpha)
    rho = spearman_rho(obs, pred, axis)
    n = n_pairs(obs, pred, axis)
    return _r_ci(rho, n, alpha, np.sqrt(1 + rho**2 / 2))


def bias_ci(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Student-t interval of the bias, ``bias ± t_{1-alpha/2, n-1} * sd(pred - obs) / sqrt(n)``.

    ``sd`` uses ``n - 1`` degrees of freedom (the interval of a mean, Gilleland 2010).
    """
    _check_alpha(alpha)
    m = _moments(obs, pred, axis)
    b = m.mp - m.mo
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(m.n / (m.n - 1) * (m.vo + m.vp - 2 * m.cov))
        half = np.where(m.n > 1, sd / np.sqrt(m.n) * stats.t.ppf(1 - alpha / 2, np.maximum(m.n - 1, 1)), np.nan)
    return b - half, b + half


def _chi2_ci(ms: FloatArray, n: FloatArray, dof: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray]:
    ok = dof > 0
    d = np.where(ok, dof, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.sqrt(n * ms / stats.chi2.ppf(1 - alpha / 2, d))
        hi = np.sqrt(n * ms / stats.chi2.ppf(alpha / 2, d))
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def ubrmse_ci(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Chi-square interval of ubRMSE: ``n * ubMSE / ubMSD_true ~ chi2(n - 1)`` (as pytesmo ``ubrmsd_ci``)."""
    _check_alpha(alpha)
    n = n_pairs(obs, pred, axis)
    return _chi2_ci(ubrmse(obs, pred, axis) ** 2, n, n - 1, alpha)


def rmse_ci(
    obs: npt.ArrayLike, pred: npt.ArrayLike, axis: Axis = -1, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Chi-square interval of RMSE, assuming ``pred - obs ~ N(0, RMSE²)``: ``n * MSE / RMSE² ~ chi2(n)``.

    The assumption ignores a non-zero bias (which makes the law non-central), so the
    interval is approximate when ``|bias|`` is not small compared with ubRMSE.
    """
    _check_alpha(alpha)
    n = n_pairs(obs, pred, axis)
    return _chi2_ci(rmse(obs, pred, axis) ** 2, n, n, alpha)


# ---------------------------------------------------------------------- registry
#: Scalar metrics by the name used in tables: ``f(obs, pred, axis) -> array``.
METRICS: Mapping[str, Callable[..., FloatArray]] = {
    "n_obs": n_pairs,
    "R": pearson_r,
    "p_R": pearson_r_pvalue,
    "rho": spearman_rho,
    "R2": r_squared,
    "BIAS": bias,
    "RMSD": rmse,
    "urmsd": ubrmse,
    "MAE": mae,
    "MAD": mad,
    "NSE": nse,
    "KGE": kge,
}


# ---------------------------------------------------------------------- tables
def _by_group(values: FloatArray, codes: npt.NDArray[np.intp], n_groups: int) -> FloatArray:
    """Rows of a NaN-padded ``(group, max_group_size)`` array, one per group."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(codes.size) - starts[sorted_codes]
    out = np.full((n_groups, int(counts.max()) if counts.size else 0), np.nan)
    out[sorted_codes, pos] = values[order]
    return out


def _table_from_2d(
    o: FloatArray, p: FloatArray, *, alpha: float, ci: bool, min_obs: int, kge_version: Literal[2009, 2012]
) -> dict[str, FloatArray]:
    o, p, valid = _paired(o, p, -1)
    m = _moments_of(o, p, valid)
    r = _r_from(m)
    rho = _r_from(_moments_of(_rank(o), _rank(p), valid))
    mse, mse_corr, mse_bias, mse_var = mse_decomposition(o, p)
    ub = ubrmse(o, p)
    cols: dict[str, FloatArray] = {
        "n_obs": m.n,
        "R": r,
        "p_R": _r_pvalue(r, m.n),
        "rho": rho,
        "p_rho": _rho_pvalue(rho, m.n),
        "R2": r**2,
        "BIAS": m.mp - m.mo,
        "RMSD": np.sqrt(mse),
        "urmsd": ub,
        "mse": mse,
        "mse_corr": mse_corr,
        "mse_bias": mse_bias,
        "mse_var": mse_var,
        "RSS": mse * m.n,
        "MAE": mae(o, p),
        "MAD": mad(o, p),
        "NSE": nse(o, p),
        "KGE": kge(o, p, version=kge_version),
        "mean_obs": m.mo,
        "mean_pred": m.mp,
        "std_obs": np.sqrt(m.vo),
        "std_pred": np.sqrt(m.vp),
    }
    if ci:
        pairs = {
            "R": pearson_r_ci(o, p, alpha=alpha),
            "rho": _r_ci(rho, m.n, alpha, np.sqrt(1 + rho**2 / 2)),
            "BIAS": bias_ci(o, p, alpha=alpha),
            "RMSD": rmse_ci(o, p, alpha=alpha),
            "urmsd": ubrmse_ci(o, p, alpha=alpha),
        }
        for name, (lo, hi) in pairs.items():
            cols[f"{name}_ci_lower"] = lo
            cols[f"{name}_ci_upper"] = hi
    too_few = m.n < min_obs
    for name, values in cols.items():
        if name != "n_obs":
            cols[name] = np.where(too_few, np.nan, values)
    return cols


def _rho_pvalue(rho: FloatArray, n: FloatArray) -> FloatArray:
    """Two-sided p-value of Spearman's rho with the t approximation of ``scipy.stats.spearmanr``."""
    dof = n - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        t = rho * np.sqrt(dof / ((1.0 + rho) * (1.0 - rho)))
        p = 2.0 * stats.t.sf(np.abs(t), np.where(dof > 0, dof, 1.0))
    return np.where(dof > 0, p, np.nan)


def metrics_table(
    obs: npt.ArrayLike,
    pred: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
    *,
    alpha: float = 0.05,
    ci: bool = True,
    min_obs: int = 10,
    kge_version: Literal[2009, 2012] = 2009,
) -> pd.DataFrame:
    """All metrics of ``pred`` against ``obs``, pooled or one row per group.

    Parameters
    ----------
    obs, pred : array_like, 1-D
        Paired reference and estimate, e.g. the ``obs``/``pred`` columns of a long table
        (one row per station-day), in the same unit.
    groups : array_like, optional
        A label per pair (station id, depth, season…). ``None`` pools every pair into
        one row labelled ``"all"``.
    alpha : float
        1 - confidence level of the analytical intervals (0.05 gives 95 %).
    ci : bool
        Add ``<metric>_ci_lower`` / ``<metric>_ci_upper`` for ``R``, ``rho``, ``BIAS``,
        ``RMSD`` and ``urmsd`` (Fisher z, Bonett–Wright, Student t, chi-square n and
        chi-square n - 1 respectively; see the ``*_ci`` functions).
    min_obs : int
        Groups with fewer valid pairs get NaN metrics (``n_obs`` is still reported).
    kge_version : {2009, 2012}
        Variant of :func:`kge`.

    Returns
    -------
    pandas.DataFrame
        Index: group labels (name ``group``). QA4SM/pytesmo columns ``n_obs``, ``R``,
        ``p_R``, ``rho``, ``p_rho``, ``BIAS`` (pred - obs), ``RMSD``, ``urmsd``, ``mse``,
        ``mse_corr``, ``mse_bias``, ``mse_var``, ``RSS`` and the CI columns, plus
        soilfuse's ``R2`` (R squared), ``MAE``, ``MAD`` (median absolute difference),
        ``NSE``, ``KGE``, ``mean_obs``, ``mean_pred``, ``std_obs``, ``std_pred``
        (population standard deviations).

    Raises
    ------
    DataError
        If ``obs``, ``pred`` and ``groups`` are not 1-D arrays of one length.
    """
    _check_alpha(alpha)
    o = np.asarray(obs, dtype="float64")
    p = np.asarray(pred, dtype="float64")
    if o.ndim != 1 or o.shape != p.shape:
        msg = f"obs and pred must be 1-D and of equal length; got shapes {o.shape} and {p.shape}."
        raise DataError(msg)
    if groups is None:
        cols = _table_from_2d(o[None, :], p[None, :], alpha=alpha, ci=ci, min_obs=min_obs, kge_version=kge_version)
        return pd.DataFrame(cols, index=pd.Index(["all"], name="group"))
    g = np.asarray(groups)
    if g.shape != o.shape:
        msg = f"groups must have one label per pair; got {g.shape[0] if g.ndim else 0} labels for {o.size} pairs."
        raise DataError(msg)
    codes, labels = pd.factorize(pd.Series(g), sort=True)
    keep = codes >= 0
    codes = codes[keep]
    n_groups = len(labels)
    o2 = _by_group(o[keep], codes, n_groups)
    p2 = _by_group(p[keep], codes, n_groups)
    cols = _table_from_2d(o2, p2, alpha=alpha, ci=ci, min_obs=min_obs, kge_version=kge_version)
    return pd.DataFrame(cols, index=pd.Index(labels, name="group"))


def pooled_and_median(
    obs: npt.ArrayLike,
    pred: npt.ArrayLike,
    stations: npt.ArrayLike,
    **kwargs: Any,
) -> pd.DataFrame:
    """Pooled metrics next to the median of per-station metrics.

    Parameters
    ----------
    obs, pred, stations : array_like, 1-D
        Paired values and the station of each pair.
    **kwargs
        Passed to :func:`metrics_table` (``min_obs``, ``alpha``, ``kge_version``);
        intervals are left out because a median of intervals is not an interval.

    Returns
    -------
    pandas.DataFrame
        Two rows, ``"pooled"`` (all stations and days together) and
        ``"station_median"`` (median over stations with at least ``min_obs`` pairs;
        its ``n_obs`` is the number of such stations).
    """
    kwargs["ci"] = False
    pooled = metrics_table(obs, pred, **kwargs)
    per = metrics_table(obs, pred, stations, **kwargs)
    scored = per.dropna(subset=["R", "RMSD"], how="all")
    median = scored.median(numeric_only=True)
    median["n_obs"] = float(len(scored))
    out = pd.concat([pooled.iloc[0], median], axis=1).T
    out.index = pd.Index(["pooled", "station_median"], name="summary")
    return out.astype("float64")
