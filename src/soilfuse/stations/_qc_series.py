"""Per-series driver of the quality control: regular time axis, ancillary data, kernels.

:func:`series_flags` walks the series of a sorted observation table (one
``(station, variable, depth)`` each; the loops are over series, the work inside is
vectorised numpy from :mod:`soilfuse.stations._qc_kernels`). Each series is put on
a regular axis at its own sampling interval (gaps are NaN), checked, and the flag
bits are mapped back to its rows. Soil temperature goes first so that its own
faults do not mark soil moisture as frozen.

Steps are checked against the other sensors of the same station before they count
as breaks: a jump that a neighbouring sensor makes at the same time (same sign,
clearly above that sensor's noise) is a change of the soil, not of one sensor.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from soilfuse.stations import _qc_kernels as k

if TYPE_CHECKING:
    from soilfuse.stations.qc import QCThresholds

_DAY_NS = 86_400_000_000_000
_HOUR_NS = 3_600_000_000_000


@dataclass
class _Context:
    """Inputs shared by all series (a plain holder)."""

    th: QCThresholds
    wanted: set[str]
    bits: Mapping[str, np.uint32]
    ancillary: Mapping[str, pd.DataFrame | None]
    rain_code: str
    times: np.ndarray
    values: np.ndarray
    premask: np.ndarray
    flags: np.ndarray  # filled series by series


@dataclass
class _Series:
    """One series on its regular axis, between the checks (a plain holder)."""

    r0: int
    r1: int
    meta: Mapping[str, Any]
    step_h: float
    pos: np.ndarray          # regular index of each row
    keep: np.ndarray         # regular index of each kept (compressed) sample
    x: np.ndarray            # compressed values; NaN where excluded
    day: np.ndarray          # compressed day numbers
    tt: np.ndarray           # compressed times (ns)
    flags: np.ndarray        # regular flag bits
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    delta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    delta_peak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma: float = np.inf
    shift_est: np.ndarray = field(default_factory=lambda: np.zeros(0))  # regression step estimate
    shift_peak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shift_sigma: float = np.inf
    from_shift: np.ndarray | None = None  # steps found by the regression test only
    thawing: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def hours(self, h: float) -> int:
        return max(1, round(h / self.step_h))

    def put(self, ctx: _Context, code: str, where: np.ndarray) -> None:
        """Set ``code`` on the compressed samples ``where`` (mask or indices)."""
        if code in ctx.wanted:
            self.flags[self.keep[where]] |= ctx.bits[code]


def _series_bounds(*keys: np.ndarray) -> np.ndarray:
    """Row index where each series starts (any key changes), plus the length at the end."""
    change = np.zeros(keys[0].size, dtype=bool)
    change[0:1] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.append(np.flatnonzero(change), keys[0].size)


def series_flags(
    obs: pd.DataFrame,
    premask: np.ndarray,
    *,
    saturation: np.ndarray,
    ancillary: Mapping[str, pd.DataFrame | None],
    rain_code: str,
    thresholds: QCThresholds,
    wanted: set[str],
    bits: Mapping[str, np.uint32],
) -> np.ndarray:
    """Flag bits of the temporal checks for every row (rows sorted by series and time)."""
    out = np.zeros(len(obs), dtype="uint32")
    if obs.empty:
        return out
    times = obs["time"].to_numpy().astype("datetime64[ns]").astype("int64")
    values = obs["value"].to_numpy(dtype="float64")
    # per-row labels as codes into the (few) distinct values: no string per value
    station_codes, station_names = pd.factorize(obs["station_id"])
    variable_codes, variable_names = pd.factorize(obs["variable"])
    stations = np.asarray([str(v) for v in station_names], dtype=object)[station_codes]
    variables = np.asarray([str(v) for v in variable_names], dtype=object)[variable_codes]
    top = obs["depth_from"].to_numpy(dtype="float64")
    bottom = obs["depth_to"].to_numpy(dtype="float64")
    bounds = _series_bounds(station_codes, variable_codes, top, bottom)
    st_index = _st_series_index(bounds, stations, variables, top, bottom)
    ctx = _Context(thresholds, wanted, bits, ancillary, rain_code, times, values, premask, out)
    for variable in ("st", "sm"):
        group: list[_Series] = []
        for r0, r1 in itertools.pairwise(bounds):
            if variables[r0] != variable:
                continue
            meta = {
                "station": stations[r0], "variable": variable, "top": top[r0], "bottom": bottom[r0],
                "saturation": float(saturation[r0]), "st": st_index.get(stations[r0], []),
            }
            s = _prepare(ctx, int(r0), int(r1), meta)
            if s is not None:
                _detect_steps(ctx, s)
                group.append(s)
        _drop_coherent_steps(group, thresholds)
        for s in group:
            _finish(ctx, s)
            out[s.r0:s.r1] = s.flags[s.pos]
    return out


def _st_series_index(
    bounds: np.ndarray, stations: np.ndarray, variables: np.ndarray, top: np.ndarray, bottom: np.ndarray
) -> dict[str, list[tuple[float, int, int]]]:
    """Soil-temperature series of each station: (centre depth cm, first row, end row)."""
    index: dict[str, list[tuple[float, int, int]]] = {}
    for r0, r1 in itertools.pairwise(bounds):
        if variables[r0] == "st":
            index.setdefault(stations[r0], []).append(((top[r0] + bottom[r0]) / 2.0, int(r0), int(r1)))
    return index


def _daily_lookup(table: pd.DataFrame | None, station: str, day: np.ndarray) -> np.ndarray | None:
    """Daily values of ``station`` at the day numbers ``day`` (days since 1970), NaN if absent."""
    if table is None or station not in table.columns:
        return None
    series = table[station]
    days = series.index.to_numpy().astype("datetime64[ns]").astype("int64") // _DAY_NS
    lookup = pd.Series(series.to_numpy(dtype="float64"), index=days)
    return lookup.reindex(day).to_numpy(dtype="float64")


# ---------------------------------------------------------------------- stages
def _prepare(ctx: _Context, r0: int, r1: int, meta: Mapping[str, Any]) -> _Series | None:
    """Regular axis, then frozen soil, constancy and noise bursts (flagged and excluded)."""
    th = ctx.th
    t = ctx.times[r0:r1]
    v = ctx.values[r0:r1]
    diffs = np.diff(t)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return None
    step = int(np.median(diffs))
    pos = np.rint((t - t[0]) / step).astype("int64")
    n = int(pos[-1]) + 1
    x = np.full(n, np.nan)
    usable = np.isfinite(v) & (ctx.premask[r0:r1] == 0)
    x[pos[usable]] = v[usable]
    tt = t[0] + np.arange(n, dtype="int64") * step
    s = _Series(r0, r1, meta, step / _HOUR_NS, pos, np.arange(n), x, tt // _DAY_NS, tt,
                np.zeros(n, dtype="uint32"))
    is_sm = meta["variable"] == "sm"

    # 1. frozen soil (soil moisture only): in-situ, air and reference soil temperature
    thawing = np.zeros(n, dtype=bool)
    if is_sm:
        frozen = np.zeros(n, dtype=bool)
        for code, temp in (
            ("D01", _insitu_soil_temperature(ctx, meta, tt)),
            ("D02", _daily_lookup(ctx.ancillary.get("t2m"), meta["station"], s.day)),
            ("D03", _daily_lookup(ctx.ancillary.get("tsoil"), meta["station"], s.day)),
        ):
            if temp is not None and code == "D01":
                thawing = _near_freezing(temp, th, window=s.hours(th.frozen_reference_h))
            if temp is not None and code in ctx.wanted:
                cold = (_frozen(x, temp, th, window=s.hours(th.frozen_reference_h)) if code == "D01"
                        else temp < th.freezing_point)
                s.put(ctx, code, cold)
                frozen |= cold
        # freezing and thawing hours next to a frozen spell are left out of the later tests
        # (not flagged): a reading collapsing or recovering there is no sensor fault
        buffer = s.hours(th.frozen_buffer_h)
        starts, stops = k.run_bounds(frozen)
        x[k.runs_mask(n, starts - buffer, stops + buffer)] = np.nan

    # short gaps are closed so that a missing record does not cut an event in two
    s.keep = k.close_short_gaps(x, th.max_gap_samples)
    s.x, s.day, s.tt, s.thawing = x[s.keep], s.day[s.keep], tt[s.keep], thawing[s.keep]
    x = s.x

    # 2. constancy: saturated plateaus, then stuck values
    if is_sm and "D10" in ctx.wanted:
        sat = meta["saturation"]
        reference = sat if np.isfinite(sat) else (np.nanmax(x) if np.isfinite(x).any() else np.nan)
        w = s.hours(th.plateau_window_h)
        # calmer than the paper's 5e-6 when the sensor's own noise is larger: a plateau
        # must be flatter than the noise (white noise has var(d2) = 6 var(x))
        noise_var = (th.plateau_noise_frac * k.robust_sd(k.derivatives(x)[1])) ** 2 / 6.0
        plateau = k.flag_plateaus(x, window=w, max_var=min(th.plateau_max_var, noise_var),
                                  min_rise=th.plateau_min_rise * s.step_h,
                                  search=w, level=th.plateau_level, reference=reference)
        s.put(ctx, "D10", plateau)
        x[plateau] = np.nan
    if "S01" in ctx.wanted or "D09" in ctx.wanted:
        tol = th.flat_tolerance_sm if is_sm else th.flat_tolerance_st
        flat = k.flag_flatlines(x, min_length=s.hours(th.flat_min_h), tolerance=tol)
        # a stuck value reached by a fall is Dorigo et al.'s "low constant values after a drop"
        after_drop = np.zeros_like(flat)
        if is_sm:
            starts, stops = k.run_bounds(flat)
            before = x[np.clip(starts - 1, 0, None)]
            fall = before - x[starts]
            fell = (starts > 0) & (fall > th.step_sm_min) & (fall > th.step_sm_rel * before)
            after_drop = k.runs_mask(x.size, starts[fell], stops[fell])
        s.put(ctx, "D09", after_drop)
        s.put(ctx, "S01", flat & ~after_drop)
        x[flat] = np.nan

    # 3. noise bursts
    if "S02" in ctx.wanted:
        noisy = k.flag_noise_bursts(x, window=s.hours(th.noise_window_h), factor=th.noise_factor,
                                    min_length=s.hours(th.noise_min_h),
                                    floor=th.noise_floor_sm if is_sm else th.noise_floor_st,
                                    min_sign_changes=th.noise_sign_changes)
        s.put(ctx, "S02", noisy)
        x[noisy] = np.nan
    return s


def _detect_steps(ctx: _Context, s: _Series) -> None:
    th = ctx.th
    is_sm = s.meta["variable"] == "sm"
    s.steps = k.detect_steps(
        s.x, half_window=s.hours(th.spike_half_window_h),
        min_size=th.step_sm_min if is_sm else th.step_st_min,
        rel_size=th.step_sm_rel if is_sm else 0.0,
        trend_factor=th.step_trend_factor if is_sm else th.step_st_trend_factor,
        symmetry_tol=th.step_symmetry_tol,
        noise_k=th.step_noise_k if is_sm else th.step_st_noise_k,
    )
    _, d2 = k.derivatives(s.x)
    s.delta = (k.shift(d2, 1) - d2) / 2.0
    s.sigma = k.robust_sd(s.delta)
    # a step leaves side lobes of half its size and the opposite sign next to it
    s.delta_peak = k.shift_peaks(s.delta, 1)
    if th.shift_noise_k > 0:
        # shifts too small for the four-sample test, away from any step it found
        m = s.hours(th.shift_half_window_h)
        s.shift_est = k.level_shift_estimate(s.x, half_window=m, degree=th.shift_degree)
        s.shift_sigma = k.robust_sd(s.shift_est)
        s.shift_peak = k.shift_peaks(s.shift_est, m)
        shifts = k.detect_level_shifts(s.shift_est, half_window=m, min_size=th.step_sm_min if is_sm else th.step_st_min,
                                       noise_k=th.shift_noise_k)
        near = k.runs_mask(s.x.size, np.flatnonzero(s.steps) - m, np.flatnonzero(s.steps) + m + 1)
        s.from_shift = (shifts != 0) & ~near
        s.steps = np.where(s.from_shift, shifts, s.steps)


def _drop_coherent_steps(group: list[_Series], th: QCThresholds) -> None:
    """Remove steps that a nearby sensor of the same station makes at the same time.

    A neighbour (centre within ``step_coherent_depth`` cm) shares a step when, within
    one sample, one of its step statistics (the four-sample ``delta`` or the
    regression estimate, each at its own peaks only) has the same sign, exceeds
    ``step_coherent_k`` of its robust standard deviations and at least
    ``step_coherent_frac`` of the step.
    """
    if th.step_coherent_k <= 0:
        return
    by_station: dict[str, list[_Series]] = {}
    for s in group:
        by_station.setdefault(s.meta["station"], []).append(s)
    for members in by_station.values():
        if len(members) < 2:
            continue
        for s in members:
            at = np.flatnonzero(s.steps)
            if at.size == 0:
                continue
            when, sign = s.tt[at], np.sign(s.steps[at])
            shared = np.zeros(at.size, dtype=bool)
            centre = (s.meta["top"] + s.meta["bottom"]) / 2.0
            size = np.abs(s.steps[at])
            for other in members:
                depth = (other.meta["top"] + other.meta["bottom"]) / 2.0
                if other is s or other.tt.size < 2 or abs(depth - centre) > th.step_coherent_depth:
                    continue
                reach = max(s.step_h, other.step_h) * _HOUR_NS
                j = np.clip(np.searchsorted(other.tt, when), 1, other.tt.size - 1)
                for cand in (j - 1, j):  # the two samples around each step time
                    close = np.abs(other.tt[cand] - when) <= reach
                    # the neighbour's own steps (peaks of its statistics, not their side lobes)
                    for d, sd in ((other.delta_peak[cand], other.sigma),
                                  (_at(other.shift_peak, cand), other.shift_sigma)):
                        with np.errstate(invalid="ignore"):
                            shared |= (close & (np.sign(d) == sign) & (np.abs(d) > th.step_coherent_k * sd)
                                       & (np.abs(d) >= th.step_coherent_frac * size))
            s.steps[at[shared]] = 0.0


def _at(v: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``v[i]``, NaN where ``v`` is empty (a statistic that was not computed)."""
    return v[i] if v.size else np.full(i.shape, np.nan)


def _finish(ctx: _Context, s: _Series) -> None:
    """Excursions, breaks, single-sample spikes and rises without rain."""
    th = ctx.th
    x = s.x
    is_sm = s.meta["variable"] == "sm"
    rain = _rain_two_days(ctx, s.meta["station"], s.day)
    excursion, spikes = _excursions_and_breaks(ctx, s, rain)
    x[excursion] = np.nan
    s.put(ctx, "D06", spikes)
    x[spikes] = np.nan

    # soil moisture rising without rain (surface sensors)
    code = ctx.rain_code
    if is_sm and rain is not None and code in ctx.wanted and s.meta["bottom"] <= th.rain_max_depth:
        # a rise must stand out of the noise: noise_k sd of a difference of two samples
        noise_sd = k.robust_sd(k.derivatives(x)[1]) / np.sqrt(6.0)
        s.put(ctx, code, k.flag_rise_without_rain(
            x, rain, lag=s.hours(th.rain_lag_h), min_rain=th.rain_min,
            min_rise=th.rain_noise_k * np.sqrt(2.0) * noise_sd))


def _single_spikes(th: QCThresholds, x: np.ndarray, is_sm: bool, half: int) -> np.ndarray:
    """Single-sample spikes: Dorigo et al. (2013) for soil moisture, a robust peak test for soil temperature."""
    if is_sm:
        return k.flag_spikes_dorigo(x, half_window=half, rel_change=th.spike_rel_change, symmetry=th.spike_symmetry,
                                    rel_var=th.spike_rel_var, noise_k=th.spike_noise_k)
    return k.flag_spikes_robust(x, half_window=half, min_size=th.spike_st_min, k=th.spike_st_k)


def _excursions_and_breaks(
    ctx: _Context, s: _Series, rain: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Pair steps into excursions; flag them and the unpaired breaks.

    Returns the excursion mask and the single-sample spikes among the other
    values; a step into or out of such a spike is its edge, not a break.
    """
    th = ctx.th
    x, steps, step_h = s.x, s.steps, s.step_h
    is_sm = s.meta["variable"] == "sm"
    # excursions up to a spike's length are spikes (Dorigo et al. 2013 count two-sample
    # peaks too), falls undone within drop_max_h are drops, and level shifts last at
    # least shift_min_h; in between, steps stay unpaired (a day-long rise and fall is weather)
    spike_len = max(th.spike_max_samples, int(np.floor(th.spike_max_h / step_h + 1e-9)))
    drop_len = int(np.floor(th.drop_max_h / step_h + 1e-9))
    starts, stops = k.pair_steps(
        steps, max_gap=max(1, round(th.shift_max_days * 24.0 / step_h)), tolerance=th.pair_tolerance,
        abs_tolerance=th.pair_noise_k * k.robust_sd(k.derivatives(x)[1]),
        short_up=spike_len, short_down=drop_len, min_long=int(np.ceil(th.shift_min_h / step_h - 1e-9)),
        valid=np.isfinite(x), min_valid=th.pair_min_valid, long_only=s.from_shift,
    )
    n = x.size
    length = stops - starts
    negative = steps[starts] < 0
    spike = ~negative & (length <= spike_len)
    drop = negative & (length <= drop_len)
    shifted = ~spike & ~drop
    if th.break_persist_frac > 0:
        # a shifted segment moves the level: the day-long medians change at both ends
        window = s.hours(th.break_persist_h)
        shifted &= _holds(x, steps, starts, window, th.break_persist_frac)
        shifted &= _holds(x, steps, stops, window, th.break_persist_frac)
        keep = spike | drop | shifted
        starts, stops, length, spike, drop, shifted = (v[keep] for v in (starts, stops, length, spike, drop, shifted))
    masks = {code: k.runs_mask(n, starts[sel], stops[sel]) for code, sel in
             (("D06", spike), ("S04", drop), ("S03", shifted))}
    for code, mask in masks.items():
        s.put(ctx, code, mask)
    excursion = masks["D06"] | masks["S04"] | masks["S03"]
    spikes = _single_spikes(th, np.where(excursion, np.nan, x), is_sm, s.hours(th.spike_half_window_h))
    paired = np.zeros(n, dtype=bool)
    paired[starts] = True
    paired[stops] = True
    lone_min = th.step_sm_min if is_sm else th.step_st_lone_min
    # a step into or out of a value another check flagged (a spike, a drop, a noise
    # burst, a frozen spell) is that fault's edge, not a break
    flagged = spikes | (s.flags[s.keep] != 0)
    edge = flagged | k.shift(flagged, 1, False) | k.shift(flagged, -1, False)
    lone = (steps != 0) & ~paired & (np.abs(steps) > lone_min) & ~edge
    if th.break_persist_frac > 0:
        # a break changes the level for good: the day-long medians either side differ
        at = np.flatnonzero(lone)
        lone[at[~_holds(x, steps, at, s.hours(th.break_persist_h), th.break_persist_frac)]] = False
    if th.break_short_frac > 0:
        # ... and at once: the level just after the step is not back where it was
        at = np.flatnonzero(lone)
        lone[at[~_holds(x, steps, at, s.hours(th.break_short_h), th.break_short_frac)]] = False
    if is_sm and rain is not None:
        # wetting fronts: an unpaired rise after rain is natural, not a break
        lone &= ~((steps > 0) & (rain >= th.rain_min))
    # thaw: liquid water returns when the soil at the sensor warms through 0 degC
    lone &= ~((steps > 0) & s.thawing)
    s.put(ctx, "D07", lone & (steps < 0))
    s.put(ctx, "D08", lone & (steps > 0))
    if is_sm and "D09" in ctx.wanted:
        drop_at = (lone & (steps < 0)) | k.runs_mask(n, starts[drop], np.minimum(starts[drop] + 1, n))
        s.put(ctx, "D09", k.flag_low_after_drop(x, drop_at, window=s.hours(th.low_after_drop_h),
                                                max_rel_var=th.low_after_drop_rel_var))
    return excursion, spikes


def _holds(x: np.ndarray, steps: np.ndarray, at: np.ndarray, window: int, frac: float) -> np.ndarray:
    """Whether the median level over ``window`` samples changes at ``at`` by ``frac`` of the step, same sign.

    A diurnal wave whose amplitude changes, a spike or a noisy spell makes steps
    that leave the day-long median where it was; a level shift moves it.
    """
    change = k.level_change(x, at, window)
    with np.errstate(invalid="ignore"):
        return (np.sign(change) == np.sign(steps[at])) & (np.abs(change) >= frac * np.abs(steps[at]))


# ---------------------------------------------------------------------- ancillary
def _frozen(x: np.ndarray, temp: np.ndarray, th: QCThresholds, *, window: int) -> np.ndarray:
    """Frozen soil from in-situ soil temperature, with soil moisture deciding near 0 degC.

    Below ``freezing_point - frozen_margin`` the soil is frozen (Dorigo et al. 2013,
    D01). Within ``frozen_margin`` of the freezing point a temperature sensor's own
    error (a kelvin or so) decides, so there the reading must also have collapsed
    below ``frozen_collapse`` times the unfrozen level: the median of the readings
    over ``window`` samples while the soil was clearly above freezing, carried
    forward into a cold spell (backward for a spell at the start). Freezing turns
    liquid water into ice, which a dielectric sensor does not see.
    """
    clear = temp < th.freezing_point - th.frozen_margin
    near = np.abs(temp - th.freezing_point) <= th.frozen_margin
    if not near.any():
        return clear
    warm = np.where(temp > th.freezing_point + th.frozen_margin, x, np.nan)
    level = pd.Series(warm).rolling(window, min_periods=1).median().ffill().bfill().to_numpy()
    with np.errstate(invalid="ignore"):
        collapsed = x < th.frozen_collapse * level
    return clear | (near & collapsed)


def _near_freezing(temp: np.ndarray, th: QCThresholds, *, window: int) -> np.ndarray:
    """Samples whose in-situ soil temperature was at most ``frozen_margin`` above 0 degC within ``window``."""
    with np.errstate(invalid="ignore"):
        cold = (temp <= th.freezing_point + th.frozen_margin).astype("float64")
    return pd.Series(cold).rolling(window, min_periods=1).max().to_numpy() > 0


def _rain_two_days(ctx: _Context, station: str, day: np.ndarray) -> np.ndarray | None:
    """Rain (mm) of the day and the day before: daily totals cover any 24 h window ending that day."""
    today = _daily_lookup(ctx.ancillary.get("rain"), station, day)
    if today is None:
        return None
    before = _daily_lookup(ctx.ancillary.get("rain"), station, day - 1)
    return np.nan_to_num(today) + np.nan_to_num(before) if before is not None else today


def _insitu_soil_temperature(ctx: _Context, meta: Mapping[str, Any], tt: np.ndarray) -> np.ndarray | None:
    """In-situ soil temperature of the same station at the nearest depth, on the times ``tt``."""
    candidates = meta["st"]
    if not candidates:
        return None
    centre = (meta["top"] + meta["bottom"]) / 2.0
    depth, r0, r1 = min(candidates, key=lambda c: abs(c[0] - centre))
    if abs(depth - centre) > ctx.th.st_depth_tolerance or r1 - r0 < 2:
        return None
    st_t = ctx.times[r0:r1]
    st_v = np.where((ctx.premask[r0:r1] | ctx.flags[r0:r1]) == 0, ctx.values[r0:r1], np.nan)
    j = np.clip(np.searchsorted(st_t, tt), 1, st_t.size - 1)
    nearest = np.where(np.abs(tt - st_t[j - 1]) <= np.abs(st_t[j] - tt), j - 1, j)
    ok = np.abs(st_t[nearest] - tt) <= ctx.th.st_time_tolerance_h * _HOUR_NS
    return np.where(ok, st_v[nearest], np.nan)

