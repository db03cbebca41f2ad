"""From raw sub-daily station records to daily, complete, co-located training targets.

Steps (Li et al. 2022 for soil moisture; Wang et al. 2025 for soil temperature):

1. :func:`daily_means` averages each series (station, variable, sensor depth) per UTC
   day, using only usable values (ISMN flag ``"G"`` by default and, when present,
   a soilfuse ``qc_flag`` of ``"G"`` or a refilled value), and keeps a day only when
   at least ``min_coverage`` of its expected samples are there. The expected number
   is inferred per series from its own sampling interval (the median spacing of
   its records), so hourly and 10-minute series are both judged right.
2. :func:`~soilfuse.stations.depths.map_to_layers` assigns sensors to target layers.
3. :func:`filter_completeness` drops series with more than ``max_missing`` (20 %)
   missing days over the period (the rule of Wang et al. 2025).
4. :func:`average_per_cell` averages stations sharing a grid cell for training
   (Li et al. 2022); validation keeps stations apart, i.e. uses the station table.

Usage
-----
>>> import numpy as np, pandas as pd
>>> t = pd.date_range("2019-03-01", periods=48, freq="h")
>>> obs = pd.DataFrame({"station_id": "A", "time": t, "depth_from": 0.0, "depth_to": 5.0,
...                     "variable": "sm", "value": np.r_[np.full(24, 0.2), np.full(24, 0.3)],
...                     "flag": ["G"] * 36 + ["D06"] * 12})
>>> d = daily_means(obs)
>>> d["value"].round(3).tolist(), d["n"].tolist(), d["coverage"].tolist()
([0.2, 0.3], [24, 12], [1.0, 0.5])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from soilfuse.exceptions import DataError
from soilfuse.grid import Grid
from soilfuse.io.stations import StationData, normalise_stations

__all__ = [
    "DEFAULT_GOOD_FLAGS",
    "SERIES_KEYS",
    "average_per_cell",
    "daily_means",
    "filter_completeness",
    "infer_sampling_interval",
    "usable_mask",
]

logger = logging.getLogger(__name__)

#: ISMN flags treated as usable by default.
DEFAULT_GOOD_FLAGS: tuple[str, ...] = ("G",)

#: Columns that identify one time series in an observation table.
SERIES_KEYS: tuple[str, ...] = ("station_id", "variable", "depth_from", "depth_to")

_DAY = pd.Timedelta("1D")


def _observations(data: StationData | pd.DataFrame) -> pd.DataFrame:
    return data.observations if isinstance(data, StationData) else data


def usable_mask(
    obs: pd.DataFrame,
    *,
    good_flags: Sequence[str] = DEFAULT_GOOD_FLAGS,
) -> np.ndarray:
    """Boolean mask of usable values.

    A value is usable when it is finite and either its ISMN ``flag`` is one of
    ``good_flags`` and its soilfuse ``qc_flag`` (if the column exists) is ``"G"``,
    or its ``qc_flag`` ends with the refill code ``"R01"`` (dropped and refilled
    by interpolation in :func:`soilfuse.stations.qc.apply_qc`).
    """
    value = obs["value"].to_numpy(dtype="float64")
    ok = obs["flag"].astype(str).isin(list(good_flags)).to_numpy(dtype=bool)
    if "qc_flag" in obs.columns:
        qc = obs["qc_flag"].astype(str)
        ok = (ok & (qc == "G").to_numpy(dtype=bool)) | qc.str.endswith("R01").to_numpy(dtype=bool)
    return ok & np.isfinite(value)


def infer_sampling_interval(obs: pd.DataFrame) -> pd.Series:
    """Sampling interval of every series: the median spacing of its records.

    Parameters
    ----------
    obs : pandas.DataFrame
        Observation table (all records, flagged or not, count for the spacing).

    Returns
    -------
    pandas.Series of Timedelta
        Indexed by :data:`SERIES_KEYS`; series with a single record get one day.
    """
    keys = list(SERIES_KEYS)
    frame = obs[[*keys, "time"]].sort_values([*keys, "time"], kind="stable")
    step = frame.groupby(keys, sort=False, observed=True)["time"].diff()
    step = step.where(step > pd.Timedelta(0))
    frame = frame.assign(step=step.dt.total_seconds())
    median = frame.groupby(keys, sort=True, observed=True)["step"].median()
    return pd.to_timedelta(median.fillna(_DAY.total_seconds()), unit="s").rename("interval")


def daily_means(
    data: StationData | pd.DataFrame,
    *,
    min_coverage: float = 0.5,
    good_flags: Sequence[str] = DEFAULT_GOOD_FLAGS,
) -> pd.DataFrame:
    """Daily (UTC) means of every series with a minimum-coverage rule.

    Parameters
    ----------
    data : StationData or pandas.DataFrame
        Sub-daily observations (long format).
    min_coverage : float
        Fraction in (0, 1] of the day's expected samples that must be usable;
        expected samples = 1 day / the series' sampling interval
        (:func:`infer_sampling_interval`).
    good_flags : sequence of str
        ISMN flags counted as usable (``("G",)``; add ``"U"`` for older ISMN
        releases that did not check values).

    Returns
    -------
    pandas.DataFrame
        Columns ``station_id``, ``time`` (day at 00:00 UTC), ``depth_from``,
        ``depth_to``, ``variable``, ``value`` (mean, canonical unit), ``flag``
        (``"G"``), ``n`` (usable samples) and ``coverage`` (``n`` / expected,
        at most 1); only days meeting ``min_coverage``.

    Raises
    ------
    DataError
        If ``min_coverage`` is not in (0, 1].
    """
    if not 0.0 < min_coverage <= 1.0:
        msg = f"min_coverage must be a fraction in (0, 1]; got {min_coverage}."
        raise DataError(msg)
    obs = _observations(data)
    keys = list(SERIES_KEYS)
    interval = infer_sampling_interval(obs)
    usable = obs[usable_mask(obs, good_flags=good_flags)]
    frame = usable[keys].copy()
    frame["time"] = usable["time"].dt.floor("D")
    frame["value"] = usable["value"].to_numpy(dtype="float64")
    daily = frame.groupby([*keys, "time"], sort=True, observed=True)["value"].agg(["mean", "count"]).reset_index()
    expected = (_DAY / interval).clip(lower=1.0).rename("expected").reset_index()
    daily = daily.merge(expected, on=keys, how="left")
    coverage = np.minimum(daily["count"].to_numpy() / daily["expected"].to_numpy(), 1.0)
    keep = coverage >= min_coverage - 1e-12
    out = pd.DataFrame({
        "station_id": daily["station_id"].astype("string"),
        "time": daily["time"].astype("datetime64[ns]"),
        "depth_from": daily["depth_from"].astype("float64"),
        "depth_to": daily["depth_to"].astype("float64"),
        "variable": daily["variable"].astype("string"),
        "value": daily["mean"].astype("float64"),
        "flag": pd.array(["G"] * len(daily), dtype="string"),
        "n": daily["count"].astype("Int64"),
        "coverage": coverage,
    })[keep]
    logger.info("daily means: %d station-days kept of %d with data (min coverage %.2f)",
                int(keep.sum()), len(keep), min_coverage)
    return out.reset_index(drop=True)


def filter_completeness(
    daily: pd.DataFrame,
    *,
    max_missing: float = 0.2,
    start: Any = None,
    end: Any = None,
    by: Sequence[str] | None = None,
    scope: Literal["series", "station"] = "series",
) -> pd.DataFrame:
    """Drop series with more than ``max_missing`` of their days missing over a period.

    Parameters
    ----------
    daily : pandas.DataFrame
        Daily table (one row per series and day with a value).
    max_missing : float
        Largest tolerated fraction of missing days (0.2 = 20 %, Wang et al. 2025).
    start, end : datetime-like, optional
        Period (inclusive days); the table's first and last day by default.
    by : sequence of str, optional
        Columns identifying a series; ``station_id, variable, layer`` when a
        ``layer`` column exists, else :data:`SERIES_KEYS`.
    scope : {"series", "station"}
        ``"station"`` drops the whole station when any of its series fails
        (the rule "more than 20 % missing at any depth").

    Returns
    -------
    pandas.DataFrame
        The rows of the series kept, restricted to the period.
    """
    if not 0.0 <= max_missing <= 1.0:
        msg = f"max_missing must be a fraction in [0, 1]; got {max_missing}."
        raise DataError(msg)
    if daily.empty:
        return daily.copy()
    keys = list(by) if by is not None else (
        ["station_id", "variable", "layer"] if "layer" in daily.columns else list(SERIES_KEYS)
    )
    t0 = pd.Timestamp(start).floor("D") if start is not None else daily["time"].min().floor("D")
    t1 = pd.Timestamp(end).floor("D") if end is not None else daily["time"].max().floor("D")
    n_days = int((t1 - t0) / _DAY) + 1
    in_period = ((daily["time"] >= t0) & (daily["time"] <= t1 + _DAY - pd.Timedelta(1, "ns"))).to_numpy()
    sub = daily[in_period & np.isfinite(daily["value"].to_numpy(dtype="float64"))]
    present = sub.assign(day=sub["time"].dt.floor("D")).groupby(keys, observed=True)["day"].nunique()
    missing = 1.0 - present / n_days
    ok = missing[missing <= max_missing + 1e-12]
    if scope == "station":
        bad_stations = set(missing[missing > max_missing + 1e-12].index.get_level_values("station_id"))
        ok = ok[~ok.index.get_level_values("station_id").isin(bad_stations)]
    kept = ok.index.to_frame(index=False)
    out = daily[in_period].merge(kept, on=keys, how="inner")
    logger.info(
        "completeness filter: kept %d of %d series (max %.0f%% missing of %d days)",
        len(kept), len(missing), 100 * max_missing, n_days,
    )
    return out.reset_index(drop=True)


def average_per_cell(
    daily: pd.DataFrame,
    grid: Grid,
    stations: StationData | pd.DataFrame,
) -> pd.DataFrame:
    """Average the stations that share a grid cell, per variable, layer and day.

    For training (Li et al. 2022 averaged co-located stations at 1 km); keep the
    station table itself for validation so that stations stay independent.

    Parameters
    ----------
    daily : pandas.DataFrame
        Daily table with ``station_id``, ``time``, ``variable``, ``depth_from``,
        ``depth_to`` (and ``layer`` if mapped), ``value``.
    grid : Grid
        Grid whose cells define co-location.
    stations : StationData or pandas.DataFrame
        Station metadata with ``lat``/``lon`` (its ``row``/``col`` are recomputed
        on ``grid``).

    Returns
    -------
    pandas.DataFrame
        ``cell_id`` (``"r<row>_c<col>"``), ``row``, ``col``, ``x``, ``y`` (cell centre,
        grid CRS), ``time``, ``variable``, ``depth_from``, ``depth_to`` (``layer``),
        ``value`` (mean over the stations with a value that day), ``n_stations``
        (their number) and ``station_ids`` (all stations seen in the cell, sorted,
        joined by ``","``).

    Raises
    ------
    DataError
        If a station of ``daily`` is missing from ``stations`` or lies outside the grid.
    """
    meta = stations.stations if isinstance(stations, StationData) else normalise_stations(stations)
    rows, cols = grid.index(meta["lon"].to_numpy(), meta["lat"].to_numpy(), crs="EPSG:4326")
    where = pd.DataFrame({"station_id": meta["station_id"].astype(str).to_numpy(), "row": rows, "col": cols})
    frame = daily.assign(station_id=daily["station_id"].astype(str)).merge(where, on="station_id", how="left")
    lost = frame.loc[frame["row"].isna() | (frame["row"] < 0), "station_id"].unique().tolist()
    if lost:
        msg = (
            f"Stations {lost[:10]} of the daily table are not in the station metadata or lie outside "
            f"the grid {grid.bounds}; locate them with locate_on_grid(..., drop_outside=True) first."
        )
        raise DataError(msg)
    layer_keys = ["depth_from", "depth_to"] + (["layer"] if "layer" in frame.columns else [])
    keys = ["row", "col", "variable", *layer_keys, "time"]
    frame = frame[np.isfinite(frame["value"].to_numpy(dtype="float64"))]
    grouped = frame.groupby(keys, sort=True, observed=True)
    out = grouped["value"].agg(value="mean", n_stations="count").reset_index()
    # the stations seen in each cell (listed once per cell, not per day: cheap on long tables)
    members = frame[["row", "col", "station_id"]].drop_duplicates().sort_values("station_id")
    ids = members.groupby(["row", "col"])["station_id"].agg(",".join).rename("station_ids")
    out = out.merge(ids.reset_index(), on=["row", "col"], how="left")
    r = out["row"].to_numpy(dtype="int64")
    c = out["col"].to_numpy(dtype="int64")
    out["x"] = grid.x[c]
    out["y"] = grid.y[r]
    out.insert(0, "cell_id", pd.array([f"r{i}_c{j}" for i, j in zip(r, c, strict=True)], dtype="string"))
    out["row"] = r
    out["col"] = c
    return out
