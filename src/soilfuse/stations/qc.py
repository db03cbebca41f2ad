"""Quality control of station soil moisture and soil temperature, ISMN style.

:func:`run_qc` adds a ``qc_flag`` column to an observation table: ``"G"`` for a
value that passed every check, else the comma-joined codes of the checks it failed
(``"D06"``, ``"C03,D10"``), registered in :data:`QC_FLAGS`. The checks follow the
automated quality control of the International Soil Moisture Network (Dorigo et
al. 2013, Vadose Zone J. 12(3), "Global automated quality control of in situ soil
moisture data from the International Soil Moisture Network"): ranges (C01-C03),
frozen conditions from in-situ and gridded temperatures (D01-D03), soil moisture
rising without rain (D04 station rain, D05 gridded rain), spikes (D06), negative
and positive breaks (D07, D08), low constant values after a drop (D09) and
saturated plateaus (D10), with the paper's derivative-based criteria. soilfuse adds
stuck-sensor flat-lines (S01), noise bursts (S02), level-shifted segments between a
break and its reversal (S03), short drops such as a lost contact (S04), and
range/spike/step checks for soil temperature. Thresholds are fields of
:class:`QCThresholds`: the paper's values converted to m3 m-3 where it gives them,
the others calibrated on the synthetic twin's injected faults.

The checks run in order, each on the values no earlier group flagged: hard ranges,
then frozen soil, then constancy (plateaus, flat-lines), then noise bursts, then
steps and the excursions they bound, then single-sample spikes, so that a value is
explained by its most specific fault and a known-bad value does not create spurious
spikes or breaks next to it. :data:`FAULT_PRIORITY` ranks the fault classes for
:func:`fault_class`. Soil temperature is checked first, and only its good values
serve the frozen-soil test of soil moisture.

How the tests work (all per series, on a regular axis at the series' own sampling
interval; gaps of up to three samples are closed):

* steps: an abrupt change whose second derivatives just before and at it are of
  opposite sign and equal size (Dorigo et al.'s break criterion, with a tolerance
  for noisy hourly data), larger than the noise and than ten times the robust
  (median) slope around it. Shifts too small for that four-sample test are found
  by a two-sided regression step test (step plus a local cubic over 6 h either
  side), significant at 4.5 robust standard deviations of its own estimate. A
  step that a sensor within 15 cm of the same station makes at the same time (at
  least a quarter of the size, 4 sd of that sensor) is a change of the soil and
  dropped;
* excursions: a step and a later opposite step of similar size bound an excursion:
  up and at most two samples (or 1 h) long is a spike, down and at most 24 h long a
  drop, at least 48 h long a shifted segment (a temporary level shift); steps of
  the regression test only bound shifted segments. Unpaired steps are breaks (not
  at the edge of a single-sample spike; for soil moisture, not when it rained or
  the soil was thawing). A break, and each end
  of a shifted segment, must move the level: the medians of the 24 h either side
  differ by at least a quarter of the step, in its direction;
* frozen soil: in-situ soil temperature clearly below 0 degC, or within 1.5 K of it
  while the moisture reading has collapsed below 60 % of its surroundings (the
  sensor's own error decides near 0 degC);
* noise bursts: loud high-frequency variation whose successive changes alternate in
  sign like noise, not like rain pulses or a diurnal cycle.

:func:`apply_qc` then drops flagged values and can refill them by linear
interpolation from usable values at most five days away on both sides (Li et al.
2022), appending ``R01`` to their ``qc_flag``.

Usage
-----
>>> import numpy as np, pandas as pd
>>> t = pd.date_range("2019-05-01", periods=72, freq="h")
>>> v = 0.25 + 0.002 * np.sin(np.arange(72) / 4.0)
>>> v[30] += 0.15                                   # a spike
>>> obs = pd.DataFrame({"station_id": "A", "time": t, "depth_from": 0.0, "depth_to": 5.0,
...                     "variable": "sm", "value": v, "flag": "G"})
>>> out = run_qc(obs)
>>> out.loc[out["qc_flag"] != "G", ["time", "qc_flag"]].astype(str).values.tolist()
[['2019-05-02 06:00:00', 'D06']]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.exceptions import ConfigError, DataError
from soilfuse.grid import Grid
from soilfuse.io.stations import StationData, as_string, normalise_observations
from soilfuse.stations import _qc_series
from soilfuse.stations.ingest import DEFAULT_GOOD_FLAGS, SERIES_KEYS, usable_mask
from soilfuse.variables import convert_units

__all__ = [
    "FAULT_PRIORITY",
    "QC_FLAGS",
    "QCFlag",
    "QCThresholds",
    "apply_qc",
    "fault_class",
    "has_flag",
    "run_qc",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QCFlag:
    """A quality-control flag: code, what it tests, and the fault class it reveals.

    Attributes
    ----------
    code : str
        Code written to ``qc_flag`` (ISMN codes where ISMN defines the test).
    name : str
        Short name.
    variables : tuple of str
        Variables the check applies to.
    fault : str or None
        Fault class (:data:`FAULT_PRIORITY`); None for provenance codes.
    description : str
        The criterion, with units.
    """

    code: str
    name: str
    variables: tuple[str, ...]
    fault: str | None
    description: str


_FLAG_LIST = [
    QCFlag("C01", "below_range", ("sm", "st"), "range",
           "sm < 0 m3 m-3; st < 213.15 K (-60 degC)"),
    QCFlag("C02", "above_range", ("sm", "st"), "range",
           "sm > 0.6 m3 m-3; st > 333.15 K (60 degC)"),
    QCFlag("C03", "above_saturation", ("sm",), "range",
           "sm above the station's saturation (porosity) from the station table"),
    QCFlag("D01", "frozen_insitu_soil", ("sm",), "frozen",
           "in-situ soil temperature at the nearest depth (within 10 cm, 1 h) below 271.65 K, or within "
           "1.5 K of 273.15 K while the reading is below 60 % of its last unfrozen 24 h median"),
    QCFlag("D02", "frozen_air", ("sm",), "frozen",
           "daily mean air temperature at the station below 273.15 K"),
    QCFlag("D03", "frozen_reference_soil", ("sm",), "frozen",
           "daily reference (gridded) soil temperature at the station below 273.15 K"),
    QCFlag("D04", "rise_without_station_rain", ("sm",), "rise_without_rain",
           "sm rises (1 sample and 24 h by > 2 sd) with < 0.2 mm station rain in 24 h; sensors <= 10 cm"),
    QCFlag("D05", "rise_without_gridded_rain", ("sm",), "rise_without_rain",
           "as D04 with gridded precipitation at the station cell"),
    QCFlag("D06", "spike", ("sm", "st"), "spike",
           "isolated peak: Dorigo et al. (2013) eqs. 4-6 plus a noise floor for sm, a robust peak test "
           "for st, or an upward excursion between opposite steps of at most 2 samples or 1 h"),
    QCFlag("D07", "negative_break", ("sm", "st"), "break",
           "abrupt fall not undone later (Dorigo et al. 2013 eqs. 7-9, relaxed symmetry, robust trend) "
           "that lowers the 24 h median level; st: > 5 K"),
    QCFlag("D08", "positive_break", ("sm", "st"), "break",
           "abrupt rise not undone later that raises the 24 h median level and, for sm, without rain "
           "that day or the day before and not while thawing (in-situ st <= 274.65 K within 24 h); "
           "st: > 5 K"),
    QCFlag("D09", "low_constant_after_drop", ("sm",), "flatline",
           "variance/mean < 1e-5 over 13 h starting at a negative break (Dorigo et al. 2013 eq. 14), "
           "or a stuck value reached by a fall"),
    QCFlag("D10", "saturated_plateau", ("sm",), "plateau",
           "12 h variance <= 5e-6, entered by a rise >= 0.0025 m3 m-3 h-1, left by a fall, mean "
           ">= 95 % of saturation (or of the series maximum) (Dorigo et al. 2013 eqs. 10-13)"),
    QCFlag("S01", "flat_line", ("sm", "st"), "flatline",
           "the same value repeated for at least 24 h (stuck sensor)"),
    QCFlag("S02", "noise_burst", ("sm", "st"), "noise_burst",
           "rolling median |second derivative| over 12 h more than 4 times the series' median, with "
           "changes alternating in sign like noise for >= 6 h"),
    QCFlag("S03", "shifted_segment", ("sm", "st"), "break",
           "values between a break and the opposite break that undoes it 48 h to 21 days later (breaks "
           "also from a two-sided regression step test: cubic background over 6 h a side)"),
    QCFlag("S04", "short_drop", ("sm", "st"), "drop",
           "values of a fall undone within 24 h (e.g. lost sensor contact)"),
    QCFlag("R01", "refilled", ("sm", "st"), None,
           "value replaced by linear interpolation between usable values at most 5 days away"),
]

#: Registry of quality-control flags by code (tests iterate over it).
QC_FLAGS: Mapping[str, QCFlag] = {f.code: f for f in _FLAG_LIST}

#: Fault classes from most to least specific; :func:`fault_class` picks the first found.
FAULT_PRIORITY: tuple[str, ...] = (
    "frozen", "plateau", "flatline", "noise_burst", "spike", "drop", "break",
    "rise_without_rain", "range",
)

_BIT = {code: np.uint32(1 << i) for i, code in enumerate(QC_FLAGS)}


@dataclass(frozen=True)
class QCThresholds:
    """Thresholds of the checks (canonical units: m3 m-3, K, hours, cm, mm).

    Defaults are the values of Dorigo et al. (2013) converted from % vol to m3 m-3
    where the paper gives them (range, spike, break, plateau, D09, rain), and values
    calibrated on the synthetic twin's injected faults otherwise (soil temperature
    steps and spikes, flat-lines, noise bursts, excursion pairing, symmetry
    tolerance of breaks).

    The level-shift fields: ``shift_half_window_h`` (h) and ``shift_degree`` set
    the window either side of a step and the degree of the local polynomial
    background of the regression step test; ``shift_noise_k`` its significance in
    robust standard deviations of its own estimate (0 turns the test off);
    ``break_persist_frac`` the share of a step by which the median level over
    ``break_persist_h`` hours either side must move for a break or a shifted
    segment's end (0 turns the check off), and ``break_short_frac`` the share by
    which the median over ``break_short_h`` hours either side must move for an
    unpaired break (a dip that recovers within hours is noise, not a break; 0 turns
    it off); ``step_coherent_k`` the significance (in
    the neighbour's robust sd) of a concurrent step at a sensor within
    ``step_coherent_depth`` cm that makes a step a change of the soil.
    """

    sm_min: float = 0.0
    sm_max: float = 0.6
    st_min: float = 213.15
    st_max: float = 333.15
    saturation_margin: float = 0.0
    freezing_point: float = 273.15
    frozen_margin: float = 1.5
    frozen_collapse: float = 0.6
    frozen_reference_h: float = 24.0
    frozen_buffer_h: float = 3.0
    st_depth_tolerance: float = 10.0
    st_time_tolerance_h: float = 1.0
    max_gap_samples: int = 3
    spike_rel_change: float = 0.15
    spike_symmetry: tuple[float, float] = (0.8, 1.2)
    spike_rel_var: float = 0.01
    spike_noise_k: float = 4.0
    spike_half_window_h: float = 12.0
    spike_st_min: float = 3.0
    spike_st_k: float = 6.0
    spike_max_h: float = 1.0
    spike_max_samples: int = 2
    step_sm_min: float = 0.01
    step_sm_rel: float = 0.1
    step_st_min: float = 1.5
    step_st_lone_min: float = 5.0
    step_trend_factor: float = 10.0
    step_st_trend_factor: float = 0.0
    step_symmetry_tol: float = 0.35
    step_noise_k: float = 4.0
    step_st_noise_k: float = 4.0
    step_coherent_k: float = 4.0
    step_coherent_depth: float = 15.0
    step_coherent_frac: float = 0.25
    shift_half_window_h: float = 6.0
    shift_degree: int = 3
    shift_noise_k: float = 4.5
    break_persist_frac: float = 0.25
    break_persist_h: float = 24.0
    break_short_frac: float = 0.5
    break_short_h: float = 3.0
    pair_tolerance: float = 0.3
    pair_noise_k: float = 2.0
    shift_min_h: float = 48.0
    pair_min_valid: float = 0.8
    drop_max_h: float = 24.0
    shift_max_days: float = 21.0
    flat_min_h: float = 24.0
    flat_tolerance_sm: float = 0.0
    flat_tolerance_st: float = 0.0
    plateau_window_h: float = 12.0
    plateau_max_var: float = 5e-6
    plateau_noise_frac: float = 0.3
    plateau_min_rise: float = 0.0025
    plateau_level: float = 0.95
    low_after_drop_h: float = 13.0
    low_after_drop_rel_var: float = 1e-5
    noise_window_h: float = 12.0
    noise_factor: float = 4.0
    noise_min_h: float = 6.0
    noise_floor_sm: float = 0.002
    noise_floor_st: float = 0.2
    noise_sign_changes: float = 0.55
    rain_min: float = 0.2
    rain_noise_k: float = 4.0
    rain_lag_h: float = 24.0
    rain_max_depth: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
                msg = f"QC threshold {f.name} must be a finite number; got {value!r}."
                raise ConfigError(msg)
        for name in ("spike_half_window_h", "flat_min_h", "plateau_window_h", "noise_window_h", "rain_lag_h",
                     "shift_half_window_h", "break_persist_h", "break_short_h"):
            if getattr(self, name) <= 0:
                msg = f"QC window {name} must be positive (hours); got {getattr(self, name)}."
                raise ConfigError(msg)


# ---------------------------------------------------------------------- helpers
def has_flag(qc_flag: pd.Series, code: str) -> np.ndarray:
    """Boolean mask of the rows whose ``qc_flag`` contains ``code``."""
    if code not in QC_FLAGS and code != "G":
        msg = f"Unknown QC code {code!r}; known codes: {list(QC_FLAGS)}."
        raise DataError(msg)
    text = "," + qc_flag.astype(str) + ","
    return text.str.contains("," + code + ",", regex=False).to_numpy(dtype=bool)


def fault_class(qc_flag: pd.Series) -> pd.Series:
    """The most specific fault class (:data:`FAULT_PRIORITY`) of each ``qc_flag``, ``""`` if none."""
    out = pd.Series("", index=qc_flag.index, dtype="string")
    unset = np.ones(len(qc_flag), dtype=bool)
    for fault in FAULT_PRIORITY:
        codes = [c for c, f in QC_FLAGS.items() if f.fault == fault]
        hit = np.zeros(len(qc_flag), dtype=bool)
        for code in codes:
            hit |= has_flag(qc_flag, code)
        out[hit & unset] = fault
        unset &= ~hit
    return out


def _mask_to_text(mask: np.ndarray) -> pd.Series:
    """Comma-joined codes of every bit mask ("G" for 0), one string per distinct mask."""
    inverse, uniq = pd.factorize(mask)  # hashing: no sort of the whole table
    labels = []
    for m in uniq:  # one label per distinct combination, not per value
        codes = [c for c, b in _BIT.items() if m & b]
        labels.append(",".join(codes) if codes else "G")
    return as_string(pd.Series(pd.Categorical.from_codes(inverse, labels)))


# ---------------------------------------------------------------------- ancillary data
def _daily_table(
    source: pd.DataFrame | xr.DataArray | xr.Dataset | None,
    stations: pd.DataFrame,
    grid: Grid | None,
    *,
    name: str,
    units: str,
) -> pd.DataFrame | None:
    """Station x day table (index: day, columns: station_id) from a table or a grid."""
    if source is None:
        return None
    if isinstance(source, pd.DataFrame):
        table = source.copy()
        table.index = pd.DatetimeIndex(table.index).floor("D")
        table.columns = table.columns.astype(str)
        return table.groupby(level=0).mean()
    da = source[name] if isinstance(source, xr.Dataset) else source
    if "units" in da.attrs:
        da = convert_units(da, units, name=name)
    for dim in ("time", "y", "x"):
        if dim not in da.dims:
            msg = f"Gridded {name} needs dims (time, y, x); got {da.dims}. Canonicalize it first."
            raise DataError(msg)
    g = grid if grid is not None else Grid.from_dataset(da)
    rows, cols = g.index(stations["lon"].to_numpy(), stations["lat"].to_numpy(), crs="EPSG:4326")
    inside = rows >= 0
    values = np.full((da.sizes["time"], len(stations)), np.nan)
    if inside.any():
        picked = da.isel(y=xr.DataArray(rows[inside], dims="station"),
                         x=xr.DataArray(cols[inside], dims="station")).transpose("time", "station")
        values[:, inside] = np.asarray(picked.values, dtype="float64")  # small: stations x days
    index = pd.DatetimeIndex(da["time"].values).floor("D")
    table = pd.DataFrame(values, index=index, columns=stations["station_id"].astype(str).to_numpy())
    return table.groupby(level=0).mean()


# ---------------------------------------------------------------------- main entry
def run_qc(
    data: StationData | pd.DataFrame,
    *,
    stations: pd.DataFrame | None = None,
    precipitation: pd.DataFrame | xr.DataArray | xr.Dataset | None = None,
    air_temperature: pd.DataFrame | xr.DataArray | xr.Dataset | None = None,
    soil_temperature: pd.DataFrame | xr.DataArray | xr.Dataset | None = None,
    grid: Grid | None = None,
    thresholds: QCThresholds | None = None,
    checks: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Flag every value of an observation table; add a ``qc_flag`` column.

    Parameters
    ----------
    data : StationData or pandas.DataFrame
        Sub-daily observations (long format); a bare table needs ``stations`` for
        saturation and for gridded ancillary data.
    stations : pandas.DataFrame, optional
        Station metadata when ``data`` is a table (``lat``, ``lon``, optional
        ``saturation`` in m3 m-3).
    precipitation : DataFrame or DataArray, optional
        Daily precipitation (mm day-1): a table indexed by day with one column per
        station id (flag D04), or a gridded ``(time, y, x)`` DataArray (flag D05).
    air_temperature : DataFrame or DataArray, optional
        Daily mean 2 m air temperature (K), same two forms (flag D02).
    soil_temperature : DataFrame or DataArray, optional
        Daily reference soil temperature near the surface (K), e.g. ERA5-Land
        ``stl1`` (flag D03). In-situ ``st`` observations of the same station are
        used automatically (flag D01).
    grid : Grid, optional
        Grid of the gridded inputs; read from them when omitted.
    thresholds : QCThresholds, optional
    checks : iterable of str, optional
        Codes to run (default: all that the inputs allow).

    Returns
    -------
    pandas.DataFrame
        The observations (normalised, sorted) with a ``qc_flag`` string column.

    Raises
    ------
    DataError
        If a code in ``checks`` is unknown or ancillary data are malformed.
    """
    th = thresholds or QCThresholds()
    wanted = set(QC_FLAGS) if checks is None else set(checks)
    unknown = wanted - set(QC_FLAGS)
    if unknown:
        msg = f"Unknown QC checks {sorted(unknown)}; known codes: {list(QC_FLAGS)}."
        raise DataError(msg)
    if isinstance(data, StationData):
        obs, meta = data.observations, data.stations
    else:
        obs = normalise_observations(data)
        meta = stations
    ancillary = {
        "rain": _daily_table(precipitation, _need(meta, precipitation, "precipitation"), grid,
                             name="tp", units="mm day-1"),
        "t2m": _daily_table(air_temperature, _need(meta, air_temperature, "air_temperature"), grid,
                            name="t2m", units="K"),
        "tsoil": _daily_table(soil_temperature, _need(meta, soil_temperature, "soil_temperature"), grid,
                              name="st", units="K"),
    }
    rain_code = "D04" if isinstance(precipitation, pd.DataFrame) else "D05"
    saturation = _saturation(obs, meta)
    mask = _range_mask(obs, saturation, th, wanted)
    # values outside the hard ranges are left out of the temporal checks; values above
    # the (uncertain) saturation estimate stay in, so that a spike above it is a spike
    hard = mask & (_BIT["C01"] | _BIT["C02"])
    mask |= _qc_series.series_flags(
        obs, hard, saturation=saturation, ancillary=ancillary, rain_code=rain_code,
        thresholds=th, wanted=wanted, bits=_BIT,
    )
    obs = obs.assign(qc_flag=_mask_to_text(mask).to_numpy())
    n_bad = int((mask != 0).sum())
    logger.info("QC: %d of %d values flagged (%.2f %%)", n_bad, mask.size, 100.0 * n_bad / max(mask.size, 1))
    return obs


def _need(meta: pd.DataFrame | None, source: Any, name: str) -> pd.DataFrame:
    if source is None or isinstance(source, pd.DataFrame):
        return meta if meta is not None else pd.DataFrame({"station_id": [], "lat": [], "lon": []})
    if meta is None:
        msg = f"Gridded {name} needs station coordinates: pass a StationData or stations=<metadata table>."
        raise DataError(msg)
    return meta


def _saturation(obs: pd.DataFrame, meta: pd.DataFrame | None) -> np.ndarray:
    """Saturation (m3 m-3) of each row's station; NaN where unknown."""
    if meta is None or "saturation" not in meta.columns:
        return np.full(len(obs), np.nan)
    lookup = pd.Series(meta["saturation"].to_numpy(dtype="float64"), index=meta["station_id"].astype(str))
    codes, names = pd.factorize(obs["station_id"])
    per_station = lookup.reindex([str(v) for v in names]).to_numpy(dtype="float64")
    return per_station[codes]


def _range_mask(obs: pd.DataFrame, saturation: np.ndarray, th: QCThresholds, wanted: set[str]) -> np.ndarray:
    value = obs["value"].to_numpy(dtype="float64")
    is_sm = (obs["variable"] == "sm").to_numpy(dtype=bool, na_value=False)
    mask = np.zeros(len(obs), dtype="uint32")
    lo = np.where(is_sm, th.sm_min, th.st_min)
    hi = np.where(is_sm, th.sm_max, th.st_max)
    with np.errstate(invalid="ignore"):
        if "C01" in wanted:
            mask[value < lo] |= _BIT["C01"]
        if "C02" in wanted:
            mask[value > hi] |= _BIT["C02"]
        if "C03" in wanted:
            mask[is_sm & (value > saturation + th.saturation_margin)] |= _BIT["C03"]
    return mask


# ---------------------------------------------------------------------- drop and refill
def apply_qc(
    flagged: pd.DataFrame,
    *,
    refill: bool = False,
    max_gap: str | pd.Timedelta = "5D",
    good_flags: Iterable[str] = DEFAULT_GOOD_FLAGS,
) -> pd.DataFrame:
    """Drop unusable values and optionally refill them by linear interpolation in time.

    Parameters
    ----------
    flagged : pandas.DataFrame
        Output of :func:`run_qc` (needs ``qc_flag``).
    refill : bool
        Replace each dropped value by linear interpolation between the nearest
        usable values of its series before and after it, when both are at most
        ``max_gap`` away (Li et al. 2022: five days ahead and after). Its
        ``qc_flag`` gets ``R01`` appended. Values that cannot be refilled are dropped.
    max_gap : str or Timedelta
        Largest distance to each of the two anchor values.
    good_flags : iterable of str
        ISMN flags counted as usable (see :func:`~soilfuse.stations.usable_mask`).

    Returns
    -------
    pandas.DataFrame
        The usable rows (and refilled ones), same columns.

    Raises
    ------
    DataError
        If ``qc_flag`` is missing.
    """
    if "qc_flag" not in flagged.columns:
        msg = "apply_qc needs a 'qc_flag' column; run run_qc first."
        raise DataError(msg)
    ok = usable_mask(flagged, good_flags=tuple(good_flags))
    if not refill:
        return flagged[ok].reset_index(drop=True)
    out = flagged.copy()
    keys = list(SERIES_KEYS)
    series = out.groupby(keys, sort=False, observed=True).ngroup().to_numpy()
    t = out["time"].to_numpy().astype("datetime64[ns]").astype("int64").astype("float64")
    v = out["value"].to_numpy(dtype="float64")
    idx = np.arange(len(out))
    prev = np.maximum.accumulate(np.where(ok, idx, -1))
    nxt = np.minimum.accumulate(np.where(ok, idx, len(out))[::-1])[::-1]
    has_prev = (prev >= 0) & (series[np.clip(prev, 0, None)] == series)
    has_next = (nxt < len(out)) & (series[np.clip(nxt, None, len(out) - 1)] == series)
    gap = float(pd.Timedelta(max_gap).value)
    p, q = np.clip(prev, 0, None), np.clip(nxt, None, len(out) - 1)
    fillable = ~ok & has_prev & has_next & (t - t[p] <= gap) & (t[q] - t <= gap)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(t[q] > t[p], (t - t[p]) / (t[q] - t[p]), 0.0)
    filled = v[p] + w * (v[q] - v[p])
    out.loc[fillable, "value"] = filled[fillable]
    qc = out["qc_flag"].astype("string")
    refilled = qc.where(qc != "G", "").str.cat(pd.Series(",R01", index=qc.index)).str.lstrip(",")
    out["qc_flag"] = qc.where(~fillable, refilled)
    logger.info("apply_qc: %d values kept, %d refilled, %d dropped", int(ok.sum()), int(fillable.sum()),
                int((~ok & ~fillable).sum()))
    return out[ok | fillable].reset_index(drop=True)
