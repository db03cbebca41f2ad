"""In-situ station networks of the synthetic twin: placement, sensors, errors and faults.

Stations see the true soil state of the grid cell they stand in, the way real
networks do (Dorigo et al. 2013; Li et al., seed 001, for CMA soil moisture; Wang et
al., seed 000, for CMA soil temperature), with:

* an uneven density: station density grows exponentially from the west (sparse,
  plateau) to the east (dense, plains) edge of the domain by a factor
  :attr:`StationErrorModel.dense_ratio`;
* three network designs (:data:`~soilfuse.twin.observe_station_sites.NETWORKS`): ``CMA`` (soil moisture in the eight
  layers 0-10 … 90-100 cm, soil temperature at 0, 5, 10, 15, 20, 40 cm; everywhere),
  ``PLATEAU`` (point sensors at 5, 10, 20, 40 cm, Maqu-like; western third only) and
  ``SOILNET`` (0-5, 0-10 and 10-30 cm soil moisture; eastern two thirds); the last two
  are also written as ISMN files;
* per-sensor calibration offset and gain, a persistent representativeness anomaly
  plus a slow AR(1) part (sub-grid heterogeneity), white noise;
* raw sub-daily records: hourly, and 10-minute soil temperature at a subset of CMA
  stations, with a diurnal cycle whose amplitude and lag follow heat conduction
  (damping depth :data:`DAMPING_DEPTH`), zero-mean over the day so that daily means
  give back the daily state;
* gaps: random missing records and multi-week station outages;
* injected faults with a ground-truth label each (spike, drop, break, flatline,
  plateau at saturation, noise burst), separated in time so every label is
  unambiguous, plus frozen-soil readings (soil moisture collapses while the soil
  at the sensor is below 0 °C), labelled as ``frozen`` spells (frozen records less
  than a day apart belong to one spell).

Usage
-----
>>> from soilfuse.twin.observe_stations import observe_stations
>>> tables = observe_stations(world)  # doctest: +SKIP
>>> sorted(tables)  # doctest: +SKIP
['faults', 'observations', 'sensors', 'stations', 'truth']
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.signal import lfilter

from soilfuse._typing import FloatArray
from soilfuse.exceptions import ConfigError
from soilfuse.io import cf
from soilfuse.twin.observe_common import hash_normal, profile_of, profile_weights
from soilfuse.twin.observe_station_sites import NETWORKS, assign_networks, place_stations

__all__ = [
    "DAMPING_DEPTH", "FAULTS", "StationBatch", "StationErrorModel", "StationPlan",
    "faults_frame", "observe_stations", "plan_stations", "station_batches",
]

logger = logging.getLogger(__name__)

#: Damping depth (cm) of the diurnal temperature wave, sqrt(2 kappa / omega) for a
#: thermal diffusivity of about 0.5e-6 m2 s-1.
DAMPING_DEPTH = 12.0
#: Fault kinds injected into the records (``frozen`` comes from the physics instead).
FAULTS = ("spike", "drop", "break", "flatline", "plateau", "noise_burst")
_FREEZE_K = 273.15
_STREAM = {"sensor": 103, "outage": 104, "missing": 105, "fault": 106}


def _default_rates() -> dict[str, float]:
    return {"spike": 4.0, "drop": 2.0, "break": 0.7, "flatline": 1.0, "plateau": 1.0,
            "noise_burst": 1.0}


@dataclass(frozen=True)
class StationErrorModel:
    """Magnitudes and rates of station errors (defaults chosen so ISMN-style QC finds faults).

    Parameters
    ----------
    dense_ratio : float
        Station density at the east edge over the west edge (exponential in between).
    fraction_10min : float
        Share of CMA stations whose soil temperature is recorded every 10 minutes.
    sm_offset_sd, sm_gain_sd : float
        Calibration offset (m3 m-3) and gain (1) spread of soil-moisture sensors.
    st_offset_sd, st_gain_sd : float
        Same for soil temperature (K, 1); the gain acts on degrees Celsius.
    sm_repr_sd, st_repr_sd : float
        Persistent representativeness anomaly per sensor (m3 m-3, K).
    sm_repr_ar_sd, st_repr_ar_sd : float
        Standard deviation of the slow AR(1) representativeness part (m3 m-3, K).
    repr_tau_days : float
        Correlation time of that AR(1) part (days).
    sm_noise_sd, st_noise_sd : float
        White noise of each record (m3 m-3, K).
    sm_diurnal : float
        Amplitude of the temperature artefact of soil-moisture sensors at the surface
        (m3 m-3), damped with depth like the temperature wave.
    missing_rate : float
        Probability that a single record is missing.
    outages_per_year : float
        Mean number of multi-week station outages per year.
    outage_days : tuple of int
        Shortest and longest outage (days).
    fault_rates : mapping
        Events per sensor and year for each kind in :data:`FAULTS`.
    spike_sm, spike_st : float
        Spike height (m3 m-3 at least, or half the value if larger; K).
    drop_fraction : float
        During a drop soil moisture reads this fraction of its value.
    drop_st : float
        Soil-temperature drop (K, negative).
    break_sm, break_st : float
        Size of a level shift (m3 m-3, K); the sign is random.
    noise_burst_factor : float
        Noise standard deviation multiplier during a burst.
    frozen_fraction : float
        Fraction of the soil moisture a sensor reads while its soil is frozen.
    separation_days : float
        Smallest gap (days) between two labelled events on the same sensor, and between
        events and outages or frozen spells.
    """

    dense_ratio: float = 20.0
    fraction_10min: float = 0.05
    sm_offset_sd: float = 0.03
    sm_gain_sd: float = 0.06
    st_offset_sd: float = 0.8
    st_gain_sd: float = 0.03
    sm_repr_sd: float = 0.02
    st_repr_sd: float = 0.5
    sm_repr_ar_sd: float = 0.006
    st_repr_ar_sd: float = 0.3
    repr_tau_days: float = 15.0
    sm_noise_sd: float = 0.004
    st_noise_sd: float = 0.2
    sm_diurnal: float = 0.004
    missing_rate: float = 0.01
    outages_per_year: float = 1.0
    outage_days: tuple[int, int] = (7, 30)
    fault_rates: Mapping[str, float] = field(default_factory=_default_rates)
    spike_sm: float = 0.15
    spike_st: float = 10.0
    drop_fraction: float = 0.35
    drop_st: float = -8.0
    break_sm: float = 0.07
    break_st: float = 3.0
    noise_burst_factor: float = 8.0
    frozen_fraction: float = 0.3
    separation_days: float = 3.0

    def __post_init__(self) -> None:
        unknown = set(self.fault_rates) - set(FAULTS)
        if unknown:
            msg = f"Unknown fault kinds {sorted(unknown)} in fault_rates; valid kinds are {list(FAULTS)}."
            raise ConfigError(msg)
        if self.dense_ratio < 1 or not 0 <= self.fraction_10min <= 1 or self.missing_rate >= 1:
            msg = (
                f"Need dense_ratio >= 1, 0 <= fraction_10min <= 1 and missing_rate < 1; got "
                f"{self.dense_ratio}, {self.fraction_10min}, {self.missing_rate}."
            )
            raise ConfigError(msg)


# ====================================================================== main entry
@dataclass(frozen=True)
class StationPlan:
    """Stations, sensors and cell truth of a world: everything needed to simulate the records.

    Attributes
    ----------
    meta : pandas.DataFrame
        One row per station (with the ``has_sm``/``has_st`` helper columns).
    sensors : pandas.DataFrame
        One row per sensor, with its true calibration and the helper columns
        ``station_index``, ``w_sm``, ``w_st`` (depth weights).
    cells : dict
        Daily truth at the station cells (see ``_extract``).
    outages : list of numpy.ndarray
        Per station, the boolean day mask of multi-week outages.
    times : pandas.DatetimeIndex
        Days of the world.
    model : StationErrorModel
        Error magnitudes and rates.
    seed : int
        Seed of the world.
    """

    meta: pd.DataFrame
    sensors: pd.DataFrame
    cells: Mapping[str, Any]
    outages: list[np.ndarray]
    times: pd.DatetimeIndex
    model: StationErrorModel
    seed: int

    @property
    def stations(self) -> pd.DataFrame:
        """Station metadata as returned by :func:`observe_stations` (``stations``)."""
        return self.meta.drop(columns=["has_sm", "has_st"]).reset_index(drop=True)

    @property
    def sensor_table(self) -> pd.DataFrame:
        """Sensor calibration as returned by :func:`observe_stations` (``sensors``)."""
        return self.sensors.drop(columns=["station_index", "w_sm", "w_st"]).reset_index(drop=True)


@dataclass(frozen=True)
class StationBatch:
    """Simulated records of the sensors ``first .. first + len(truth) - 1`` of a :class:`StationPlan`.

    Attributes
    ----------
    first : int
        Row of the first sensor of the batch in ``StationPlan.sensors``.
    records : list of dict
        Per sensor, its raw records (``time`` in ns since 1970, ``value``, ``flag`` code).
    labels : list of dict
        Fault labels of the batch, each with its sensor's station, variable and depths.
    truth : list of numpy.ndarray
        Per sensor, its daily truth.
    """

    first: int
    records: list[dict[str, np.ndarray]]
    labels: list[dict[str, Any]]
    truth: list[FloatArray]

    def observations(self, sensors: pd.DataFrame) -> pd.DataFrame:
        """The batch's raw records as rows of the ``observations`` table."""
        return _assemble_records(self.records, sensors, self.first)

    def truth_table(self, sensors: pd.DataFrame, times: pd.DatetimeIndex) -> pd.DataFrame:
        """The batch's daily truth as rows of the ``truth`` table."""
        return _truth_frame(self.truth, sensors, times, self.first)


def plan_stations(world: Any, *, model: StationErrorModel | None = None) -> StationPlan:
    """Place the stations of ``world``, design their sensors and extract the truth at their cells.

    Parameters
    ----------
    world : soilfuse.twin.World
        The world (``config``, ``static``, ``truth`` as in the twin contract).
    model : StationErrorModel, optional
        Error magnitudes and rates; defaults when None.

    Returns
    -------
    StationPlan
    """
    model = model or StationErrorModel()
    cfg = world.config
    seed = int(cfg.seed)
    static, truth = world.static, world.truth
    times = pd.DatetimeIndex(truth["time"].values)
    places = place_stations(static, int(cfg.n_stations), seed=seed, dense_ratio=model.dense_ratio)
    meta = assign_networks(places, static.sizes["x"], seed, model.fraction_10min)
    meta = _station_attributes(meta, static, seed)
    cells = _extract(world, meta)
    sensors = _sensor_table(meta, cells, model, seed)
    logger.info("stations: %d stations, %d sensors, %d days", len(meta), len(sensors), times.size)
    outages = _outages(meta, times.size, model, seed)
    return StationPlan(meta, sensors, cells, outages, times, model, seed)


def station_batches(plan: StationPlan, *, batch: int = 128) -> Iterator[StationBatch]:
    """Simulate the raw records of ``plan``'s sensors, ``batch`` sensors at a time.

    Every sensor draws from its own random streams, so the records do not depend on
    the batching; memory is bounded by ``batch``, not by the number of stations.

    Parameters
    ----------
    plan : StationPlan
        Stations and sensors (:func:`plan_stations`).
    batch : int
        Sensors per batch.

    Yields
    ------
    StationBatch
        Consecutive sensors, in the order of ``plan.sensors``.
    """
    n = len(plan.sensors)
    for first in range(0, n, batch):
        records: list[dict[str, np.ndarray]] = []
        labels: list[dict[str, Any]] = []
        truth: list[FloatArray] = []
        chunk = plan.sensors.iloc[first:first + batch]
        for k, sensor in enumerate(chunk.itertuples(index=False), start=first):
            daily, st_at = _sensor_truth(sensor, plan.cells)
            truth.append(daily)
            rec, sensor_labels = _simulate_sensor(
                sensor, k, daily, st_at, plan.cells, plan.times, plan.outages[sensor.station_index],
                plan.model, plan.seed,
            )
            records.append(rec)
            for lab in sensor_labels:
                lab.update(station_id=sensor.station_id, variable=sensor.variable,
                           depth_from=sensor.depth_from, depth_to=sensor.depth_to)
            labels.extend(sensor_labels)
        yield StationBatch(first, records, labels, truth)


def observe_stations(world: Any, *, model: StationErrorModel | None = None) -> dict[str, pd.DataFrame]:
    """Station metadata, raw sub-daily records, fault labels, sensor truth and daily truth.

    Builds every table in memory; :func:`plan_stations` and :func:`station_batches`
    give the same records batch by batch (``soilfuse.twin.write`` streams them).

    Parameters
    ----------
    world : soilfuse.twin.World
        The world (``config``, ``static``, ``truth`` as in the twin contract).
    model : StationErrorModel, optional
        Error magnitudes and rates; defaults when None.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``stations`` (one row per station), ``observations`` (long raw records:
        ``station_id, time, depth_from, depth_to, variable, value, flag``; ``sm`` in
        m3 m-3, ``st`` in K, time UTC), ``faults`` (ground-truth labels),
        ``sensors`` (true calibration of every sensor) and ``truth`` (daily true
        value of the station's grid cell at every sensor depth).
    """
    plan = plan_stations(world, model=model)
    obs_parts: list[dict[str, np.ndarray]] = []
    faults: list[dict[str, Any]] = []
    truth_rows: list[FloatArray] = []
    for part in station_batches(plan):
        obs_parts += part.records
        faults += part.labels
        truth_rows += part.truth
    return {
        "stations": plan.stations,
        "observations": _assemble_records(obs_parts, plan.sensors),
        "faults": faults_frame(faults),
        "sensors": plan.sensor_table,
        "truth": _truth_frame(truth_rows, plan.sensors, plan.times),
    }


def _station_attributes(meta: pd.DataFrame, static: xr.Dataset, seed: int) -> pd.DataFrame:
    r = meta["row"].to_numpy()
    c = meta["col"].to_numpy()
    out = meta.copy()
    elev = np.asarray(static["elevation"].values)[r, c]
    out["elevation"] = np.round(elev + 15.0 * _hn(seed, 110, r, c), 1)
    out["land_cover"] = np.asarray(static["land_cover"].values)[r, c].astype("int16")
    out["climate_zone"] = np.asarray(static["climate_zone"].values)[r, c].astype("int16")
    for name in ("sand", "clay"):
        if name in static:
            prof, tops, bottoms = profile_of(static, name)
            w = profile_weights(tops, bottoms, [0.0], [5.0])[0]
            out[name] = np.round(np.tensordot(w, _at_cells(prof, r, c), axes=1), 1)
    out["saturation"] = np.round(_porosity_at(static, r, c, 0.0, 30.0), 4)
    out["sm_depths"] = [";".join(cf.layer_label(*d) for d in NETWORKS[n].sm) if s else ""
                        for n, s in zip(out["network"], out["has_sm"], strict=True)]
    out["st_depths"] = [";".join(cf.layer_label(d, d) for d in NETWORKS[n].st) if s else ""
                        for n, s in zip(out["network"], out["has_st"], strict=True)]
    out["ismn"] = [NETWORKS[n].ismn for n in out["network"]]
    cols = ["station_id", "network", "lat", "lon", "elevation", "land_cover", "climate_zone",
            "row", "col", "sand", "clay", "saturation", "sm_depths", "st_depths", "st_sampling",
            "ismn", "has_sm", "has_st"]
    return out[[k for k in cols if k in out.columns]]


def _porosity_at(static: xr.Dataset, r: np.ndarray, c: np.ndarray, top: float, bottom: float) -> FloatArray:
    prof, tops, bottoms = profile_of(static, "porosity")
    w = profile_weights(tops, bottoms, [top], [bottom])[0]
    return np.tensordot(w, _at_cells(prof, r, c), axes=1)


def _at_cells(da: xr.DataArray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Values of ``da`` (``(..., y, x)``) at the cells ``(r, c)``, ``(..., cell)``, reading only those cells."""
    return np.asarray(da.isel(y=xr.DataArray(r, dims="cell"), x=xr.DataArray(c, dims="cell")).values)


def _hn(seed: int, stream: int, *keys: object) -> FloatArray:
    return hash_normal(seed, stream, *keys)


# ====================================================================== truth at cells
def _extract(world: Any, meta: pd.DataFrame) -> dict[str, Any]:
    """Daily truth at the station cells: sm and st profiles, LST, porosity profile."""
    r = xr.DataArray(meta["row"].to_numpy(), dims="station")
    c = xr.DataArray(meta["col"].to_numpy(), dims="station")
    sm, sm_t, sm_b = profile_of(world.truth, "sm")
    st, st_t, st_b = profile_of(world.truth, "st")
    out: dict[str, Any] = {
        "sm": np.asarray(sm.isel(y=r, x=c).values, dtype="float64"),  # (time, depth, station)
        "st": np.asarray(st.isel(y=r, x=c).values, dtype="float64"),
        "sm_bounds": (sm_t, sm_b),
        "st_bounds": (st_t, st_b),
        "lon": meta["lon"].to_numpy(),
        "saturation": meta["saturation"].to_numpy(),
    }
    amp = (world.truth["lst_day"] - world.truth["lst_night"]) / 2.0
    out["amplitude"] = np.clip(np.asarray(amp.isel(y=r, x=c).values, dtype="float64"), 0.0, None)
    return out


def _sensor_table(meta: pd.DataFrame, cells: Mapping[str, Any], model: StationErrorModel,
                  seed: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for i, st in enumerate(meta.itertuples(index=False)):
        net = NETWORKS[st.network]
        specs: list[tuple[str, float, float, str, str]] = []
        if st.has_sm:
            specs += [("sm", float(a), float(b), net.sm_sensor, "1h") for a, b in net.sm]
        if st.has_st:
            specs += [("st", float(d), float(d), net.st_sensor, st.st_sampling) for d in net.st]
        for j, (var, top, bottom, instrument, sampling) in enumerate(specs):
            z = (top + bottom) / 2
            g = _hn(seed, _STREAM["sensor"], i, j, np.arange(4))
            if var == "sm":
                offset, gain = model.sm_offset_sd * g[0], 1.0 + model.sm_gain_sd * g[1]
                repr_bias, noise = model.sm_repr_sd * g[2], model.sm_noise_sd
            else:
                offset, gain = model.st_offset_sd * g[0], 1.0 + model.st_gain_sd * g[1]
                repr_bias = model.st_repr_sd * g[2] * (1.5 if z == 0 else 1.0)
                noise = model.st_noise_sd * (2.0 if z == 0 else 1.0)
            rows.append({
                "station_id": st.station_id, "station_index": i, "network": st.network,
                "variable": var, "depth_from": top, "depth_to": bottom, "sensor": instrument,
                "sampling": sampling, "offset": float(offset), "gain": float(gain),
                "repr_bias": float(repr_bias), "noise_sd": float(noise),
                "saturation": float(st.saturation),
            })
    sensors = pd.DataFrame(rows, columns=[
        "station_id", "station_index", "network", "variable", "depth_from", "depth_to", "sensor",
        "sampling", "offset", "gain", "repr_bias", "noise_sd", "saturation"])
    sm_t, sm_b = cells["sm_bounds"]
    st_t, st_b = cells["st_bounds"]
    pairs = sorted(set(zip(sensors["depth_from"], sensors["depth_to"], strict=True)))
    w_sm = {p: profile_weights(sm_t, sm_b, [p[0]], [p[1]])[0] for p in pairs}
    w_st = {p: profile_weights(st_t, st_b, [p[0]], [p[1]])[0] for p in pairs}
    keys = list(zip(sensors["depth_from"], sensors["depth_to"], strict=True))
    sensors["w_sm"] = [w_sm[k] for k in keys]
    sensors["w_st"] = [w_st[k] for k in keys]
    return sensors


def _sensor_truth(sensor: Any, cells: Mapping[str, Any]) -> tuple[FloatArray, FloatArray]:
    """Daily truth at the sensor (its variable) and soil temperature at its depth (K)."""
    i = sensor.station_index
    st_at = cells["st"][:, :, i] @ sensor.w_st
    if sensor.variable == "sm":
        return cells["sm"][:, :, i] @ sensor.w_sm, st_at
    return st_at, st_at


# ====================================================================== simulation
def _outages(meta: pd.DataFrame, ndays: int, model: StationErrorModel, seed: int) -> list[np.ndarray]:
    """Per station, a boolean day mask of multi-week outages."""
    out = []
    years = ndays / 365.25
    lo, hi = model.outage_days
    for i in range(len(meta)):
        rng = np.random.default_rng([seed, _STREAM["outage"], i])
        mask = np.zeros(ndays, bool)
        for _ in range(rng.poisson(model.outages_per_year * years)):
            dur = int(rng.integers(lo, hi + 1))
            start = int(rng.integers(0, max(1, ndays - dur)))
            mask[start:start + dur] = True
        out.append(mask)
    return out


def _subdaily(daily: FloatArray, steps: int) -> FloatArray:
    """Continuous sub-daily series: linear between daily values placed at day centres.

    Continuity matters: a series that jumps at 00:00 every day looks like a level
    shift to quality control. The daily mean differs from the daily value only by a
    curvature term (an eighth of the second difference), far below sensor noise.
    """
    t = (np.arange(daily.size * steps) + 0.5) / steps
    return np.interp(t, np.arange(daily.size) + 0.5, daily)


def _diurnal(amplitude: FloatArray, steps: int, lon: float, depth: float) -> FloatArray:
    """Zero-mean diurnal wave damped and lagged with depth, peaking ~13:30 local solar time."""
    hours = np.arange(steps) * 24.0 / steps
    local = (hours + lon / 15.0) % 24.0
    phase = 2 * np.pi * (local - 13.5) / 24.0 - depth / DAMPING_DEPTH
    return (amplitude[:, None] * np.exp(-depth / DAMPING_DEPTH) * np.cos(phase)[None, :]).ravel()


def _ar1(rng: np.random.Generator, n: int, sd: float, tau: float) -> FloatArray:
    """Stationary AR(1) series of ``n`` days with standard deviation ``sd`` and e-folding ``tau``."""
    phi = np.exp(-1.0 / max(tau, 1e-6))
    eps = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    start = rng.normal(0.0, sd)
    return np.asarray(lfilter([1.0], [1.0, -phi], eps, zi=[phi * start])[0])


def _simulate_sensor(
    s: Any, k: int, daily: FloatArray, st_at: FloatArray, cells: Mapping[str, Any],
    times: pd.DatetimeIndex, outage: np.ndarray, model: StationErrorModel, seed: int,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Raw records of one sensor and the labels of the faults injected into them."""
    steps = 144 if s.sampling == "10min" else 24
    ndays = daily.size
    n = ndays * steps
    rng = np.random.default_rng([seed, _STREAM["sensor"], k])
    z = (s.depth_from + s.depth_to) / 2
    amp = cells["amplitude"][:, s.station_index]
    lon = float(cells["lon"][s.station_index])
    st_hourly = _subdaily(st_at, steps) + _diurnal(amp, steps, lon, z)
    repr_daily = s.repr_bias + _ar1(
        rng, ndays, model.sm_repr_ar_sd if s.variable == "sm" else model.st_repr_ar_sd, model.repr_tau_days
    )
    if s.variable == "sm":
        true = _subdaily(daily, steps)
        wiggle = _diurnal(np.full(ndays, model.sm_diurnal), steps, lon, z)
        frozen = st_hourly < _FREEZE_K
        true = np.where(frozen, true * model.frozen_fraction, true)
        x = s.offset + s.gain * (true + np.repeat(repr_daily, steps)) + wiggle
    else:
        frozen = np.zeros(n, bool)
        # The gain of a temperature sensor acts on degrees Celsius (calibrated at 0 degC).
        x = _FREEZE_K + s.offset + s.gain * (st_hourly + np.repeat(repr_daily, steps) - _FREEZE_K)
    x = x + rng.normal(0.0, s.noise_sd, n)
    labels = _label_frozen(frozen, steps, times) if s.variable == "sm" else []
    busy = np.repeat(outage, steps) | _dilate(frozen, int(model.separation_days * steps))
    # Faults and missing records draw from their own streams, so that changing the
    # fault rates leaves the noise and the gaps of the records unchanged.
    labels += _inject(x, s, np.random.default_rng([seed, _STREAM["fault"], k]), busy, steps, times, model)
    miss_rng = np.random.default_rng([seed, _STREAM["missing"], k])
    missing = np.repeat(outage, steps) | (miss_rng.random(n) < model.missing_rate)
    keep = ~missing
    flag = np.zeros(n, dtype="int8")
    if s.variable == "sm":
        flag[x < 0.0] = 1
        flag[x > 0.6] = 2
    t0 = times.values.astype("datetime64[ns]").astype("int64")
    step_ns = np.int64(86_400_000_000_000 // steps)
    tt = (t0[:, None] + np.arange(steps, dtype="int64")[None, :] * step_ns).ravel()
    rec = {"time": tt[keep], "value": x[keep].astype("float32"), "flag": flag[keep]}
    return rec, labels


def _dilate(mask: np.ndarray, width: int) -> np.ndarray:
    if width <= 0 or not mask.any():
        return mask.copy()
    c = np.cumsum(np.concatenate([[0], mask.astype("int64")]))
    idx = np.arange(mask.size)
    lo = np.clip(idx - width, 0, mask.size)
    hi = np.clip(idx + width + 1, 0, mask.size)
    return (c[hi] - c[lo]) > 0


def _runs(mask: np.ndarray, merge_gap: int = 0) -> list[tuple[int, int]]:
    """(start, stop) of runs of True, merging runs separated by fewer than ``merge_gap`` steps."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype("int8"), [0]]))
    starts, stops = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    merged: list[tuple[int, int]] = []
    for a, b in zip(starts, stops, strict=True):
        if merged and a - merged[-1][1] < merge_gap:
            merged[-1] = (merged[-1][0], int(b))
        else:
            merged.append((int(a), int(b)))
    return merged


def _stamp(times: pd.DatetimeIndex, steps: int, k: int) -> np.datetime64:
    """Time of record ``k`` of a series with ``steps`` records a day starting at ``times[0]``."""
    return times.values[0] + np.timedelta64(k * (86_400 // steps), "s")


def _label_frozen(frozen: np.ndarray, steps: int, times: pd.DatetimeIndex) -> list[dict[str, Any]]:
    return [
        {"fault": "frozen", "start": _stamp(times, steps, a), "end": _stamp(times, steps, b - 1),
         "magnitude": np.nan}
        for a, b in _runs(frozen, merge_gap=steps)
    ]


def _inject(
    x: FloatArray, s: Any, rng: np.random.Generator, busy: np.ndarray, steps: int,
    times: pd.DatetimeIndex, model: StationErrorModel,
) -> list[dict[str, Any]]:
    """Inject faults into ``x`` in place; return their labels."""
    n = x.size
    years = n / steps / 365.25
    sep = int(model.separation_days * steps)
    occupied = busy.copy()
    labels: list[dict[str, Any]] = []
    is_sm = s.variable == "sm"
    kinds = [k for k in FAULTS if is_sm or k != "plateau"]
    hour = max(1, steps // 24)
    durations = {
        "spike": (1, max(1, hour // 2) + 1), "drop": (2 * hour, 12 * hour),
        "break": (3 * steps, 20 * steps), "flatline": (steps, 7 * steps),
        "plateau": (12 * hour, 3 * steps), "noise_burst": (steps, 3 * steps),
    }
    events = []
    for kind in kinds:
        events += [kind] * int(rng.poisson(model.fault_rates.get(kind, 0.0) * years))
    rng.shuffle(events)
    for kind in events:
        lo, hi = durations[kind]
        dur = int(rng.integers(lo, hi + 1))
        for _ in range(30):
            a = int(rng.integers(steps, max(steps + 1, n - dur - steps)))
            b = a + dur
            if b <= n and not occupied[max(0, a - sep):min(n, b + sep)].any():
                break
        else:
            continue
        occupied[a:b] = True
        magnitude = _apply_fault(kind, x, a, b, s, rng, model)
        labels.append({"fault": kind, "start": _stamp(times, steps, a),
                       "end": _stamp(times, steps, b - 1), "magnitude": magnitude})
    return labels


def _apply_fault(kind: str, x: FloatArray, a: int, b: int, s: Any, rng: np.random.Generator,
                 model: StationErrorModel) -> float:
    is_sm = s.variable == "sm"
    if kind == "spike":
        size = max(model.spike_sm, 0.5 * float(np.abs(x[a:b]).max())) if is_sm else model.spike_st
        x[a:b] += size
        return size
    if kind == "drop":
        if is_sm:
            x[a:b] *= model.drop_fraction
            return model.drop_fraction
        x[a:b] += model.drop_st
        return model.drop_st
    if kind == "break":
        size = (model.break_sm if is_sm else model.break_st) * (1 if rng.random() < 0.5 else -1)
        x[a:b] += size
        return size
    if kind == "flatline":
        x[a:b] = x[a - 1]
        return float(x[a - 1])
    if kind == "plateau":
        value = float(s.saturation)
        x[a:b] = value
        return value
    extra = s.noise_sd * np.sqrt(model.noise_burst_factor**2 - 1)
    x[a:b] += rng.normal(0.0, extra, b - a)
    return model.noise_burst_factor


# ====================================================================== tables
_FLAGS = np.array(["G", "C01", "C02"])


def _assemble_records(parts: list[dict[str, np.ndarray]], sensors: pd.DataFrame, first: int = 0) -> pd.DataFrame:
    """Rows of the ``observations`` table of the sensors ``first, first + 1, ...`` of ``sensors``."""
    counts = np.array([p["time"].size for p in parts], dtype="int64")
    idx = first + np.repeat(np.arange(len(parts)), counts)
    station_cat = pd.Categorical(sensors["station_id"])
    var_cat = pd.Categorical(sensors["variable"], categories=["sm", "st"])
    flag = np.concatenate([p["flag"] for p in parts]) if parts else np.zeros(0, "int8")
    return pd.DataFrame({
        "station_id": pd.Categorical.from_codes(station_cat.codes[idx], station_cat.categories),
        "time": (np.concatenate([p["time"] for p in parts]) if parts else np.zeros(0, "int64")).view("datetime64[ns]"),
        "depth_from": sensors["depth_from"].to_numpy("float32")[idx],
        "depth_to": sensors["depth_to"].to_numpy("float32")[idx],
        "variable": pd.Categorical.from_codes(var_cat.codes[idx], var_cat.categories),
        "value": np.concatenate([p["value"] for p in parts]) if parts else np.zeros(0, "float32"),
        "flag": pd.Categorical.from_codes(flag, _FLAGS),
    })


def faults_frame(labels: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``faults`` table of fault labels (see :func:`observe_stations`), sorted."""
    cols = ["station_id", "variable", "depth_from", "depth_to", "start", "end", "fault", "magnitude"]
    if not labels:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    df = pd.DataFrame(labels)
    return df[cols].sort_values(["station_id", "variable", "depth_from", "start"]).reset_index(drop=True)


def _truth_frame(rows: list[FloatArray], sensors: pd.DataFrame, times: pd.DatetimeIndex,
                 first: int = 0) -> pd.DataFrame:
    """Rows of the ``truth`` table of the sensors ``first, first + 1, ...`` of ``sensors``."""
    nt = times.size
    idx = first + np.repeat(np.arange(len(rows)), nt)
    station_cat = pd.Categorical(sensors["station_id"])
    var_cat = pd.Categorical(sensors["variable"], categories=["sm", "st"])
    return pd.DataFrame({
        "station_id": pd.Categorical.from_codes(station_cat.codes[idx], station_cat.categories),
        "time": np.tile(times.values.astype("datetime64[ns]"), len(rows)),
        "depth_from": sensors["depth_from"].to_numpy("float32")[idx],
        "depth_to": sensors["depth_to"].to_numpy("float32")[idx],
        "variable": pd.Categorical.from_codes(var_cat.codes[idx], var_cat.categories),
        "value": np.concatenate(rows).astype("float32") if rows else np.zeros(0, "float32"),
    })
