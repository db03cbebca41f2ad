"""Metrics by stratum (depth, season, land cover, climate zone) and per-station tables.

The input is a long table of matched pairs, one row per station, day and layer, with
``obs`` and ``pred`` columns (the shape :func:`soilfuse.validate.compare.match_product`
returns). Two ways to summarise a stratum are offered, because they answer different
questions (Li et al., 2022):

* ``how="pooled"`` scores all pairs of the stratum together;
* ``how="station_median"`` scores each station within the stratum, then takes the
  median across stations (``n_stations`` counts the stations scored).

Seasons are the meteorological ones, ``DJF``, ``MAM``, ``JJA`` and ``SON``; with
``hemisphere_aware=True`` they are named ``winter``/``spring``/``summer``/``autumn``
by latitude, so that a southern station's December counts as summer.

Usage
-----
>>> import numpy as np, pandas as pd
>>> t = pd.to_datetime(["2020-01-15", "2020-07-15", "2020-07-16"])
>>> season_of(t).tolist()
['DJF', 'JJA', 'JJA']
>>> season_of(t, lat=[-30.0, -30.0, 40.0], hemisphere_aware=True).tolist()
['summer', 'winter', 'summer']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.validate.metrics import metrics_table

__all__ = [
    "CLIMATE_ZONE_NAMES",
    "LAND_COVER_NAMES",
    "SEASONS",
    "assign_season",
    "season_of",
    "station_metrics",
    "stratified_metrics",
]

#: Meteorological seasons in calendar order.
SEASONS: tuple[str, ...] = ("DJF", "MAM", "JJA", "SON")

#: Land-cover codes of ``docs/conventions.md``.
LAND_COVER_NAMES: Mapping[int, str] = {1: "forest", 2: "grassland", 3: "cropland", 4: "barren", 5: "water", 6: "urban"}

#: Climate-zone codes of ``docs/conventions.md``.
CLIMATE_ZONE_NAMES: Mapping[int, str] = {1: "arid", 2: "semi-arid", 3: "temperate", 4: "humid", 5: "cold"}

_MONTH_TO_SEASON = np.array(
    ["", "DJF", "DJF", "MAM", "MAM", "MAM", "JJA", "JJA", "JJA", "SON", "SON", "SON", "DJF"], dtype=object
)
_NORTH = {"DJF": "winter", "MAM": "spring", "JJA": "summer", "SON": "autumn"}
_SOUTH = {"DJF": "summer", "MAM": "autumn", "JJA": "winter", "SON": "spring"}


def season_of(
    time: Any,
    lat: npt.ArrayLike | None = None,
    *,
    hemisphere_aware: bool = False,
) -> npt.NDArray[Any]:
    """Season label of each time.

    Parameters
    ----------
    time : array_like of datetime
        Times (anything :func:`pandas.to_datetime` reads).
    lat : array_like, optional
        Latitude of each time's station (degrees); needed with ``hemisphere_aware``.
    hemisphere_aware : bool
        Return ``winter``/``spring``/``summer``/``autumn``, swapped south of the equator.

    Returns
    -------
    numpy.ndarray of str
        ``"DJF"``, ``"MAM"``, ``"JJA"``, ``"SON"`` (or the hemisphere-aware names).

    Raises
    ------
    DataError
        If ``hemisphere_aware`` is set without ``lat`` or the lengths differ.
    """
    months = pd.DatetimeIndex(pd.to_datetime(np.asarray(time).ravel())).month.to_numpy()
    labels = _MONTH_TO_SEASON[months]
    if not hemisphere_aware:
        return labels
    if lat is None:
        msg = "hemisphere_aware=True needs the latitude of each time (lat=...)."
        raise DataError(msg)
    la = np.broadcast_to(np.asarray(lat, dtype="float64"), labels.shape)
    north = np.vectorize(_NORTH.__getitem__, otypes=[object])(labels)
    south = np.vectorize(_SOUTH.__getitem__, otypes=[object])(labels)
    return np.asarray(np.where(la < 0, south, north), dtype=object)


def assign_season(
    table: pd.DataFrame,
    *,
    time: str = "time",
    lat: str = "lat",
    hemisphere_aware: bool = False,
) -> pd.DataFrame:
    """Copy of ``table`` with a ``season`` column from its ``time`` (and ``lat``) columns."""
    _require(table, [time] + ([lat] if hemisphere_aware else []))
    out = table.copy()
    out["season"] = season_of(out[time], out[lat] if hemisphere_aware else None, hemisphere_aware=hemisphere_aware)
    return out


def _require(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        msg = f"The table lacks column(s) {missing} (has {list(table.columns)})."
        raise MissingVariableError(msg)


def _as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _grouped(table: pd.DataFrame, keys: list[str], obs: str, pred: str, min_obs: int, ci: bool) -> pd.DataFrame:
    """Metrics per combination of ``keys`` (index: the keys)."""
    sub = table.dropna(subset=keys)
    codes = sub.groupby(keys, sort=True, observed=True, dropna=True).ngroup().to_numpy()
    res = metrics_table(
        sub[obs].to_numpy(dtype="float64"), sub[pred].to_numpy(dtype="float64"), codes, min_obs=min_obs, ci=ci
    )
    labels = sub[keys].assign(_code=codes).drop_duplicates("_code").set_index("_code").loc[res.index.to_numpy()]
    res.index = (
        pd.Index(labels[keys[0]].to_numpy(), name=keys[0]) if len(keys) == 1 else pd.MultiIndex.from_frame(labels[keys])
    )
    return res


def stratified_metrics(
    table: pd.DataFrame,
    by: str | Sequence[str],
    *,
    obs: str = "obs",
    pred: str = "pred",
    station: str = "station_id",
    how: Literal["pooled", "station_median"] = "pooled",
    min_obs: int = 10,
    ci: bool = True,
) -> pd.DataFrame:
    """Metrics of each stratum of a long table of pairs.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table with ``obs``, ``pred``, the ``by`` columns and ``station``.
    by : str or sequence of str
        Stratum columns, e.g. ``"layer"``, ``"season"`` (see :func:`assign_season`),
        ``"land_cover"``, ``"climate_zone"`` or ``["layer", "season"]``. Rows with a
        missing stratum are left out.
    obs, pred, station : str
        Column names.
    how : {"pooled", "station_median"}
        Score all pairs of a stratum together, or take the median of per-station scores.
    min_obs : int
        Minimum pairs per score (per stratum, or per station and stratum).
    ci : bool
        Analytical intervals (``pooled`` only; a median of intervals is not one).

    Returns
    -------
    pandas.DataFrame
        Index: the stratum values; columns as :func:`soilfuse.validate.metrics.metrics_table`
        plus ``n_stations``.
    """
    keys = _as_list(by)
    _require(table, [obs, pred, station, *keys])
    if how == "pooled":
        res = _grouped(table, keys, obs, pred, min_obs, ci)
        n_st = table.dropna(subset=keys).groupby(keys, sort=True, observed=True)[station].nunique()
        res["n_stations"] = n_st.reindex(res.index).to_numpy().astype("float64")
        return res
    if how == "station_median":
        per = _grouped(table, [*keys, station], obs, pred, min_obs, ci=False)
        per = per.dropna(subset=["R", "RMSD"], how="all")
        levels = list(range(len(keys)))
        res = per.groupby(level=levels, sort=True).median(numeric_only=True)
        res["n_stations"] = per.groupby(level=levels, sort=True).size().astype("float64")
        res.index.names = keys
        return res
    msg = f"how must be 'pooled' or 'station_median'; got {how!r}."
    raise DataError(msg)


def station_metrics(
    table: pd.DataFrame,
    stations: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] = (),
    obs: str = "obs",
    pred: str = "pred",
    station: str = "station_id",
    min_obs: int = 10,
    ci: bool = False,
) -> pd.DataFrame:
    """One row of metrics per station (and per ``by`` stratum), with the station's metadata.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table of pairs (``obs``, ``pred``, ``station`` and the ``by`` columns).
    stations : pandas.DataFrame, optional
        Station metadata (``station_id``, ``lat``, ``lon`` and any of ``network``,
        ``elevation``, ``land_cover``, ``climate_zone``) joined onto the result, ready
        for maps.
    by : str or sequence of str
        Extra strata, e.g. ``"layer"`` for one row per station and layer.
    obs, pred, station, min_obs, ci
        As in :func:`stratified_metrics`.

    Returns
    -------
    pandas.DataFrame
        Flat columns: ``station_id``, the ``by`` columns, the metadata, then the metrics.
    """
    keys = [station, *_as_list(by)]
    _require(table, [obs, pred, *keys])
    res = _grouped(table, keys, obs, pred, min_obs, ci).reset_index()
    res[station] = res[station].astype(str)
    if stations is not None:
        _require(stations, ["station_id", "lat", "lon"])
        meta_cols = [
            c
            for c in ("station_id", "network", "lat", "lon", "elevation", "land_cover", "climate_zone")
            if c in stations.columns
        ]
        meta = stations[meta_cols].copy()
        meta["station_id"] = meta["station_id"].astype(str)
        meta = meta.drop(columns=[c for c in meta_cols if c in res.columns and c != "station_id"])
        res = res.merge(meta.rename(columns={"station_id": station}), on=station, how="left")
        front = [c for c in dict.fromkeys((*keys, *meta_cols)) if c in res.columns]
        res = res[front + [c for c in res.columns if c not in front]]
    return res
