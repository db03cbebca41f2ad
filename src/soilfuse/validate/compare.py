"""Product against stations: match, score, tabulate and plot (``soilfuse validate``).

:func:`match_product` pairs a gridded product with station observations (same UTC
day, the product cell at each station, each sensor depth assigned to one product
layer) into a long table. :func:`validate_product` runs the whole comparison and writes
metric tables (CSV and Parquet) and figures (PNG) to a folder; :func:`validate_files`
is its front for paths (``soilfuse validate PRODUCT STATIONS --out DIR``):

===============================  =====================================================
file                             content
===============================  =====================================================
``tables/pairs.parquet``         every matched station-day-layer: ``obs``, ``pred``, keys
``tables/metrics_overall.*``     pooled and median-of-stations metrics, all layers
``tables/metrics_by_layer.*``    per product layer, ``how`` = pooled / station_median
``tables/metrics_by_season.*``   per layer and season (DJF, MAM, JJA, SON)
``tables/metrics_by_land_cover.*`` / ``metrics_by_climate_zone.*``  when the stations carry them
``tables/metrics_stations.*``    one row per station and layer, with lat/lon (maps)
``tables/metrics_stations_season.*``  one row per station, layer and season
``figures/scatter_<layer>.png``  density scatter (hexbin) per layer
``figures/map_<metric>_<layer>.png``  station maps of R, urmsd, BIAS (and G_down)
``figures/box_<stratum>_<metric>.png``  per-station metrics by season / land cover
===============================  =====================================================

Depth matching. Product layers come from ``depth_bnds`` (or the ``layer`` labels) of
a ``depth`` dimension. A station sensor ``[depth_from, depth_to]`` (cm) belongs to the
thinnest product layer containing its midpoint (ties go to the upper layer); a point
depth product (``top == bottom``) takes sensors whose midpoint lies within
``depth_tolerance`` cm. ``depth_map`` overrides this with explicit sensor-label to
layer-label pairs; a product without a ``depth`` dimension declares its layer with
``product_layer=(top, bottom)``.

Usage
-----
>>> paths = validate_product(product, (stations, observations), "runs/x/validation",
...                          variable="sm")  # doctest: +SKIP
>>> sorted(paths)[:2]  # doctest: +SKIP
['figures/box_season_R.png', 'figures/box_season_urmsd.png']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.io.cf import layer_label, parse_layer
from soilfuse.io.ismn import read_ismn
from soilfuse.io.stations import read_stations
from soilfuse.report.figures import density_scatter, metric_boxplot, save_figure, station_map
from soilfuse.sample import Method, sample_at_stations, select_observations
from soilfuse.stations.ingest import daily_means
from soilfuse.validate.metrics import g_down_table, pooled_and_median
from soilfuse.validate.summaries import (
    CLIMATE_ZONE_NAMES,
    LAND_COVER_NAMES,
    SEASONS,
    assign_season,
    station_metrics,
    stratified_metrics,
)

__all__ = ["StationTables", "match_product", "validate_files", "validate_product"]

logger = logging.getLogger(__name__)

_MAP_METRICS = ("R", "urmsd", "BIAS")


@runtime_checkable
class StationTables(Protocol):
    """Anything holding the two station tables (e.g. ``soilfuse.io.stations.StationData``)."""

    stations: pd.DataFrame
    observations: pd.DataFrame


def _tables(stations: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(stations, StationTables):
        return stations.stations, stations.observations
    if isinstance(stations, Mapping) and {"stations", "observations"} <= set(stations):
        return stations["stations"], stations["observations"]
    if (
        isinstance(stations, (tuple, list))
        and len(stations) == 2
        and all(isinstance(t, pd.DataFrame) for t in stations)
    ):
        return stations[0], stations[1]
    msg = (
        f"stations must hold a stations and an observations table: an object with .stations and "
        f".observations (StationData), a mapping with those keys, or a (stations, observations) tuple; "
        f"got {type(stations).__name__}."
    )
    raise DataError(msg)


def _product_layers(da: xr.DataArray, ds: xr.Dataset | None) -> list[tuple[float, float]]:
    """``(top, bottom)`` in cm of each product level along ``depth``."""
    bnds = None
    for src in (da.coords, ds.variables if ds is not None else {}):
        if "depth_bnds" in src:
            bnds = np.asarray(src["depth_bnds"].values, dtype="float64")
            break
    if bnds is not None and bnds.shape == (da.sizes["depth"], 2):
        return [(float(t), float(b)) for t, b in bnds]
    if "layer" in da.coords:
        return [parse_layer(str(lab)) for lab in da["layer"].values]
    return [(float(d), float(d)) for d in da["depth"].values]


def _assign_layers(
    sensors: pd.DataFrame,
    layers: Sequence[tuple[float, float]],
    depth_map: Mapping[str, str] | None,
    depth_tolerance: float,
) -> pd.Series:
    """Index into ``layers`` for each distinct sensor (``-1`` when none fits)."""
    labels = [layer_label(t, b) for t, b in layers]
    out = []
    for top, bottom in zip(sensors["depth_from"], sensors["depth_to"], strict=True):
        if depth_map is not None:
            target = depth_map.get(layer_label(top, bottom))
            out.append(labels.index(target) if target in labels else -1)
            continue
        mid = (top + bottom) / 2.0
        best, best_thick = -1, np.inf
        for j, (lt, lb) in enumerate(layers):
            inside = (lt - depth_tolerance <= mid <= lb + depth_tolerance) if lt == lb else (lt <= mid <= lb)
            if inside and (lb - lt) < best_thick:
                best, best_thick = j, lb - lt
        out.append(best)
    return pd.Series(out, index=sensors.index)


def match_product(
    product: xr.Dataset,
    stations: Any,
    *,
    variable: str = "sm",
    depth_map: Mapping[str, str] | None = None,
    product_layer: tuple[float, float] | None = None,
    depth_tolerance: float = 0.0,
    method: Method = "nearest",
    good_flags: Sequence[str] | None = ("G",),
) -> pd.DataFrame:
    """Pair a gridded product with station observations.

    Parameters
    ----------
    product : xarray.Dataset
        Canonical product with ``variable`` on ``(time, [depth,] y, x)``; may be lazy
        (only the station cells on observed days are read).
    stations : StationTables or (stations, observations) tuple or mapping
        The station tables of ``docs/conventions.md``.
    variable : str
        Product variable and observation ``variable`` (``"sm"`` or ``"st"``).
    depth_map : mapping of str to str, optional
        Sensor layer label (e.g. ``"0-5cm"``, ``"5cm"``) to product layer label.
    product_layer : (float, float), optional
        ``(top, bottom)`` in cm of a product without a ``depth`` dimension.
    depth_tolerance : float
        cm around point-depth product levels.
    method : {"nearest", "bilinear"}
        Sampling of the product at the stations.
    good_flags : sequence of str or None
        Observation flags kept.

    Returns
    -------
    pandas.DataFrame
        ``station_id``, ``time``, ``depth_from``, ``depth_to``, ``layer`` (product layer
        label), ``obs``, ``pred`` and the station's ``lat``, ``lon`` (and ``land_cover``,
        ``climate_zone`` when known); only pairs where both values are finite.

    Raises
    ------
    MissingVariableError
        If ``variable`` is not in the product.
    DataError
        If no sensor fits a product layer, or nothing overlaps in time or space.
    """
    st_table, obs_table = _tables(stations)
    if variable not in product.data_vars:
        msg = f"The product has no variable {variable!r} (it has {list(product.data_vars)}); pass variable=..."
        raise MissingVariableError(msg)
    da = product[variable]
    if "time" not in da.dims:
        msg = f"Product variable {variable!r} has no time dimension (dims {da.dims})."
        raise DataError(msg)
    obs = select_observations(obs_table, variable, good_flags=good_flags)
    if "depth" in da.dims:
        layers = _product_layers(da, product)
    elif product_layer is not None:
        layers = [(float(product_layer[0]), float(product_layer[1]))]
    else:
        depths = sorted({layer_label(t, b) for t, b in zip(obs["depth_from"], obs["depth_to"], strict=True)})
        msg = (
            f"Product variable {variable!r} has no depth dimension, so its layer must be declared: pass "
            f"product_layer=(top_cm, bottom_cm). Station sensors present: {depths}."
        )
        raise DataError(msg)
    sensors = obs[["depth_from", "depth_to"]].drop_duplicates().reset_index(drop=True)
    sensors["level"] = _assign_layers(sensors, layers, depth_map, depth_tolerance)
    unmatched = sensors.loc[sensors["level"] < 0]
    if len(unmatched):
        logger.info(
            "Sensor depths without a product layer are skipped: %s",
            [layer_label(t, b) for t, b in zip(unmatched["depth_from"], unmatched["depth_to"], strict=True)],
        )
    obs = obs.merge(sensors, on=["depth_from", "depth_to"]).query("level >= 0")
    if obs.empty:
        names = [layer_label(t, b) for t, b in layers]
        msg = f"No station sensor depth falls in a product layer {names}; pass depth_map=... or depth_tolerance=..."
        raise DataError(msg)
    days = np.intersect1d(obs["time"].to_numpy(), da["time"].values.astype("datetime64[ns]"))
    if days.size == 0:
        msg = "The product and the observations share no day; check the time ranges."
        raise DataError(msg)
    st = st_table.copy()
    st["station_id"] = st["station_id"].astype(str)
    st = st.loc[st["station_id"].isin(obs["station_id"].unique())]
    pts = sample_at_stations(da.sel(time=days).to_dataset(name=variable), st, method=method)[variable].compute()
    if "depth" not in pts.dims:
        pts = pts.expand_dims(depth=[0])
    pts = pts.assign_coords(depth=np.arange(pts.sizes["depth"])).transpose("station", "time", "depth")
    pred = (
        pts.drop_vars([c for c in pts.coords if c not in ("station", "time", "depth")])
        .to_dataframe(name="pred")
        .reset_index()
    )
    pred = pred.rename(columns={"station": "station_id", "depth": "level"})
    pred["station_id"] = pred["station_id"].astype(str)
    pred["time"] = pred["time"].to_numpy().astype("datetime64[ns]")
    pairs = obs.merge(pred, on=["station_id", "time", "level"], how="inner").rename(columns={"value": "obs"})
    pairs = pairs.loc[np.isfinite(pairs["obs"]) & np.isfinite(pairs["pred"])]
    labels = np.array([layer_label(t, b) for t, b in layers], dtype=object)
    pairs["layer"] = labels[pairs["level"].to_numpy()]
    meta = [c for c in ("station_id", "lat", "lon", "land_cover", "climate_zone") if c in st.columns]
    pairs = pairs.merge(st[meta], on="station_id", how="left")
    cols = ["station_id", "time", "depth_from", "depth_to", "layer", "obs", "pred", *meta[1:]]
    return pairs[cols].sort_values(["station_id", "layer", "time"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------- writing
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _write_table(table: pd.DataFrame, out: Path, name: str, paths: dict[str, Path], formats: Sequence[str]) -> None:
    flat = table.reset_index() if not isinstance(table.index, pd.RangeIndex) else table
    for fmt in formats:
        path = out / "tables" / f"{name}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            flat.to_csv(path, index=False)
        elif fmt == "parquet":
            flat.to_parquet(path, index=False)
        else:
            msg = f"Unknown table format {fmt!r}; use 'csv' and/or 'parquet'."
            raise DataError(msg)
        paths[f"tables/{name}.{fmt}"] = path


def _both(table: pd.DataFrame, by: list[str], min_obs: int) -> pd.DataFrame:
    pooled = stratified_metrics(table, by, how="pooled", min_obs=min_obs)
    median = stratified_metrics(table, by, how="station_median", min_obs=min_obs)
    parts = [pooled.reset_index().assign(how="pooled"), median.reset_index().assign(how="station_median")]
    out = pd.concat(parts, ignore_index=True)
    return out[[*by, "how"] + [c for c in out.columns if c not in (*by, "how")]]


def _named(table: pd.DataFrame, column: str, names: Mapping[int, str]) -> pd.DataFrame:
    if column in table.columns:
        codes = pd.to_numeric(table[column], errors="coerce")
        table = table.assign(
            **{f"{column}_name": codes.map(lambda c: names.get(int(c), str(c)) if np.isfinite(c) else None)}
        )
    return table


def validate_product(
    product: xr.Dataset,
    stations: Any,
    out_dir: str | Path,
    *,
    variable: str = "sm",
    depth_map: Mapping[str, str] | None = None,
    product_layer: tuple[float, float] | None = None,
    depth_tolerance: float = 0.0,
    method: Method = "nearest",
    good_flags: Sequence[str] | None = ("G",),
    coarse: xr.Dataset | None = None,
    min_obs: int = 10,
    hemisphere_aware: bool = False,
    formats: Sequence[str] = ("csv", "parquet"),
    figures: bool = True,
) -> dict[str, Path]:
    """Validate a gridded product against stations; write metric tables and figures.

    Parameters
    ----------
    product : xarray.Dataset
        Canonical product (lazy is fine) holding ``variable``.
    stations : StationTables or (stations, observations) tuple or mapping
        Station tables (``soilfuse.io.stations.StationData`` fits).
    out_dir : str or pathlib.Path
        Folder to write ``tables/`` and ``figures/`` into (created).
    variable, depth_map, product_layer, depth_tolerance, method, good_flags
        See :func:`match_product`.
    coarse : xarray.Dataset, optional
        The coarse product that was downscaled (same variable and layers); adds the
        per-station downscaling gain ``G_down`` (Merlin et al., 2015) to the station
        table, and its map.
    min_obs : int
        Minimum pairs for a metric (per station, or per stratum).
    hemisphere_aware : bool
        Name seasons winter/spring/summer/autumn by hemisphere instead of DJF/MAM/JJA/SON.
    formats : sequence of {"csv", "parquet"}
        Formats of the metric tables (pairs are always Parquet).
    figures : bool
        Draw the figures.

    Returns
    -------
    dict of str to pathlib.Path
        Every file written, keyed by its path relative to ``out_dir``
        (e.g. ``"tables/metrics_by_layer.csv"``, ``"figures/scatter_0-5cm.png"``).

    Raises
    ------
    MissingVariableError, DataError
        See :func:`match_product`.
    """
    out = Path(out_dir)
    kwargs: dict[str, Any] = {
        "variable": variable,
        "depth_map": depth_map,
        "product_layer": product_layer,
        "depth_tolerance": depth_tolerance,
        "method": method,
        "good_flags": good_flags,
    }
    pairs = match_product(product, stations, **kwargs)
    if pairs.empty:
        msg = "No pair of finite product and station values; nothing to validate."
        raise DataError(msg)
    st_table = _tables(stations)[0].copy()
    st_table["station_id"] = st_table["station_id"].astype(str)
    pairs = assign_season(pairs, hemisphere_aware=hemisphere_aware)
    logger.info("Validating %s: %d pairs at %d stations", variable, len(pairs), pairs["station_id"].nunique())
    paths: dict[str, Path] = {}
    pairs_path = out / "tables" / "pairs.parquet"
    pairs_path.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_parquet(pairs_path, index=False)
    paths["tables/pairs.parquet"] = pairs_path

    overall = pooled_and_median(
        pairs["obs"], pairs["pred"], pairs["station_id"] + "|" + pairs["layer"], min_obs=min_obs
    )
    _write_table(overall, out, "metrics_overall", paths, formats)
    by_layer = _both(pairs, ["layer"], min_obs)
    _write_table(by_layer, out, "metrics_by_layer", paths, formats)
    season_order = ["winter", "spring", "summer", "autumn"] if hemisphere_aware else list(SEASONS)
    _write_table(_both(pairs, ["layer", "season"], min_obs), out, "metrics_by_season", paths, formats)
    for column, names in (("land_cover", LAND_COVER_NAMES), ("climate_zone", CLIMATE_ZONE_NAMES)):
        if column in pairs.columns and pairs[column].notna().any():
            _write_table(
                _named(_both(pairs, ["layer", column], min_obs), column, names),
                out,
                f"metrics_by_{column}",
                paths,
                formats,
            )

    per_station = station_metrics(pairs, st_table, by="layer", min_obs=min_obs)
    if coarse is not None:
        coarse_pairs = match_product(coarse, stations, **kwargs)[
            ["station_id", "time", "layer", "depth_from", "depth_to", "pred"]
        ]
        triple = pairs.merge(
            coarse_pairs.rename(columns={"pred": "pred_coarse"}),
            on=["station_id", "time", "layer", "depth_from", "depth_to"],
        )
        gd = g_down_table(
            triple["obs"],
            triple["pred"],
            triple["pred_coarse"],
            triple["station_id"] + "|" + triple["layer"],
            min_obs=min_obs,
        )
        key = per_station["station_id"] + "|" + per_station["layer"]
        for col in ("G_down", "G_R", "G_B", "G_S"):
            per_station[col] = gd[col].reindex(key.to_numpy()).to_numpy()
    per_station = _named(_named(per_station, "land_cover", LAND_COVER_NAMES), "climate_zone", CLIMATE_ZONE_NAMES)
    _write_table(per_station, out, "metrics_stations", paths, formats)
    per_station_season = station_metrics(pairs, st_table, by=["layer", "season"], min_obs=min_obs)
    _write_table(per_station_season, out, "metrics_stations_season", paths, formats)

    if figures:
        _draw(
            pairs,
            per_station,
            per_station_season,
            by_layer,
            out,
            paths,
            product[variable].attrs.get("units", ""),
            season_order,
            coarse is not None,
        )
    return paths


def _is_station_tables(path: Path) -> bool:
    folder = path if path.is_dir() else path.parent
    return any(
        (folder / f"{name}.{ext}").is_file() for name in ("stations", "observations") for ext in ("parquet", "csv")
    )


def validate_files(
    product: str | Path,
    stations: str | Path,
    out_dir: str | Path,
    *,
    variable: str = "sm",
    **kwargs: Any,
) -> dict[str, Path]:
    """:func:`validate_product` on files: a product file or store and a station folder.

    Parameters
    ----------
    product : str or pathlib.Path
        Zarr store, NetCDF/HDF5 file or raster, opened lazily with
        :func:`soilfuse.io.gridded.open_gridded`.
    stations : str or pathlib.Path
        A folder (or one file) of soilfuse station tables
        (:func:`soilfuse.io.stations.read_stations`), or ISMN files, a folder of them
        or a zip (:func:`soilfuse.io.ismn.read_ismn`). Sub-daily records are averaged
        to UTC days with :func:`soilfuse.stations.ingest.daily_means` (good flags,
        coverage of at least half a day).
    out_dir : str or pathlib.Path
        Folder for ``tables/`` and ``figures/``.
    variable : {"sm", "st"}
        Variable to validate.
    **kwargs
        Passed to :func:`validate_product` (``depth_map``, ``product_layer``,
        ``min_obs``...).

    Returns
    -------
    dict of str to pathlib.Path
        Files written, keyed by their path relative to ``out_dir``.
    """
    from soilfuse.io.products.dispatch import open_product

    ds = open_product(product)
    src = Path(stations)
    data = read_stations(src) if _is_station_tables(src) else read_ismn(src, variables=(variable,))
    obs = data.observations
    times = pd.to_datetime(obs["time"])
    if not (times == times.dt.floor("D")).all():
        logger.info("Averaging sub-daily station records to UTC days")
        obs = daily_means(data)
    return validate_product(ds, (data.stations, obs), out_dir, variable=variable, **kwargs)


def _draw(
    pairs: pd.DataFrame,
    per_station: pd.DataFrame,
    per_station_season: pd.DataFrame,
    by_layer: pd.DataFrame,
    out: Path,
    paths: dict[str, Path],
    units: str,
    season_order: Sequence[str],
    with_g_down: bool,
) -> None:
    fig_dir = out / "figures"
    pooled = by_layer.loc[by_layer["how"] == "pooled"].set_index("layer")
    for layer, sub in pairs.groupby("layer", sort=True):
        row = pooled.loc[layer]
        note = {
            "n": float(row["n_obs"]),
            "R": float(row["R"]),
            "RMSE": float(row["RMSD"]),
            "ubRMSE": float(row["urmsd"]),
            "bias": float(row["BIAS"]),
        }
        fig = density_scatter(sub["obs"], sub["pred"], title=f"{layer}", units=units, annotate=note)
        rel = f"figures/scatter_{_safe(str(layer))}.png"
        paths[rel] = save_figure(fig, fig_dir / Path(rel).name)
        stations_layer = per_station.loc[per_station["layer"] == layer]
        for metric in (*_MAP_METRICS, *(("G_down",) if with_g_down else ())):
            if metric in stations_layer.columns and np.isfinite(stations_layer[metric].to_numpy(dtype="float64")).any():
                fig = station_map(stations_layer, metric, title=f"{metric}, {layer}")
                rel = f"figures/map_{metric}_{_safe(str(layer))}.png"
                paths[rel] = save_figure(fig, fig_dir / Path(rel).name)
    strata: list[tuple[str, pd.DataFrame, Sequence[Any] | None, Mapping[Any, str] | None]] = [
        ("season", per_station_season, season_order, None)
    ]
    if "land_cover" in per_station.columns and per_station["land_cover"].notna().any():
        strata.append(("land_cover", per_station, None, LAND_COVER_NAMES))
    for by, table, order, names in strata:
        for metric in ("R", "urmsd"):
            if np.isfinite(table[metric].to_numpy(dtype="float64")).any():
                fig = metric_boxplot(table, metric, by, order=order, labels=names)
                rel = f"figures/box_{by}_{metric}.png"
                paths[rel] = save_figure(fig, fig_dir / Path(rel).name)
