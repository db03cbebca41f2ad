"""Training tables: gridded covariates sampled at stations or on the coarse grid.

Two kinds of recipe learn from two kinds of samples:

* **station-trained** recipes (``quadtree-st``, ``insitu-rf-sm``) learn the in-situ
  value from covariates at the station's cell: :func:`sample_at_stations` gathers the
  cells lazily (only the Dask chunks that hold a station are ever read),
  :func:`extract_at_stations` turns them into a long table, and
  :func:`build_training_table` joins them with the daily observations and the keys a
  cross-validation needs (``station_id``, ``time``, ``lat``, ``lon``, ``block``,
  ``climate_zone``, ``land_cover``, ``depth_from``/``depth_to``/``layer``, ``target``);
* **satellite-trained** recipes (``ml-downscale``, ``pm-downscale``) learn the coarse
  satellite value from covariates aggregated to the coarse grid:
  :func:`extract_at_coarse_pixels` gives one row per valid coarse pixel-day.

Stations are a table with ``station_id``, ``lat``, ``lon`` (degrees) and optional
``land_cover`` / ``climate_zone`` codes; observations are the long daily table of
``docs/conventions.md`` (``station_id``, ``time``, ``depth_from``, ``depth_to``,
``variable``, ``value``, ``flag``).

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr
>>> from soilfuse.grid import Grid
>>> from soilfuse.io.canonical import with_grid
>>> grid = Grid.latlon((100.0, 102.0, 30.0, 32.0), 0.5)
>>> ds = with_grid(xr.Dataset({"elevation": (("y", "x"), np.arange(16.0).reshape(4, 4))}), grid)
>>> stations = pd.DataFrame({"station_id": ["a", "b"], "lat": [31.9, 30.1], "lon": [100.1, 101.9]})
>>> extract_at_stations(ds, stations)["elevation"].tolist()
[0.0, 15.0]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer

from soilfuse._typing import FloatArray, IntArray
from soilfuse.exceptions import DataError, GridError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io.cf import layer_label

__all__ = [
    "block_id",
    "build_training_table",
    "extract_at_coarse_pixels",
    "extract_at_stations",
    "sample_at_stations",
    "select_observations",
]

logger = logging.getLogger(__name__)

Method = Literal["nearest", "bilinear"]
_KEYS = ["station_id", "time", "lat", "lon", "block", "climate_zone", "land_cover", "depth_from", "depth_to", "layer"]


#: Factor separating the latitude and longitude block indices in :func:`block_id`.
_BLOCK_FACTOR = 1_000_000


def block_id(lat: npt.ArrayLike, lon: npt.ArrayLike, size: float = 1.0) -> IntArray:
    """Spatial block of each point: ``floor(lat/size) * 1_000_000 + floor(lon/size)``.

    Points share a block when both ``floor(lat / size)`` and ``floor(lon / size)``
    agree (Wang et al., 2025, use 1° blocks). The two indices are packed into one
    integer that is stable across datasets; recover them with
    ``i_lat = round(code / 1e6)`` and ``i_lon = code - i_lat * 1_000_000``.

    Parameters
    ----------
    lat, lon : array_like
        Latitude and longitude in degrees.
    size : float
        Block edge in degrees; at least 0.001 so that the packing stays unique.

    Returns
    -------
    numpy.ndarray of int64
        One block code per point.

    Raises
    ------
    DataError
        If coordinates are missing or ``size`` is out of range.
    """
    size = float(size)
    if not size >= 0.001:
        msg = f"block size must be at least 0.001 degrees; got {size}."
        raise DataError(msg)
    la = np.asarray(lat, dtype="float64")
    lo = np.asarray(lon, dtype="float64")
    if not (np.isfinite(la).all() and np.isfinite(lo).all()):
        msg = "lat/lon contain missing values; drop those rows before assigning blocks."
        raise DataError(msg)
    i_lat = np.floor(la / size).astype("int64")
    i_lon = np.floor(lo / size).astype("int64")
    return i_lat * _BLOCK_FACTOR + i_lon


# ---------------------------------------------------------------------- stations
def _check_stations(stations: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("station_id", "lat", "lon") if c not in stations.columns]
    if missing:
        msg = (
            f"The stations table lacks column(s) {missing} (has {list(stations.columns)}); "
            f"see 'Station data model' in docs/conventions.md."
        )
        raise MissingVariableError(msg)
    out = stations.copy()
    out["station_id"] = out["station_id"].astype(str)
    if out["station_id"].duplicated().any():
        dup = out.loc[out["station_id"].duplicated(), "station_id"].unique()[:5].tolist()
        msg = f"station_id must be unique in the stations table; repeated: {dup}."
        raise DataError(msg)
    bad = ~(np.isfinite(out["lat"].to_numpy(dtype="float64")) & np.isfinite(out["lon"].to_numpy(dtype="float64")))
    if bad.any():
        logger.warning(
            "Dropping %d station(s) without coordinates: %s", int(bad.sum()), out.loc[bad, "station_id"].tolist()[:5]
        )
        out = out.loc[~bad]
    return out


def _spatial_vars(ds: xr.Dataset) -> xr.Dataset:
    names = [n for n, v in ds.data_vars.items() if {"y", "x"} <= set(v.dims)]
    if not names:
        msg = f"The dataset has no variable on (y, x) (variables: {list(ds.data_vars)})."
        raise MissingVariableError(msg)
    return ds[names]


def _points_in_grid_crs(grid: Grid, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    wgs84 = CRS.from_epsg(4326)
    if grid.crs.equals(wgs84) or (grid.is_geographic and grid.crs.ellipsoid == wgs84.ellipsoid):
        return lon, lat
    tr = Transformer.from_crs(wgs84, grid.crs, always_xy=True)
    x, y = tr.transform(lon, lat)
    return np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")


def sample_at_stations(
    ds: xr.Dataset,
    stations: pd.DataFrame,
    *,
    method: Method = "nearest",
) -> xr.Dataset:
    """Values of every gridded variable at the stations, lazily (a ``station`` dimension).

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (dims ``(..., y, x)``, CRS readable by
        :func:`soilfuse.grid.crs_of`). Variables without ``y``/``x`` are dropped.
    stations : pandas.DataFrame
        ``station_id``, ``lat``, ``lon`` (degrees, WGS 84).
    method : {"nearest", "bilinear"}
        ``"nearest"`` takes the cell containing the station; ``"bilinear"`` weights the
        four surrounding cell centres (missing neighbours are left out and the weights
        renormalised; beyond the outermost centres the edge value is kept).

    Returns
    -------
    xarray.Dataset
        Variables with ``(y, x)`` replaced by ``station`` (coordinate values are the
        station ids), plus ``lat``/``lon`` coordinates; for ``"nearest"`` also
        ``cell_x``/``cell_y``, the centre of the chosen cell in grid CRS units.
        Stations outside the grid are left out (logged). Dask-backed inputs stay lazy:
        only the chunks holding stations are read when the result is computed.

    Raises
    ------
    MissingVariableError
        If the stations table lacks columns or the dataset has no gridded variable.
    DataError
        If no station falls inside the grid, or ``method`` is unknown.
    """
    if method not in ("nearest", "bilinear"):
        msg = f"method must be 'nearest' or 'bilinear'; got {method!r}."
        raise DataError(msg)
    st = _check_stations(stations)
    sub = _spatial_vars(ds)
    grid = Grid.from_dataset(sub)
    px, py = _points_in_grid_crs(grid, st["lon"].to_numpy(dtype="float64"), st["lat"].to_numpy(dtype="float64"))
    rows, cols = grid.index(px, py)
    inside = rows >= 0
    if not inside.any():
        msg = f"None of the {len(st)} stations lies inside the grid {grid!r}; check the region and the CRS."
        raise DataError(msg)
    if not inside.all():
        logger.warning(
            "%d of %d stations lie outside the grid and are skipped: %s",
            int((~inside).sum()),
            len(st),
            st.loc[~inside, "station_id"].tolist()[:10],
        )
    st = st.loc[inside]
    px, py, rows, cols = px[inside], py[inside], rows[inside], cols[inside]
    ny, nx = grid.shape
    flip = sub.sizes["y"] > 1 and float(sub["y"][0]) < float(sub["y"][-1])

    def gather(r: np.ndarray, c: np.ndarray) -> xr.Dataset:
        r_pos = (ny - 1 - r) if flip else r
        return sub.isel(y=xr.DataArray(r_pos, dims="station"), x=xr.DataArray(c, dims="station"))

    if method == "nearest":
        out = gather(rows, cols).drop_vars(["y", "x"], errors="ignore")
        out = out.assign_coords(
            cell_x=("station", grid.x[cols]),
            cell_y=("station", grid.y[rows]),
        )
    else:
        tr = grid.transform  # axis-aligned, so cell-centre positions are a shift and a scale
        cf = (px - tr.c) / tr.a - 0.5
        rf = (py - tr.f) / tr.e - 0.5
        c0 = np.floor(cf).astype("int64")
        r0 = np.floor(rf).astype("int64")
        wc, wr = cf - c0, rf - r0
        c0c, c1c = np.clip(c0, 0, nx - 1), np.clip(c0 + 1, 0, nx - 1)
        r0c, r1c = np.clip(r0, 0, ny - 1), np.clip(r0 + 1, 0, ny - 1)
        corners = (
            (r0c, c0c, (1 - wr) * (1 - wc)),
            (r0c, c1c, (1 - wr) * wc),
            (r1c, c0c, wr * (1 - wc)),
            (r1c, c1c, wr * wc),
        )
        terms, masses = [], []
        for r, c, w in corners:
            vals = gather(r, c).drop_vars(["y", "x"], errors="ignore")
            weight = xr.DataArray(w, dims="station")
            terms.append(vals.fillna(0.0) * weight)
            masses.append(vals.notnull() * weight)
        num = terms[0] + terms[1] + terms[2] + terms[3]
        den = masses[0] + masses[1] + masses[2] + masses[3]
        out = num / den.where(den > 0)
        for name in out.data_vars:
            out[name].attrs = dict(sub[name].attrs)
    out = out.assign_coords(
        station=st["station_id"].to_numpy(),
        lat=("station", st["lat"].to_numpy(dtype="float64")),
        lon=("station", st["lon"].to_numpy(dtype="float64")),
    )
    for name in out.data_vars:
        out[name].attrs.pop("grid_mapping", None)
    return out.drop_vars("spatial_ref", errors="ignore")


def _flat_columns(ds: xr.Dataset, keep: Sequence[str]) -> xr.Dataset:
    """Split every dimension other than ``keep`` into separate variables (``var_<label>``)."""
    out: dict[str, xr.DataArray] = {}
    for name, da in ds.data_vars.items():
        extra = [d for d in da.dims if d not in keep]
        if not extra:
            out[str(name)] = da
            continue
        stacked = da.stack(_cell=extra)
        for i in range(stacked.sizes["_cell"]):
            item = stacked.isel(_cell=i)
            labels = []
            for d in extra:
                coord = item["layer"] if d == "depth" and "layer" in item.coords else item[d]
                labels.append(str(coord.values))
            out[f"{name}_{'_'.join(labels)}"] = item.drop_vars(["_cell", *extra, "layer"], errors="ignore")
    return xr.Dataset(out)


def extract_at_stations(
    ds: xr.Dataset,
    stations: pd.DataFrame,
    *,
    method: Method = "nearest",
) -> pd.DataFrame:
    """Long table of gridded values at stations: ``station_id``, ``time``, one column per variable.

    Only the cells at the stations are computed (see :func:`sample_at_stations`);
    subset ``ds`` in time first to read fewer days. Static ``(y, x)`` variables are
    repeated on every day. Variables with further dimensions (e.g. ``depth``) become
    one column per level, named ``<var>_<layer label or coordinate value>``.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical gridded covariates.
    stations : pandas.DataFrame
        ``station_id``, ``lat``, ``lon``.
    method : {"nearest", "bilinear"}
        See :func:`sample_at_stations`.

    Returns
    -------
    pandas.DataFrame
        One row per station (and day, when ``ds`` has ``time``).
    """
    pts = sample_at_stations(ds, stations, method=method)
    pts = pts.drop_vars(["lat", "lon", "cell_x", "cell_y"], errors="ignore")
    keep = ["station", "time"] if "time" in pts.dims else ["station"]
    flat = _flat_columns(pts, keep).compute()
    frame = flat.to_dataframe(dim_order=keep).reset_index()
    frame = frame.rename(columns={"station": "station_id"})
    frame["station_id"] = frame["station_id"].astype(str)
    extra = [c for c in frame.columns if c not in ("station_id", "time") and c not in flat.data_vars]
    return frame.drop(columns=extra)


# ---------------------------------------------------------------------- training table
def select_observations(
    observations: pd.DataFrame, variable: str, *, good_flags: Sequence[str] | None = ("G",)
) -> pd.DataFrame:
    """Good daily values of one variable: ``station_id``, ``time`` (UTC day), ``depth_from``, ``depth_to``, ``value``.

    Keeps rows of ``variable`` whose ``flag`` (when the column exists) is in
    ``good_flags`` and whose value is finite; times are reduced to their UTC day and
    repeated station-day-depth rows averaged (daily tables have none).

    Raises
    ------
    MissingVariableError
        If a column of the observations table is missing.
    DataError
        If nothing is left.
    """
    need = ["station_id", "time", "depth_from", "depth_to", "variable", "value"]
    missing = [c for c in need if c not in observations.columns]
    if missing:
        msg = (
            f"The observations table lacks column(s) {missing} (has {list(observations.columns)}); "
            f"see docs/conventions.md."
        )
        raise MissingVariableError(msg)
    obs = observations.loc[observations["variable"].astype(str) == variable]
    if good_flags is not None and "flag" in obs.columns:
        obs = obs.loc[obs["flag"].astype(str).isin(list(good_flags))]
    obs = obs.loc[np.isfinite(obs["value"].to_numpy(dtype="float64"))]
    if obs.empty:
        present = sorted(observations["variable"].astype(str).unique())
        msg = (
            f"No usable observations of {variable!r} (variables present: {present}; flags kept: {good_flags}); "
            f"choose another variable or good_flags=None."
        )
        raise DataError(msg)
    out = pd.DataFrame(
        {
            "station_id": obs["station_id"].astype(str).to_numpy(),
            "time": _utc_days(obs["time"]),
            "depth_from": obs["depth_from"].to_numpy(dtype="float64"),
            "depth_to": obs["depth_to"].to_numpy(dtype="float64"),
            "value": obs["value"].to_numpy(dtype="float64"),
        }
    )
    return out.groupby(["station_id", "time", "depth_from", "depth_to"], as_index=False, sort=True)["value"].mean()


def _utc_days(values: pd.Series) -> np.ndarray:
    """Naive UTC days (``datetime64[ns]``) of naive (taken as UTC) or zone-aware times."""
    t = pd.to_datetime(values, utc=True).dt.tz_convert(None).dt.floor("D")
    return t.to_numpy().astype("datetime64[ns]")


def _layer_labels(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    pairs = pd.DataFrame({"t": top, "b": bottom})
    uniq = pairs.drop_duplicates()
    lookup = {(t, b): layer_label(t, b) for t, b in zip(uniq["t"], uniq["b"], strict=True)}
    return np.array([lookup[(t, b)] for t, b in zip(top, bottom, strict=True)], dtype=object)


def build_training_table(
    covariates: xr.Dataset,
    observations: pd.DataFrame,
    stations: pd.DataFrame,
    *,
    variable: str = "sm",
    method: Method = "nearest",
    block_size: float = 1.0,
    good_flags: Sequence[str] | None = ("G",),
) -> pd.DataFrame:
    """Station-day training table: keys, covariates at the station cell, and the target.

    Parameters
    ----------
    covariates : xarray.Dataset
        Canonical gridded predictors, daily ``(time, y, x)`` and static ``(y, x)``.
    observations : pandas.DataFrame
        Daily station observations (``station_id``, ``time``, ``depth_from``,
        ``depth_to``, ``variable``, ``value`` and optionally ``flag``).
    stations : pandas.DataFrame
        ``station_id``, ``lat``, ``lon`` and optionally ``land_cover``, ``climate_zone``.
    variable : str
        Observed variable to learn (``"sm"`` or ``"st"``).
    method : {"nearest", "bilinear"}
        Sampling of the covariates (see :func:`sample_at_stations`).
    block_size : float
        Degrees of the spatial blocks in the ``block`` column (:func:`block_id`).
    good_flags : sequence of str or None
        Keep observations whose ``flag`` is one of these; ``None`` keeps all.

    Returns
    -------
    pandas.DataFrame
        Columns ``station_id``, ``time``, ``lat``, ``lon``, ``block``, ``climate_zone``,
        ``land_cover`` (NaN when unknown), ``depth_from``, ``depth_to`` (cm), ``layer``,
        the covariates, and ``target`` (the observed value, canonical unit); one row
        per station, day and sensor depth where both the observation and the
        covariate day exist. Covariate values may be NaN (cloud gaps).

    Raises
    ------
    MissingVariableError, DataError
        For missing columns or when nothing overlaps.
    """
    st = _check_stations(stations)
    obs = select_observations(observations, variable, good_flags=good_flags)
    obs = obs.loc[obs["station_id"].isin(st["station_id"])]
    sub = covariates
    if "time" in covariates.dims:
        days = np.intersect1d(obs["time"].to_numpy(), covariates["time"].values.astype("datetime64[ns]"))
        if days.size == 0:
            msg = "The observations and the covariates share no day; check the time ranges."
            raise DataError(msg)
        sub = covariates.sel(time=days)
    used = st.loc[st["station_id"].isin(obs["station_id"].unique())]
    cov = extract_at_stations(sub, used, method=method)
    on = ["station_id"]
    if "time" in cov.columns:
        cov["time"] = cov["time"].to_numpy().astype("datetime64[ns]")
        on.append("time")
    for c in ("lat", "lon", "land_cover", "climate_zone", "block"):
        if c in cov.columns:
            cov = cov.drop(columns=c)
    table = obs.merge(cov, on=on, how="inner")
    if len(table) < len(obs):
        logger.info(
            "%d of %d observations have no covariate day or station cell and are dropped",
            len(obs) - len(table),
            len(obs),
        )
    if table.empty:
        msg = "No observation matches a covariate cell and day."
        raise DataError(msg)
    meta_cols = ["station_id", "lat", "lon"] + [c for c in ("land_cover", "climate_zone") if c in st.columns]
    table = table.merge(st[meta_cols], on="station_id", how="left")
    for c in ("land_cover", "climate_zone"):
        if c not in table.columns:
            table[c] = np.nan
    table["block"] = block_id(table["lat"], table["lon"], block_size)
    table["layer"] = _layer_labels(table["depth_from"].to_numpy(), table["depth_to"].to_numpy())
    table = table.rename(columns={"value": "target"})
    features = [c for c in table.columns if c not in _KEYS and c != "target"]
    table = table[[c for c in _KEYS if c in table.columns] + features + ["target"]]
    return table.sort_values(["station_id", "time", "depth_from"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------- coarse pixels
def _to_coarse(covariates: xr.Dataset, fine: Grid, coarse: Grid, min_valid_fraction: float) -> xr.Dataset:
    """Block means of nested fine cells over each coarse cell (lazy)."""
    fy, fx = fine.nesting_factor(coarse)
    dx, dy = fine.resolution
    west, _, _, north = coarse.bounds
    ny_c, nx_c = coarse.shape
    x_need = west + (np.arange(nx_c * fx) + 0.5) * dx
    y_need = north - (np.arange(ny_c * fy) + 0.5) * dy
    aligned = covariates.reindex(x=x_need, y=y_need, method="nearest", tolerance=min(dx, dy) / 4)
    mean = aligned.coarsen(y=fy, x=fx).mean()
    count = aligned.notnull().coarsen(y=fy, x=fx).sum()
    enough = count >= min_valid_fraction * fy * fx
    out = mean.where(enough)
    return out.assign_coords(y=coarse.y, x=coarse.x)


def extract_at_coarse_pixels(
    target: xr.DataArray,
    covariates: xr.Dataset,
    *,
    block_size: float = 1.0,
    min_valid_fraction: float = 0.5,
    dropna: Literal["target", "any"] = "target",
) -> pd.DataFrame:
    """One row per valid coarse pixel-day: the coarse target and predictors on the coarse grid.

    Parameters
    ----------
    target : xarray.DataArray
        Coarse satellite variable ``(time, y, x)`` (e.g. SMAP 36 km soil moisture).
    covariates : xarray.Dataset
        Predictors on the same coarse grid, or on a fine grid nested in it (e.g. 1 km
        in 36 km EASE-Grid 2.0), which are averaged over each coarse cell. Other grids
        must be aggregated with ``soilfuse.regrid`` first.
    block_size : float
        Degrees of the spatial blocks in the ``block`` column.
    min_valid_fraction : float
        A coarse cell's predictor mean needs at least this share of valid fine cells.
    dropna : {"target", "any"}
        Drop rows without a target only, or rows with any missing value.

    Returns
    -------
    pandas.DataFrame
        ``time``, ``y``, ``x`` (coarse cell centre, grid CRS), ``lat``, ``lon``, ``block``,
        the predictors and ``target``.

    Raises
    ------
    GridError
        If the covariate grid is neither the target grid nor nested in it.
    """
    if not 0.0 < min_valid_fraction <= 1.0:
        msg = f"min_valid_fraction must lie in (0, 1]; got {min_valid_fraction}."
        raise DataError(msg)
    coarse = Grid.from_dataset(target)
    fine = Grid.from_dataset(_spatial_vars(covariates))
    covs = _spatial_vars(covariates).drop_vars("spatial_ref", errors="ignore")
    if fine == coarse:
        agg = covs.assign_coords(y=coarse.y, x=coarse.x)
    else:
        try:
            agg = _to_coarse(covs, fine, coarse, min_valid_fraction)
        except GridError as err:
            msg = (
                f"Covariates on {fine!r} cannot be averaged onto the target grid {coarse!r}: {err} "
                f"Regrid them with soilfuse.regrid first."
            )
            raise GridError(msg) from err
    tgt = target.drop_vars("spatial_ref", errors="ignore").rename("target")
    tgt = tgt.assign_coords(y=coarse.y, x=coarse.x)
    merged = agg.assign(target=tgt)
    if "time" in merged.dims:
        valid_days = tgt.notnull().any(dim=("y", "x")).compute().values
        merged = merged.isel(time=np.flatnonzero(valid_days))
    frame = merged.compute().to_dataframe().reset_index()
    frame = frame.dropna(subset=["target"]) if dropna == "target" else frame.dropna()
    lon, lat = coarse.lonlat()
    row = pd.Index(coarse.y).get_indexer(frame["y"].to_numpy())
    col = pd.Index(coarse.x).get_indexer(frame["x"].to_numpy())
    frame["lat"] = lat[row, col]
    frame["lon"] = lon[row, col]
    frame["block"] = block_id(frame["lat"], frame["lon"], block_size)
    keys = [c for c in ("time", "y", "x", "lat", "lon", "block") if c in frame.columns]
    features = [c for c in frame.columns if c not in keys and c != "target"]
    return frame[keys + features + ["target"]].reset_index(drop=True)
