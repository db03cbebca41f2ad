"""Numpy kernels of the station quality control (no pandas tables, no xarray).

Every kernel takes one regularly sampled series ``x`` (1-D float array, NaN for
gaps and for values excluded by earlier checks) and returns a boolean mask of the
flagged samples (:func:`detect_steps` and :func:`detect_level_shifts` the step
sizes, :func:`pair_steps` the excursion bounds). Windows are given in samples;
:mod:`soilfuse.stations.qc` converts hours to samples from each series' own
sampling interval. Rolling
statistics use :meth:`pandas.Series.rolling` (Cython, numerically stable) on the
array; there is no loop over values (only :func:`pair_steps` walks its few
candidate pairs).

The derivative-based tests follow Dorigo et al. (2013, Vadose Zone J. 12(3)), who
take the first and second derivatives of the series from a 3-point, 2nd-order
Savitzky-Golay filter. For three points that filter is exact, so the derivatives
are the central differences ``d1 = (x[t+1] - x[t-1]) / 2`` and
``d2 = x[t+1] - 2 x[t] + x[t-1]``, written out here because the filter itself would
spread NaN gaps.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.api.typing import Rolling

from soilfuse._typing import FloatArray

__all__ = [
    "close_short_gaps",
    "derivatives",
    "detect_level_shifts",
    "detect_steps",
    "flag_flatlines",
    "flag_low_after_drop",
    "flag_noise_bursts",
    "flag_plateaus",
    "flag_rise_without_rain",
    "flag_spikes_dorigo",
    "flag_spikes_robust",
    "level_change",
    "level_shift_estimate",
    "pair_steps",
    "robust_sd",
    "run_bounds",
    "runs_mask",
    "shift",
    "shift_peaks",
]

BoolArray = np.ndarray


def shift(x: np.ndarray, k: int, fill: float = np.nan) -> np.ndarray:
    """``out[t] = x[t - k]`` (``k > 0``: previous values), padded with ``fill``."""
    out = np.full(x.shape, fill, dtype=np.result_type(x.dtype, type(fill)))
    if k > 0:
        out[k:] = x[:-k]
    elif k < 0:
        out[:k] = x[-k:]
    else:
        out[:] = x
    return out


def derivatives(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """First and second derivatives per sample (3-point Savitzky-Golay, order 2)."""
    xm, xp = shift(x, 1), shift(x, -1)
    return (xp - xm) / 2.0, xp - 2.0 * x + xm


def _rolling(x: np.ndarray, window: int, *, center: bool = True, min_periods: int | None = None) -> Rolling:
    return pd.Series(x).rolling(max(int(window), 1), center=center,
                                min_periods=min_periods if min_periods is not None else 1)


def close_short_gaps(x: FloatArray, max_gap: int) -> np.ndarray:
    """Indices of ``x`` that remain once gaps of at most ``max_gap`` samples are closed.

    Finite samples are kept; a longer run of NaN keeps one NaN so that the series
    stays cut there. ``x[close_short_gaps(x, g)]`` lets derivative and run tests see
    across a missing record or two instead of losing the event around them.
    """
    finite = np.isfinite(x)
    starts, stops = run_bounds(~finite)
    keep = finite.copy()
    keep[starts[stops - starts > max_gap]] = True
    return np.flatnonzero(keep)


def run_bounds(mask: BoolArray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and stop (exclusive) indices of the runs of True in ``mask``."""
    d = np.diff(np.concatenate([[0], mask.astype("int8"), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def runs_mask(n: int, starts: np.ndarray, stops: np.ndarray) -> BoolArray:
    """Boolean mask of length ``n`` that is True on ``[starts[i], stops[i])``."""
    marks = np.zeros(n + 1, dtype="int64")
    np.add.at(marks, np.clip(starts, 0, n), 1)
    np.add.at(marks, np.clip(stops, 0, n), -1)
    return np.cumsum(marks[:-1]) > 0


# ---------------------------------------------------------------------- spikes
def flag_spikes_dorigo(
    x: FloatArray,
    *,
    half_window: int,
    rel_change: float = 0.15,
    symmetry: tuple[float, float] = (0.8, 1.2),
    rel_var: float = 0.01,
    noise_k: float = 0.0,
) -> BoolArray:
    """Soil-moisture spikes after Dorigo et al. (2013, eqs. 4-6).

    A sample is a spike when (1) it differs from the previous one by more than
    ``rel_change`` of it, (2) the second derivatives just before and after it have
    a ratio within ``symmetry`` (a symmetric peak), (3) the variance of the
    surrounding ``±half_window`` samples (without the sample) over their mean is
    below ``rel_var`` (a calm neighbourhood; 1 in % vol units = 0.01 in m3 m-3),
    and (4) it is a local maximum or minimum. soilfuse adds (5): the jump exceeds
    ``noise_k`` robust standard deviations of the series' second derivative, so
    that white noise on a dry, noisy sensor (where 15 % is a few thousandths of
    m3 m-3) is not taken for spikes; ``noise_k = 0`` gives the paper's test.
    """
    xm, xp = shift(x, 1), shift(x, -1)
    _, d2 = derivatives(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.abs(x / xm - 1.0)
        ratio = np.abs(shift(d2, 1) / shift(d2, -1))
    c1 = (change > rel_change) & (np.abs(x - xm) > noise_k * robust_sd(d2))
    c2 = (ratio > symmetry[0]) & (ratio < symmetry[1])
    mean, var = _stats_without_centre(x, half_window)
    with np.errstate(divide="ignore", invalid="ignore"):
        c3 = var / mean < rel_var
    c4 = ((xm < x) & (x > xp)) | ((xm > x) & (x < xp))
    return c1 & c2 & c3 & c4


def robust_sd(v: FloatArray) -> float:
    """1.4826 x median absolute value of the finite values (a robust standard deviation
    of a zero-centred quantity such as a second derivative); inf when there is none."""
    finite = np.abs(v[np.isfinite(v)])
    return 1.4826 * float(np.median(finite)) if finite.size else float("inf")


def _stats_without_centre(x: FloatArray, half_window: int) -> tuple[FloatArray, FloatArray]:
    """Mean and sample variance of the ``±half_window`` neighbours of each sample, itself excluded."""
    w = 2 * half_window + 1
    valid = np.isfinite(x)
    xv = np.where(valid, x, 0.0)
    n = _rolling(valid.astype("float64"), w).sum().to_numpy() - valid
    s1 = _rolling(xv, w).sum().to_numpy() - xv
    s2 = _rolling(xv * xv, w).sum().to_numpy() - xv * xv
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        var = np.clip(s2 - s1 * mean, 0.0, None) / (n - 1)
    var[n < 3] = np.nan
    return mean, var


def flag_spikes_robust(
    x: FloatArray,
    *,
    half_window: int,
    min_size: float,
    k: float = 6.0,
    symmetry: tuple[float, float] = (0.7, 1.3),
) -> BoolArray:
    """One-sample spikes by a robust, scale-free rule (soil temperature).

    A local extremum whose distance from the mean of its two neighbours,
    ``|d2| / 2``, exceeds ``max(min_size, k * s)``, where ``s`` is the robust scale
    (1.4826 x median absolute ``d2`` / 2) over ``±half_window`` samples, and whose
    neighbouring second derivatives are symmetric as in Dorigo et al. (2013).
    """
    xm, xp = shift(x, 1), shift(x, -1)
    _, d2 = derivatives(x)
    size = np.abs(d2) / 2.0
    scale = 1.4826 * _rolling(np.abs(d2) / 2.0, 2 * half_window + 1, min_periods=3).median().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(shift(d2, 1) / shift(d2, -1))
    peak = ((xm < x) & (x > xp)) | ((xm > x) & (x < xp))
    big = size > np.maximum(min_size, k * scale)
    return peak & big & (ratio > symmetry[0]) & (ratio < symmetry[1])


# ---------------------------------------------------------------------- steps
def detect_steps(
    x: FloatArray,
    *,
    half_window: int,
    min_size: float,
    rel_size: float = 0.0,
    trend_factor: float = 10.0,
    symmetry_tol: float = 0.35,
    noise_k: float = 4.0,
) -> FloatArray:
    """Abrupt level changes between ``t - 1`` and ``t`` (breaks, after Dorigo et al. 2013, eqs. 7-9).

    A step at ``t`` needs (1) ``|x[t] - x[t-1]| > min_size`` and, if ``rel_size`` > 0,
    more than ``rel_size`` of ``x[t]`` (0.01 m3 m-3 and 10 % in the paper); (2) the
    first derivative at ``t`` larger than ``trend_factor`` times the absolute median
    first derivative over ``±half_window`` samples (an abrupt change, not a trend;
    see :func:`_background_slope`);
    (3) second derivatives at ``t - 1`` and ``t`` of opposite sign and equal size
    within ``symmetry_tol`` (the paper's ratio ~ 1; relaxed because it tests noisy
    hourly data); (4) both of them larger than ``noise_k`` robust standard
    deviations of the series' second derivative (scale-free, so that it serves
    for soil temperature with a diurnal cycle).

    Returns
    -------
    numpy.ndarray
        The signed step size where a step is found, else 0. The size is
        ``(d2[t-1] - d2[t]) / 2``, which equals the jump ``x[t] - x[t-1]`` on a flat
        series and removes a local linear trend (e.g. the diurnal warming of soil
        temperature) from it.
    """
    d1, d2 = derivatives(x)
    d2m = shift(d2, 1)
    delta = (d2m - d2) / 2.0
    mean_d1 = _background_slope(d1, half_window)
    sigma = robust_sd(d2)
    with np.errstate(invalid="ignore", divide="ignore"):
        c1 = np.abs(delta) > min_size
        if rel_size > 0:
            c1 &= np.abs(delta) > rel_size * np.abs(x)
        c2 = np.abs(d1) > trend_factor * np.abs(mean_d1) if trend_factor > 0 else np.ones(x.size, dtype=bool)
        big, small = np.maximum(np.abs(d2m), np.abs(d2)), np.minimum(np.abs(d2m), np.abs(d2))
        # a clean step s at t has d2[t-1] = s and d2[t] = -s
        c3 = (np.sign(d2m) == np.sign(delta)) & (np.sign(d2) == -np.sign(delta)) & (small >= (1 - symmetry_tol) * big)
        c4 = small > noise_k * sigma
    found = c1 & c2 & c3 & c4
    return np.where(found, delta, 0.0)


def _background_slope(d1: FloatArray, half_window: int) -> FloatArray:
    """Robust background slope: median first derivative over ``±half_window`` samples.

    A mean would hold the step's own derivatives (``d1[t - 1]`` and ``d1[t]`` each
    carry half the jump), which caps the abrupt-versus-trend ratio of Dorigo et al.
    (2013) at about ``half_window`` whatever the step size; the median ignores the
    few derivatives of the step and of any nearby excursion.
    """
    return _rolling(d1, 2 * half_window + 1, min_periods=3).median().to_numpy()


def _step_weights(half_window: int, degree: int) -> np.ndarray:
    """Least-squares weights of the step in ``x[t - m : t + m]`` ~ polynomial + step at ``t``.

    The window holds ``m = half_window`` samples on each side of a step between
    ``t - 1`` and ``t``; the background is a polynomial of ``degree`` shared by both
    sides, so that a smooth course (a trend, the curvature of a diurnal cycle) is
    not taken for the step.
    """
    j = np.arange(-half_window, half_window) + 0.5
    design = np.column_stack([*(j**p for p in range(degree + 1)), (j > 0).astype("float64")])
    return np.linalg.pinv(design)[-1]


def level_shift_estimate(
    x: FloatArray, *, half_window: int, degree: int = 3
) -> FloatArray:
    """Step size between ``t - 1`` and ``t`` by a local two-sided regression (NaN where untested).

    At every ``t`` the step is fitted by least squares to the ``half_window``
    samples either side, with a local polynomial of ``degree`` as background (a
    cubic over 6 h each side follows a diurnal wave to within 1 % of its
    amplitude). Using every sample of the window, the estimate's noise is
    ``1.6 sigma`` for 6 + 6 hourly samples against ``2.2 sigma`` for the
    four-sample derivative statistic of :func:`detect_steps`, so smaller shifts
    stand out of noisy records. A spike or short drop also moves the estimate:
    the caller keeps only shifts away from the steps of :func:`detect_steps`,
    which pairs those. Windows with a gap are not tested.
    """
    n = x.size
    w = _step_weights(half_window, degree)
    est = np.full(n, np.nan)
    if n < w.size:
        return est
    valid = np.isfinite(x)
    # est[t] = sum_i w[i] x[t - m + i]: correlate, then align the window start at t - m
    full = np.correlate(np.where(valid, x, 0.0), w, mode="valid")
    count = np.correlate(valid.astype("float64"), np.ones(w.size), mode="valid")
    est[half_window:half_window + full.size] = np.where(count == w.size, full, np.nan)
    return est


def detect_level_shifts(estimate: FloatArray, *, half_window: int, min_size: float, noise_k: float = 5.0) -> FloatArray:
    """Level shifts from :func:`level_shift_estimate`: large, significant, one per change.

    A step is kept where the estimated size exceeds ``min_size`` and ``noise_k``
    robust standard deviations of the estimate over the series (the series' own
    null distribution, fit error included), and is the largest estimate within
    ``±half_window`` samples.

    Returns
    -------
    numpy.ndarray
        The estimated step size where a shift is found, else 0.
    """
    sigma = robust_sd(estimate)
    peaks = shift_peaks(estimate, half_window)
    with np.errstate(invalid="ignore"):
        found = (np.abs(peaks) > min_size) & (np.abs(peaks) > noise_k * sigma)
    return np.where(found, peaks, 0.0)


def shift_peaks(estimate: FloatArray, half_window: int) -> FloatArray:
    """The estimate where its size is the largest within ``±half_window`` samples, else 0.

    A step makes the regression estimate peak at the step and leaves side lobes of
    either sign around it; only the peak stands for a change.
    """
    size = np.abs(estimate)
    with np.errstate(invalid="ignore"):
        peak = size >= _rolling(size, 2 * half_window + 1, min_periods=1).max().to_numpy()
    return np.where(peak & np.isfinite(estimate), estimate, 0.0)


def level_change(x: FloatArray, at: np.ndarray, window: int) -> FloatArray:
    """Median of the ``window`` samples from ``at`` on minus the median of the ``window`` before.

    A break changes the level for good; a step that only bounds a spike, a short
    drop or a noisy spell leaves the medians either side of it equal. Only the
    samples at ``at`` are evaluated (NaN where a side has no valid sample).
    """
    at = np.asarray(at, dtype="int64")
    if at.size == 0:
        return np.zeros(0)
    padded = np.concatenate([np.full(window, np.nan), x, np.full(window, np.nan)])
    offsets = np.arange(window)
    before = padded[at[:, None] + offsets[None, :]]           # x[at - window : at]
    after = padded[at[:, None] + window + offsets[None, :]]   # x[at : at + window]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN side: NaN
        return np.nanmedian(after, axis=1) - np.nanmedian(before, axis=1)


def pair_steps(
    steps: FloatArray,
    *,
    max_gap: int,
    tolerance: float = 0.5,
    abs_tolerance: float = 0.0,
    short_up: int | None = None,
    short_down: int | None = None,
    min_long: int = 0,
    valid: BoolArray | None = None,
    min_valid: float = 0.0,
    lookahead: int = 6,
    long_only: BoolArray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair steps with later opposite steps of similar size: temporary excursions.

    Every step and each of the next ``lookahead`` steps that has the opposite sign,
    undoes it within ``tolerance`` of its size plus ``abs_tolerance`` and lies at
    most ``max_gap`` samples later form a candidate pair. Excursions up (down) must
    last at most ``short_up`` (``short_down``) samples or at least ``min_long``
    (no limit when None); a step marked in ``long_only`` only opens or closes
    excursions of at least ``min_long``. When ``valid`` is given, at least
    ``min_valid`` of the samples inside must be valid (an excursion does not span
    other flagged spells).
    Candidates are accepted shortest first, each step in at most one pair, so that a
    spike inside a level shift is paired before the shift itself and alternating
    steps do not chain into one another.

    Returns
    -------
    starts, stops : numpy.ndarray of int
        Excursions ``[start, stop)``: from the opening step to the sample before the
        closing one, sorted by start.
    """
    pos = np.flatnonzero(steps)
    empty = np.zeros(0, dtype="int64")
    if pos.size < 2:
        return empty, empty
    size = steps[pos]
    idx = np.arange(pos.size)
    only_long = long_only[pos] if long_only is not None else np.zeros(pos.size, dtype=bool)
    count = np.concatenate([[0], np.cumsum(valid)]) if valid is not None else None
    cand_i, cand_j = [], []
    for lag in range(1, lookahead + 1):  # candidate partners, vectorised over steps
        j = idx + lag
        ok = j < pos.size
        jj = np.where(ok, j, 0)
        length = pos[jj] - pos
        up = size > 0
        short = up & (length <= (max_gap if short_up is None else short_up))
        short |= ~up & (length <= (max_gap if short_down is None else short_down))
        allowed = (length >= min_long) | (short & ~only_long & ~only_long[jj])
        good = (
            ok & (np.sign(size[jj]) == -np.sign(size)) & allowed & (length <= max_gap)
            & (np.abs(size + size[jj]) <= tolerance * np.abs(size) + abs_tolerance)
        )
        if count is not None:
            inside = count[pos[jj]] - count[pos]
            good &= inside >= min_valid * np.maximum(length, 1)
        cand_i.append(idx[good])
        cand_j.append(jj[good])
    ci, cj = np.concatenate(cand_i), np.concatenate(cand_j)
    order = np.argsort(pos[cj] - pos[ci], kind="stable")
    used = np.zeros(pos.size, dtype=bool)
    starts, stops = [], []
    for a, b in zip(ci[order], cj[order], strict=True):  # one pass over candidate events
        if not (used[a] or used[b]):
            used[a] = used[b] = True
            starts.append(pos[a])
            stops.append(pos[b])
    if not starts:
        return empty, empty
    first = np.argsort(starts)
    return np.asarray(starts, dtype="int64")[first], np.asarray(stops, dtype="int64")[first]


# ---------------------------------------------------------------------- constancy
def flag_flatlines(x: FloatArray, *, min_length: int, tolerance: float = 0.0) -> BoolArray:
    """Runs of at least ``min_length`` samples that change by no more than ``tolerance``.

    A stuck sensor repeats its last value; the run includes the first repeated value.
    Gaps (NaN) end a run.
    """
    same = np.abs(x - shift(x, 1)) <= tolerance
    starts, stops = run_bounds(same)
    starts = starts - 1  # the value that is repeated belongs to the run
    keep = stops - starts >= min_length
    return runs_mask(x.size, starts[keep], stops[keep])


def flag_plateaus(
    x: FloatArray,
    *,
    window: int,
    max_var: float,
    min_rise: float,
    search: int,
    level: float,
    reference: float,
) -> BoolArray:
    """Saturated plateaus after Dorigo et al. (2013, eqs. 10-13).

    A run of low variance (variance over ``window`` samples at most ``max_var``)
    lasting at least ``window`` samples, entered by a rise (largest first
    derivative within ``search`` samples before it at least ``min_rise`` per
    sample), left by a fall (a negative first derivative within ``search`` samples
    after it), with a mean of at least ``level`` times ``reference`` (the
    station's saturation, or the highest value of the series).
    """
    n = x.size
    var = _rolling(x, window, center=False, min_periods=window).var().to_numpy()
    low_end = var <= max_var  # window ending at t is calm
    low = runs_mask(n, np.flatnonzero(low_end) - window + 1, np.flatnonzero(low_end) + 1)
    starts, stops = run_bounds(low)
    if starts.size == 0 or not np.isfinite(reference):
        return np.zeros(n, dtype=bool)
    d1, _ = derivatives(x)
    before = _rolling(d1, search + 1, center=False).max().to_numpy()
    after = _rolling(d1[::-1], search + 1, center=False).min().to_numpy()[::-1]
    valid = np.isfinite(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(valid, x, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(valid)])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (csum[stops] - csum[starts]) / (ccnt[stops] - ccnt[starts])
    rise = before[np.clip(starts, 0, n - 1)] >= min_rise
    fall = after[np.clip(stops - 1, 0, n - 1)] < 0
    keep = (stops - starts >= window) & rise & fall & (mean >= level * reference)
    return runs_mask(n, starts[keep], stops[keep])


def flag_low_after_drop(
    x: FloatArray,
    drop_at: BoolArray,
    *,
    window: int,
    max_rel_var: float = 1e-5,
) -> BoolArray:
    """Constant low values following a negative break (Dorigo et al. 2013, eq. 14, flag D09).

    Samples whose forward ``window`` has a variance over mean below ``max_rel_var``
    (0.001 in % vol units = 1e-5 in m3 m-3) form calm runs; a calm run that starts
    at a negative break is flagged, extended by the window it looks ahead.
    """
    n = x.size
    fwd = pd.Series(x[::-1]).rolling(window, min_periods=window)
    var, mean = fwd.var().to_numpy()[::-1], fwd.mean().to_numpy()[::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        calm = (var / mean < max_rel_var) | ((mean == 0) & (var == 0))
    starts, stops = run_bounds(calm)
    if starts.size == 0:
        return np.zeros(n, dtype=bool)
    hit = drop_at[np.clip(starts, 0, n - 1)] | drop_at[np.clip(starts - 1, 0, n - 1)]
    return runs_mask(n, starts[hit], np.minimum(stops[hit] + window - 1, n))


def flag_noise_bursts(
    x: FloatArray,
    *,
    window: int,
    factor: float,
    min_length: int,
    floor: float = 0.0,
    min_sign_changes: float = 0.0,
) -> BoolArray:
    """Episodes whose high-frequency noise is ``factor`` times the series' usual.

    The local noise is the rolling median of ``|d2|`` over ``window`` samples (a
    median, so single rain jumps or spikes do not count). Samples are *loud* where
    it exceeds ``factor`` times the median ``|d2|`` of the whole series (at least
    ``floor``, so that finely quantised, almost noiseless records do not make every
    wetting a burst). Noise makes successive changes alternate in sign (2/3 of the
    time for white noise) while rain pulses and diurnal cycles do not, so a loud
    run is a burst only if it holds at least ``min_length`` samples where the share
    of sign changes of ``x[t] - x[t-1]`` over the window reaches
    ``min_sign_changes``. Loud runs less than a window apart are merged; the whole
    run is then flagged, widened by half a window on each side (the edges of a
    burst are noisy too).
    """
    _, d2 = derivatives(x)
    a = np.abs(d2)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros(x.size, dtype=bool)
    base = max(float(np.median(finite)), floor)
    local = _rolling(a, window, min_periods=max(3, window // 2)).median().to_numpy()
    loud = local > factor * max(base, np.finfo("float64").tiny)
    core = loud.copy()
    if min_sign_changes > 0:
        delta = x - shift(x, 1)
        flips = (np.sign(delta) * np.sign(shift(delta, 1)) < 0).astype("float64")
        flips[~np.isfinite(delta) | ~np.isfinite(shift(delta, 1))] = np.nan
        share = _rolling(flips, window, min_periods=max(3, window // 2)).mean().to_numpy()
        core &= share >= min_sign_changes
    c_start, c_stop = run_bounds(core)
    long_core = c_stop - c_start >= min_length
    starts, stops = run_bounds(loud)
    # loud runs less than a window apart belong to one episode
    if starts.size > 1:
        joined = np.r_[True, starts[1:] - stops[:-1] > window]
        stops = np.maximum.reduceat(stops, np.flatnonzero(joined))
        starts = starts[joined]
    if starts.size == 0 or not long_core.any():
        return np.zeros(x.size, dtype=bool)
    # a loud run is kept when a long enough core run lies inside it
    run_of_core = np.searchsorted(starts, c_start[long_core], side="right") - 1
    keep = np.zeros(starts.size, dtype=bool)
    keep[run_of_core] = True
    half = window // 2
    return runs_mask(x.size, starts[keep] - half, stops[keep] + half) & np.isfinite(x)


# ---------------------------------------------------------------------- consistency
def flag_rise_without_rain(
    x: FloatArray,
    rain: FloatArray,
    *,
    lag: int,
    min_rain: float,
    min_rise: float = 0.0,
) -> BoolArray:
    """Soil moisture rising with no rain (Dorigo et al. 2013, flags D04/D05).

    A sample is flagged when soil moisture rose since the previous sample, rose
    over the last ``lag`` samples (24 h) by more than twice the standard deviation
    of those samples and by more than ``min_rise`` (soilfuse: a noise floor, 0 in
    the paper), and the rain over the same period (``rain``, mm, aligned with
    ``x``) is below ``min_rain`` (0.2 mm in the paper).
    """
    rise1 = x - shift(x, 1)
    rise24 = x - shift(x, lag)
    sd = _rolling(x, lag + 1, center=False, min_periods=3).std().to_numpy()
    with np.errstate(invalid="ignore"):
        return (rise1 > 0) & (rise24 > 2.0 * sd) & (rise24 > min_rise) & (rain < min_rain)
