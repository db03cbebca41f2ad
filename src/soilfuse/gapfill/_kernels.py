"""Numpy kernels of the gap-fillers and smoothers (plain arrays, no xarray, no Dask).

Time-series kernels take arrays whose **last** axis is time (the layout
``xarray.apply_ufunc`` hands over with ``input_core_dims=[["time"]]``); image kernels
take ``(..., ny, nx)``. All return new float64 arrays, NaN where no value could be
made; the xarray wrappers cast back and derive the flag layers.

The Whittaker solver is hand-written because every pixel has its own weights (and,
with automatic λ, its own λ), so each needs its own banded factorisation:
``scipy.linalg.solveh_banded`` solves one system per call, which costs a Python call
per pixel and λ. Here the banded LDLᵀ factorisation (bandwidth = difference order)
runs once over time with every operation vectorised across a batch of pixels.
"""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
from scipy.ndimage import correlate
from scipy.signal import savgol_coeffs, savgol_filter

from soilfuse._typing import FloatArray

__all__ = [
    "combine_flags_kernel",
    "difference_bands",
    "idw_fill_kernel",
    "interpolate_time_kernel",
    "savgol_kernel",
    "whittaker_kernel",
]

# Flag codes (registry and meanings in soilfuse.gapfill._common.FLAG_MEANINGS).
OBSERVED, TEMPORAL, SPATIAL, STDF, SMOOTHED, MISSING = 0, 1, 2, 3, 4, 255

#: Series processed together by the time-series kernels (bounds their work arrays).
BATCH = 4096


# ====================================================================== flags
def combine_flags_kernel(
    before: FloatArray, after: FloatArray, prior: np.ndarray, *, filled: int, observed_to: int | None = None
) -> np.ndarray:
    """Flag of each value after one step: kept, filled by this step, or still missing.

    Parameters
    ----------
    before, after : numpy.ndarray
        Values before and after the step (NaN = missing).
    prior : numpy.ndarray of uint8
        Flags before the step (``OBSERVED`` where nothing is known).
    filled : int
        Code of values this step created where ``before`` was missing.
    observed_to : int, optional
        New code for values that were ``OBSERVED`` (e.g. ``SMOOTHED``).

    Returns
    -------
    numpy.ndarray of uint8
    """
    out = np.where(np.isfinite(before), prior, np.uint8(filled)).astype(np.uint8)
    if observed_to is not None:
        out[out == OBSERVED] = observed_to
    out[~np.isfinite(after)] = MISSING
    return out


# ====================================================================== temporal linear
def interpolate_time_kernel(
    values: FloatArray, days: FloatArray, *, max_gap: float = np.inf, hold_edges: bool = False
) -> FloatArray:
    """Linear interpolation in time between each missing value's nearest valid neighbours.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(..., nt)``, time last.
    days : numpy.ndarray
        Time of each step in days, increasing, shape ``(nt,)``.
    max_gap : float
        A gap is bridged when its bracketing valid values are at most ``max_gap + 1``
        days apart (i.e. at most ``max_gap`` missing days on a daily axis).
    hold_edges : bool
        Also fill leading/trailing gaps with the nearest valid value (no limit).

    Returns
    -------
    numpy.ndarray
        float64, same shape; NaN where not filled.
    """
    shape = np.shape(values)
    flat = np.asarray(values).reshape(-1, shape[-1])
    out = np.empty(flat.shape)
    t = np.asarray(days, dtype="float64")
    for start in range(0, flat.shape[0], BATCH):
        block = np.asarray(flat[start:start + BATCH], dtype="float64")
        out[start:start + BATCH] = _interpolate_rows(block, t, max_gap, hold_edges)
    return out.reshape(shape)


def _interpolate_rows(v: FloatArray, t: FloatArray, max_gap: float, hold_edges: bool) -> FloatArray:
    nt = v.shape[1]
    valid = np.isfinite(v)
    idx = np.arange(nt)
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(valid, idx, nt)[:, ::-1], axis=1)[:, ::-1]
    has_prev, has_next = prev >= 0, nxt < nt
    p = np.clip(prev, 0, nt - 1)
    n = np.clip(nxt, 0, nt - 1)
    vp = np.take_along_axis(v, p, axis=1)
    vn = np.take_along_axis(v, n, axis=1)
    span = t[n] - t[p]
    inner = ~valid & has_prev & has_next & (span <= max_gap + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(inner, (t[None, :] - t[p]) / np.where(span > 0, span, 1.0), 0.0)
    out = np.where(valid, v, np.nan)
    out = np.where(inner, vp + frac * (vn - vp), out)
    if hold_edges:
        out = np.where(~valid & ~has_prev & has_next, vn, out)
        out = np.where(~valid & has_prev & ~has_next, vp, out)
    return out


def _complete_rows(v: FloatArray, t: FloatArray) -> FloatArray:
    """Fill every NaN by linear interpolation within its row, edges held (rows without values: NaN).

    One ``numpy.interp`` call covers the whole batch: the rows are laid end to end on
    one axis, far enough apart, with each row's first and last valid values repeated
    just outside its ends so that no row borrows from its neighbours.
    """
    m, nt = v.shape
    valid = np.isfinite(v)
    has: np.ndarray = np.asarray(valid.any(axis=1))
    rows = np.arange(m)
    first = np.argmax(valid, axis=1)
    last = nt - 1 - np.argmax(valid[:, ::-1], axis=1)
    width = 2.0 * (t[-1] - t[0]) + 4.0
    x = (t - t[0])[None, :] + (rows * width)[:, None]
    x_ext = np.concatenate([x[:, :1] - 1.0, x, x[:, -1:] + 1.0], axis=1)
    y_ext = np.concatenate([v[rows, first][:, None], v, v[rows, last][:, None]], axis=1)
    keep = np.concatenate([has[:, None], valid, has[:, None]], axis=1)
    if not keep.any():
        return np.full(v.shape, np.nan)
    out = np.interp(x.ravel(), x_ext[keep], y_ext[keep]).reshape(m, nt)
    out[~has] = np.nan
    return out


# ====================================================================== spatial IDW
def idw_fill_kernel(
    values: FloatArray, *, window: int = 11, power: float = 2.0, min_neighbours: int = 3
) -> FloatArray:
    """Fill missing cells by inverse-distance weighting of valid cells in a square window, per image.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(..., ny, nx)``; each trailing 2-D image is filled on its own.
    window : int
        Odd edge of the square window in cells (centre excluded).
    power : float
        Weights are ``distance ** -power``, distance in cells.
    min_neighbours : int
        Valid cells needed in the window to fill a cell.

    Returns
    -------
    numpy.ndarray
        float64; valid input cells unchanged, missing ones filled where possible.
        Cells beyond the array edge count as missing (no padding).
    """
    v = np.asarray(values, dtype="float64")
    shape = v.shape
    images = v.reshape(-1, *shape[-2:])
    half = window // 2
    off = np.arange(-half, half + 1, dtype="float64")
    dist = np.hypot(off[:, None], off[None, :])
    with np.errstate(divide="ignore"):
        weights = np.where(dist > 0, dist ** -float(power), 0.0)
    ones = (dist > 0).astype("float64")
    out = images.copy()
    for k, img in enumerate(images):
        missing = ~np.isfinite(img)
        if not missing.any() or missing.all():
            continue
        valid = (~missing).astype("float64")
        num = correlate(np.where(missing, 0.0, img), weights, mode="constant", cval=0.0)
        den = correlate(valid, weights, mode="constant", cval=0.0)
        count = correlate(valid, ones, mode="constant", cval=0.0)
        fill = missing & (count >= min_neighbours - 0.5) & (den > 0)
        out[k][fill] = num[fill] / den[fill]
    return out.reshape(shape)


# ====================================================================== Savitzky-Golay
def savgol_kernel(values: FloatArray, days: FloatArray, *, window: int = 7, order: int = 2) -> FloatArray:
    """Savitzky–Golay smoothing along time (``scipy.signal.savgol_filter``, ``mode="interp"``).

    Complete series are filtered directly. A series with missing values is first
    completed by linear interpolation (edges held at the nearest value), filtered,
    and its missing positions set back to NaN, so smoothing never fills gaps. Series
    without any valid value stay NaN.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(..., nt)`` with ``nt >= window``.
    days : numpy.ndarray
        Time in days, shape ``(nt,)`` (used to complete series with gaps).
    window, order : int
        Window length (odd, in time steps) and polynomial order (< window).

    Returns
    -------
    numpy.ndarray
        float64, same shape.
    """
    shape = np.shape(values)
    flat = np.asarray(values).reshape(-1, shape[-1])
    out = np.empty(flat.shape)
    t = np.asarray(days, dtype="float64")
    half = window // 2
    # column k: weights that evaluate the polynomial fitted to the first (last) window at k
    left = np.stack([savgol_coeffs(window, order, pos=k, use="dot") for k in range(half)], axis=1)
    right = np.stack([savgol_coeffs(window, order, pos=window - half + k, use="dot") for k in range(half)], axis=1)
    for start in range(0, flat.shape[0], BATCH):
        v = np.asarray(flat[start:start + BATCH], dtype="float64")
        valid = np.isfinite(v)
        filled = v if valid.all() else np.nan_to_num(_complete_rows(v, t))  # empty rows: 0, blanked below
        smooth = savgol_filter(filled, window, order, axis=1, mode="nearest")
        # mode="interp" edges as two small matrix products: scipy's own edge fit calls
        # lstsq with one right-hand side per series, which dominated the run time
        smooth[:, :half] = filled[:, :window] @ left
        smooth[:, -half:] = filled[:, -window:] @ right
        out[start:start + BATCH] = np.where(valid, smooth, np.nan)
    return out.reshape(shape)


# ====================================================================== Whittaker
def difference_bands(n: int, order: int) -> FloatArray:
    """Lower bands of ``DᵀD`` for the order-``d`` difference matrix ``D`` of ``n`` samples.

    Returns
    -------
    numpy.ndarray
        Shape ``(order + 1, n)``; row ``k`` holds ``(DᵀD)[i, i − k]`` at column ``i``.
    """
    coef = np.array([(-1) ** (order - j) * comb(order, j) for j in range(order + 1)], dtype="float64")
    bands = np.zeros((order + 1, n))
    for a in range(order + 1):
        for b in range(a + 1):
            bands[a - b, a:n - order + a] += coef[a] * coef[b]
    return bands


def _factor_solve(
    y: FloatArray, w: FloatArray, lam: float | FloatArray, bands: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Solve ``(W + λ DᵀD) z = W y`` for a batch of series by banded LDLᵀ.

    ``y``, ``w`` have shape ``(nt, m)`` (time first, pixels contiguous); ``lam`` is one
    λ for all series or one per series ``(m,)``. Returns ``z`` ``(nt, m)`` and the
    factors ``L`` ``(d + 1, nt + d, m)`` with ``L[k, i] = L_{i, i−k}`` (zero past
    ``nt``) and ``D`` ``(nt, m)``. The loop keeps ``C[k, i] = L_{i, i−k} D_{i−k}``
    so that each step costs ~4d vector operations, all written in place.
    """
    nt, m = y.shape
    d = bands.shape[0] - 1
    scalar = np.ndim(lam) == 0
    lam_v: Any = float(lam) if scalar else np.asarray(lam, dtype="float64")
    low = np.zeros((d + 1, nt + d, m))
    cl = np.empty((d + 1, nt, m))
    diag = np.empty((nt, m))
    u = np.multiply(w, y)
    tmp = np.empty(m)
    for i in range(nt):
        top = min(d, i)
        for k in range(top, 0, -1):
            ck = cl[k, i]
            if scalar:
                ck.fill(lam_v * bands[k, i])
            else:
                np.multiply(lam_v, bands[k, i], out=ck)
            for mm in range(k + 1, top + 1):
                np.multiply(low[mm, i], cl[mm - k, i - k], out=tmp)
                ck -= tmp
            np.divide(ck, diag[i - k], out=low[k, i])
        di, ui = diag[i], u[i]
        if scalar:
            np.add(w[i], lam_v * bands[0, i], out=di)
        else:
            np.multiply(lam_v, bands[0, i], out=di)
            di += w[i]
        for k in range(1, top + 1):
            lk = low[k, i]
            np.multiply(lk, cl[k, i], out=tmp)
            di -= tmp
            np.multiply(lk, u[i - k], out=tmp)
            ui -= tmp
    z = u
    z /= diag
    for i in range(nt - 2, -1, -1):
        zi = z[i]
        for k in range(1, min(d, nt - 1 - i) + 1):
            np.multiply(low[k, i + k], z[i + k], out=tmp)
            zi -= tmp
    return z, low, diag


def _hat_trace(w: FloatArray, low: FloatArray, diag: FloatArray) -> FloatArray:
    """``trace(H) = Σ w_i (A⁻¹)_ii`` from the LDLᵀ factors (Takahashi's recursion for band inverses)."""
    d = low.shape[0] - 1
    nt, m = diag.shape
    # block[a][b] = Σ_{i+1+a, i+1+b} of the band of the inverse, for the rows after i
    block = np.zeros((d, d, m))
    trace = np.zeros(m)
    for i in range(nt - 1, -1, -1):
        row = np.zeros((d + 1, m))  # row[b] = Σ_{i, i+b}
        for b in range(1, d + 1):
            acc = np.zeros(m)
            for mm in range(1, d + 1):
                acc -= low[mm, i + mm] * block[mm - 1, b - 1]
            row[b] = acc
        row[0] = 1.0 / diag[i]
        for mm in range(1, d + 1):
            row[0] -= low[mm, i + mm] * row[mm]
        trace += w[i] * row[0]
        new = np.zeros_like(block)
        new[0, 0] = row[0]
        for b in range(1, d):
            new[0, b] = new[b, 0] = row[b]
            new[b, 1:] = block[b - 1, : d - 1]
        block = new
    return trace


def _criteria(y: FloatArray, w: FloatArray, z: FloatArray, order: int) -> tuple[FloatArray, FloatArray]:
    fidelity = np.sum(w * (y - z) ** 2, axis=0)
    roughness = np.sum(np.diff(z, n=order, axis=0) ** 2, axis=0)
    return fidelity, roughness


def whittaker_kernel(
    values: FloatArray,
    weights: FloatArray | None = None,
    *,
    lmbda: float | str = "vcurve",
    order: int = 2,
    lambdas: FloatArray | None = None,
    batch: int = 2048,
) -> tuple[FloatArray, FloatArray]:
    """Weighted Whittaker smoother (Eilers 2003) with a fixed λ or λ chosen per series.

    Minimises ``Σ wᵢ (yᵢ − zᵢ)² + λ Σ (Δᵈ z)²``; zero weights (and NaN values)
    make the smoother interpolate. Automatic λ is searched on the ``lambdas`` grid:

    * ``"vcurve"`` (Frasso and Eilers 2015): with ``F = log10 Σ w (y − z)²`` and
      ``R = log10 Σ (Δᵈ z)²``, take the pair of neighbouring grid values with the
      shortest step ``√(ΔF² + ΔR²) / Δlog10 λ`` and use their geometric mean;
    * ``"gcv"`` (Craven and Wahba 1979): minimise ``n Σ w (y − z)² / (n − tr H)²``,
      with ``n`` the number of weighted samples and ``tr H`` from the band inverse.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(..., nt)``, equally spaced in time.
    weights : numpy.ndarray, optional
        Non-negative weights, same shape; 1 by default. NaN values get weight 0.
    lmbda : float or {"vcurve", "gcv"}
        Smoothing parameter, or the rule that chooses it.
    order : int
        Order ``d`` of the differences (2 penalises curvature).
    lambdas : numpy.ndarray, optional
        Grid of candidate λ, increasing; ``10 ** arange(-1, 5.01, 0.5)`` by default.
    batch : int
        Series solved together (bounds the work arrays to ~``(4 + d) nt batch`` floats).

    Returns
    -------
    z : numpy.ndarray
        Smoothed series, float64, same shape; NaN for series with fewer than
        ``order + 1`` weighted samples.
    lam : numpy.ndarray
        λ used for each series, shape ``values.shape[:-1]``.
    """
    shape = np.shape(values)
    nt = shape[-1]
    y_all = np.asarray(values).reshape(-1, nt)
    w_all = None if weights is None else np.broadcast_to(np.asarray(weights), shape).reshape(-1, nt)
    grid = np.asarray(lambdas if lambdas is not None else 10.0 ** np.arange(-1.0, 5.01, 0.5), dtype="float64")
    bands = difference_bands(nt, order)
    z_out = np.empty(y_all.shape)
    lam_out = np.empty(y_all.shape[0])
    for start in range(0, y_all.shape[0], batch):
        stop = min(start + batch, y_all.shape[0])
        # one transposing copy per batch: time first, pixels contiguous
        y = np.array(y_all[start:stop].T, dtype="float64", order="C")
        w = np.ones_like(y) if w_all is None else np.array(w_all[start:stop].T, dtype="float64", order="C")
        bad = ~(np.isfinite(y) & (w > 0))  # w > 0 is False for NaN weights
        np.copyto(w, 0.0, where=bad)
        np.copyto(y, 0.0, where=bad)
        usable = (nt - bad.sum(axis=0)) >= order + 1
        np.copyto(w, 1.0, where=~usable[None, :])  # keeps the system definite; blanked below
        lam: float | FloatArray = (
            _select_lambda(y, w, grid, bands, order, lmbda) if isinstance(lmbda, str) else float(lmbda)
        )
        z, _, _ = _factor_solve(y, w, lam, bands)
        z[:, ~usable] = np.nan
        z_out[start:stop] = z.T
        lam_out[start:stop] = np.where(usable, lam, np.nan)
    return z_out.reshape(shape), lam_out.reshape(shape[:-1])


def _select_lambda(y: FloatArray, w: FloatArray, grid: FloatArray, bands: FloatArray, order: int,
                   rule: str) -> FloatArray:
    m = y.shape[1]
    tiny = 1e-300
    if rule == "gcv":
        n = np.count_nonzero(w > 0, axis=0).astype("float64")
        best = np.full(m, np.inf)
        lam_best = np.full(m, grid[0])
        for lam_value in grid:
            z, low, diag = _factor_solve(y, w, float(lam_value), bands)
            fidelity, _ = _criteria(y, w, z, order)
            trace = _hat_trace(w, low, diag)
            with np.errstate(divide="ignore", invalid="ignore"):
                score = n * fidelity / np.maximum(n - trace, 1e-12) ** 2
            better = score < best
            best = np.where(better, score, best)
            lam_best = np.where(better, lam_value, lam_best)
        return lam_best
    logs = np.log10(grid)
    prev_f = prev_r = None
    best = np.full(m, np.inf)
    lam_best = np.full(m, grid[0])
    for k, lam_value in enumerate(grid):
        z, _, _ = _factor_solve(y, w, float(lam_value), bands)
        fidelity, roughness = _criteria(y, w, z, order)
        f, r = np.log10(fidelity + tiny), np.log10(roughness + tiny)
        if prev_f is not None and prev_r is not None:
            step = np.hypot(f - prev_f, r - prev_r) / (logs[k] - logs[k - 1])
            better = step < best
            best = np.where(better, step, best)
            lam_best = np.where(better, 10.0 ** ((logs[k] + logs[k - 1]) / 2), lam_best)
        prev_f, prev_r = f, r
    return lam_best
