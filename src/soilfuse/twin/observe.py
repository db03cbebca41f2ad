"""Observe a twin world: every observing system at once, and how far each is from the truth.

:func:`observe` runs the station networks (:mod:`.observe_stations`), the reanalysis
and coarse satellites (:mod:`.observe_grids`) and the MODIS-like products
(:mod:`.observe_optical`) on a :class:`~soilfuse.twin.world.World` and returns one
:class:`Observations`. :func:`evaluate` measures each observing system against the
truth (RMSE, bias, correlation, gap fractions, station and fault counts); these are
the figures :func:`soilfuse.twin.generate` logs and stores in ``twin.json``.

Usage
-----
>>> from soilfuse.twin import TwinConfig, make_world, observe
>>> world = make_world(TwinConfig.from_size("small"))  # doctest: +SKIP
>>> obs = observe(world)  # doctest: +SKIP
>>> figures = evaluate(world, obs)  # doctest: +SKIP
>>> sorted(figures)  # doctest: +SKIP
['cci', 'modis', 'reanalysis', 'smap', 'stations']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.twin.observe_grids import (
    CCIModel,
    GridPlan,
    ReanalysisModel,
    SMAPModel,
    land_fractions,
    observe_grids,
    plan_grids,
)
from soilfuse.twin.observe_optical import OpticalModel, observe_optical
from soilfuse.twin.observe_scores import GridScores, PairScores, rounded
from soilfuse.twin.observe_stations import (
    FAULTS,
    StationBatch,
    StationErrorModel,
    StationPlan,
    observe_stations,
    plan_stations,
)

__all__ = ["Observations", "StationSummary", "evaluate", "observe"]

logger = logging.getLogger(__name__)

_DAY_NS = 86_400 * 10**9


@dataclass
class Observations:
    """What the observing systems of a twin world recorded.

    Attributes
    ----------
    stations : pandas.DataFrame
        Station metadata: ``station_id``, ``network``, ``lat``, ``lon``,
        ``elevation`` (m), ``land_cover``, ``climate_zone``, ``row``, ``col`` (fine
        grid cell), ``sand``, ``clay`` (%), ``saturation`` (m3 m-3, 0-30 cm),
        ``sm_depths``, ``st_depths`` (layer labels joined by ``;``), ``st_sampling``,
        ``ismn`` (also written as ISMN files).
    station_obs : pandas.DataFrame
        Raw sub-daily records: ``station_id``, ``time`` (UTC), ``depth_from``,
        ``depth_to`` (cm), ``variable`` (``sm``/``st``), ``value`` (m3 m-3 or K),
        ``flag`` (``G``; ``C01``/``C02`` below 0 or above 0.6 m3 m-3).
    station_faults : pandas.DataFrame
        Ground-truth fault labels: ``station_id``, ``variable``, ``depth_from``,
        ``depth_to``, ``start``, ``end`` (first and last affected record, UTC),
        ``fault``, ``magnitude``.
    station_truth : pandas.DataFrame
        Daily true value of the station's grid cell at every sensor depth.
    reanalysis : xarray.Dataset
        ERA5-Land-like daily fields on a 0.1° grid, canonical names and units.
    cci : xarray.Dataset
        CCI-like daily soil moisture on a 0.25° grid with ``flag`` and auxiliaries.
    smap : xarray.Dataset
        SMAP-like daily AM soil moisture on EASE-Grid 2.0 36 km cells.
    modis : xarray.Dataset
        MODIS-like products on the fine grid (lazy; see
        :func:`soilfuse.twin.observe_optical.observe_optical`).
    station_sensors : pandas.DataFrame
        True calibration of every sensor (offset, gain, representativeness bias,
        noise), for scoring QC and rescaling.
    truth_on_grids : dict of str to xarray.Dataset
        Error-free area means of the truth on the ``reanalysis``, ``cci`` and
        ``smap`` grids.
    station_plan : StationPlan, optional
        Set by ``observe(..., stream_stations=True)``: ``station_obs`` and
        ``station_truth`` are then empty and the station writer of
        :mod:`soilfuse.twin.write` simulates the records batch by batch, filling in
        ``station_faults`` and ``station_summary``.
    station_summary : StationSummary, optional
        Daily means of the records and the daily truth per sensor (what
        :func:`evaluate` scores), when the records are not kept in memory.
    grid_plan : GridPlan, optional
        Set by ``observe(..., stream_grids=True)``: ``reanalysis``, ``cci`` and ``smap``
        then hold only the ``land_fraction`` of their grids, ``truth_on_grids`` is
        empty, and the writer of :mod:`soilfuse.twin.write` computes the products block
        of days by block of days, filling in ``grid_scores``.
    grid_scores : GridScores, optional
        Error figures of the streamed coarse products (what :func:`evaluate` reports).
    """

    stations: pd.DataFrame
    station_obs: pd.DataFrame
    station_faults: pd.DataFrame
    station_truth: pd.DataFrame
    reanalysis: xr.Dataset
    cci: xr.Dataset
    smap: xr.Dataset
    modis: xr.Dataset
    station_sensors: pd.DataFrame = field(default_factory=pd.DataFrame)
    truth_on_grids: dict[str, xr.Dataset] = field(default_factory=dict)
    station_plan: StationPlan | None = None
    station_summary: StationSummary | None = None
    grid_plan: GridPlan | None = None
    grid_scores: GridScores | None = None


@dataclass
class StationSummary:
    """Raw records and daily truth of every sensor on a (sensor, day) lattice, for scoring.

    Attributes
    ----------
    ndays : int
        Days of the world.
    total, count : numpy.ndarray
        Sum (float64) and number of the raw records of sensor ``k`` on day ``t`` at
        ``k * ndays + t``.
    ref : numpy.ndarray
        Daily truth at the same positions (NaN where none).
    n_records : int
        Number of raw records.
    """

    ndays: int
    total: np.ndarray
    count: np.ndarray
    ref: np.ndarray
    n_records: int = 0

    @classmethod
    def empty(cls, n_sensors: int, ndays: int) -> StationSummary:
        """A summary without any record."""
        size = n_sensors * ndays
        return cls(ndays, np.zeros(size), np.zeros(size, dtype="int64"), np.full(size, np.nan))

    def add(self, records: pd.DataFrame, truth: pd.DataFrame, sensors: pd.DataFrame, t0: np.datetime64,
            first: int = 0, n_sensors: int | None = None) -> None:
        """Add the records and truth rows of the sensors ``first .. first + n_sensors - 1``.

        Parameters
        ----------
        records, truth : pandas.DataFrame
            Rows of the ``observations`` and ``truth`` tables of those sensors only.
        sensors : pandas.DataFrame
            Every sensor (``station_id``, ``variable``, ``depth_from``, ``depth_to``).
        t0 : numpy.datetime64
            First day of the world.
        first, n_sensors : int
            Sensor rows covered (all of ``sensors`` by default).
        """
        n_sensors = len(sensors) - first if n_sensors is None else n_sensors
        lo, size = first * self.ndays, n_sensors * self.ndays
        start = np.asarray(t0).astype("datetime64[ns]").astype("int64")
        r_code = _sensor_codes(records, sensors)
        r_day = (records["time"].to_numpy().astype("datetime64[ns]").astype("int64") - start) // _DAY_NS
        ok = (r_code >= 0) & (r_day >= 0) & (r_day < self.ndays)
        idx = r_code[ok] * self.ndays + r_day[ok] - lo
        self.total[lo:lo + size] += np.bincount(idx, weights=records["value"].to_numpy("float64")[ok],
                                                minlength=size)
        self.count[lo:lo + size] += np.bincount(idx, minlength=size)
        self.n_records += len(records)
        t_code = _sensor_codes(truth, sensors)
        t_day = (truth["time"].to_numpy().astype("datetime64[ns]").astype("int64") - start) // _DAY_NS
        tok = t_code >= 0
        self.ref[t_code[tok] * self.ndays + t_day[tok]] = truth["value"].to_numpy("float64")[tok]

    def add_batch(self, batch: StationBatch, plan: StationPlan) -> None:
        """Add one :class:`~soilfuse.twin.observe_stations.StationBatch` of ``plan``."""
        self.add(batch.observations(plan.sensors), batch.truth_table(plan.sensors, plan.times),
                 plan.sensors, plan.times.values[0], batch.first, len(batch.truth))


def observe(
    world: Any,
    *,
    stations: StationErrorModel | None = None,
    reanalysis: ReanalysisModel | None = None,
    cci: CCIModel | None = None,
    smap: SMAPModel | None = None,
    optical: OpticalModel | None = None,
    stream_stations: bool = False,
    stream_grids: bool = False,
) -> Observations:
    """Run every observing system on ``world``.

    Parameters
    ----------
    world : soilfuse.twin.World
        The world to observe.
    stations, reanalysis, cci, smap, optical : optional
        Error models of each system (defaults when None).
    stream_stations : bool
        Do not simulate the raw station records here; leave them to the streaming
        station writer of :mod:`soilfuse.twin.write` (see ``Observations.station_plan``),
        so that memory does not grow with the number of stations.
    stream_grids : bool
        Do not compute the reanalysis, CCI and SMAP products here; leave them to the
        streaming writer (see ``Observations.grid_plan``), so that memory does not
        grow with the period and the coarse grids.

    Returns
    -------
    Observations
        Station tables and reanalysis/satellite grids are in memory; the MODIS-like
        products are lazy (Dask).
    """
    if stream_stations:
        plan = plan_stations(world, model=stations)
        tables = {"stations": plan.stations, "observations": pd.DataFrame(), "faults": pd.DataFrame(),
                  "truth": pd.DataFrame(), "sensors": plan.sensor_table}
    else:
        plan, tables = None, observe_stations(world, model=stations)
    grid_plan = plan_grids(world, reanalysis=reanalysis, cci=cci, smap=smap) if stream_grids else None
    if grid_plan is not None:
        grids = land_fractions(grid_plan)
        truth_on_grids: dict[str, xr.Dataset] = {}
    else:
        grids = observe_grids(world, reanalysis=reanalysis, cci=cci, smap=smap)
        truth_on_grids = {k: grids[f"{k}_truth"] for k in ("reanalysis", "cci", "smap")}
    modis = observe_optical(world, model=optical)
    return Observations(
        stations=tables["stations"],
        station_obs=tables["observations"],
        station_faults=tables["faults"],
        station_truth=tables["truth"],
        reanalysis=grids["reanalysis"],
        cci=grids["cci"],
        smap=grids["smap"],
        modis=modis,
        station_sensors=tables["sensors"],
        truth_on_grids=truth_on_grids,
        station_plan=plan,
        grid_plan=grid_plan,
    )


# ====================================================================== figures
def _sensor_codes(table: pd.DataFrame, sensors: pd.DataFrame) -> np.ndarray:
    """Row of ``sensors`` (by station, variable and depths) of every row of ``table``; -1 if none.

    Integer keys and a sorted lookup instead of a pandas merge, because the raw
    record table has tens of millions of rows at demo size.
    """
    ids = pd.Index(pd.unique(sensors["station_id"].astype(str)))

    def lookup(series: pd.Series, index: pd.Index) -> np.ndarray:
        if isinstance(series.dtype, pd.CategoricalDtype):  # map the categories once
            return np.asarray(index.get_indexer(series.cat.categories.astype(str)))[series.cat.codes.to_numpy()]
        return np.asarray(index.get_indexer(series.astype(str)))

    def key(df: pd.DataFrame) -> np.ndarray:
        st_code = lookup(df["station_id"], ids).astype("int64")
        var = lookup(df["variable"], pd.Index(["sm", "st"])).astype("int64")
        top = np.rint(df["depth_from"].to_numpy("float64") * 10).astype("int64")
        bottom = np.rint(df["depth_to"].to_numpy("float64") * 10).astype("int64")
        k = ((st_code * 2 + var) * 10_000 + top) * 10_000 + bottom
        return np.where((st_code < 0) | (var < 0), -1, k)

    skeys = key(sensors)
    order = np.argsort(skeys)
    rkeys = key(table)
    pos = np.clip(np.searchsorted(skeys[order], rkeys), 0, len(order) - 1)
    return np.where(skeys[order][pos] == rkeys, order[pos], -1)


def _summary(obs: Observations, times: pd.DatetimeIndex) -> StationSummary:
    """``obs.station_summary``, or the summary of the in-memory record tables."""
    if obs.station_summary is not None:
        return obs.station_summary
    summary = StationSummary.empty(len(obs.station_sensors), times.size)
    summary.add(obs.station_obs, obs.station_truth, obs.station_sensors, times.values[0])
    return summary


def _station_figures(obs: Observations, world: Any) -> dict[str, Any]:
    st = obs.stations
    nx = world.static.sizes["x"]
    east = int((st["col"] >= nx / 2).sum())
    west = int((st["col"] < nx / 2).sum())
    times = pd.DatetimeIndex(world.truth["time"].values)
    ndays = times.size
    sensors = obs.station_sensors
    steps = np.where(sensors["sampling"] == "10min", 144, 24) if len(sensors) else np.zeros(0)
    expected = int(np.sum(steps) * ndays)
    summary = _summary(obs, times)
    out: dict[str, Any] = {
        "n_stations": len(st),
        "by_network": {str(k): int(v) for k, v in st["network"].value_counts().sort_index().items()},
        "n_sensors": len(sensors),
        "n_records": summary.n_records,
        "missing_fraction": rounded(1 - summary.n_records / expected) if expected else float("nan"),
        "east_half": east,
        "west_half": west,
        "faults": {k: int((obs.station_faults["fault"] == k).sum()) for k in (*FAULTS, "frozen")},
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = summary.total / summary.count
    var = np.repeat(sensors["variable"].astype(str).to_numpy(), ndays)
    for name in ("sm", "st"):
        sel = var == name
        out[f"daily_{name}"] = PairScores().add(summary.ref[sel], daily[sel]).result()
    return out


def _gridded_figures(obs: Observations) -> dict[str, Any]:
    """Figures of the reanalysis, CCI and SMAP products (see :meth:`GridScores.result`)."""
    if obs.grid_scores is not None:
        return obs.grid_scores.result()
    if obs.grid_plan is not None:
        msg = ("The coarse products of these observations are streamed (observe(..., stream_grids=True)) "
               "and have not been written yet; write them with write_twin before evaluating.")
        raise ValueError(msg)
    grids = {"reanalysis": obs.reanalysis, "cci": obs.cci, "smap": obs.smap,
             **{f"{k}_truth": v for k, v in obs.truth_on_grids.items()}}
    return GridScores().add(grids).result()


def _modis_figures(obs: Observations, world: Any) -> dict[str, Any]:
    """Cloud, LST and availability figures of the MODIS-like products.

    Daily layers are scored on whole 16-day periods (their Dask chunks), every
    ``n_periods // 6``-th one for long runs, so that only ~100 days are computed.
    """
    m = obs.modis
    truth = world.truth
    lengths = m["lst_day"].chunks[0] if m["lst_day"].chunks else (m.sizes["time"],)
    starts = np.cumsum((0, *lengths))
    step = max(1, len(lengths) // 6)
    days = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in range(0, len(lengths), step)])

    def daily(ds: Any, name: str) -> Any:
        return ds[name].transpose("time", "y", "x").isel(time=days).data

    rain = daily(world.forcing, "tp") > 1.0
    cloud = daily(m, "cloud")
    d_day = daily(m, "lst_day") - daily(truth, "lst_day").astype("float32")
    d_night = daily(m, "lst_night") - daily(truth, "lst_night").astype("float32")
    lazy = {
        "cloud": cloud.mean(),
        "cloud_rain": (cloud & rain).sum() / rain.sum(),
        "cloud_dry": (cloud & ~rain).sum() / (~rain).sum(),
        "lst_day_rmse": np.sqrt(np.nanmean(d_day**2)),
        "lst_day_bias": np.nanmean(d_day),
        "lst_day_valid": np.isfinite(d_day).mean(),
        "lst_night_rmse": np.sqrt(np.nanmean(d_night**2)),
        "lst_night_valid": np.isfinite(d_night).mean(),
        "other_quality": (daily(m, "qc_day") == 133).mean(),
        "albedo_valid": np.isfinite(daily(m, "albedo")).mean(),
        "refl_b1_valid": np.isfinite(daily(m, "refl_b1")).mean(),
        "ndvi_valid": np.isfinite(m["ndvi"].data).mean(),
        "lai_valid": np.isfinite(m["lai"].data).mean(),
    }
    values = dask.compute(lazy)[0]
    out: dict[str, Any] = {k: rounded(v) for k, v in values.items()}
    out["days_sampled"] = int(days.size)
    return out


def evaluate(world: Any, obs: Observations) -> dict[str, Any]:
    """Error figures of every observing system against the truth.

    Parameters
    ----------
    world : soilfuse.twin.World
        The observed world.
    obs : Observations
        What :func:`observe` returned for it.

    Returns
    -------
    dict
        ``stations`` (counts, missing fraction, fault counts, daily-mean scores of the
        raw records against the cell truth), ``reanalysis`` (RMSE/bias/r per variable
        and ERA5 layer against the area-mean truth), ``cci`` and ``smap`` (scores,
        valid and flag fractions, frozen vs unfrozen availability), ``modis`` (cloud
        fractions overall and on rainy/dry days, LST errors, valid fractions). Plain
        JSON-serialisable numbers.
    """
    figures: dict[str, Any] = {"stations": _station_figures(obs, world)}
    figures.update(_gridded_figures(obs))
    figures["modis"] = _modis_figures(obs, world)
    return figures
