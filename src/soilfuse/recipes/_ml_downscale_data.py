"""Inputs of the ``ml-downscale`` recipe: fine predictors, coarse target, references.

Two predictor sources are supported, each giving a fine-grid predictor cube with the
same layout (``(time, y, x)`` dynamic and ``(y, x)`` static variables, NaN where a
predictor is missing or the pixel is not land):

``"modis"`` (the paper's set; Rao et al., 2022, §2.2)
    Daytime LST screened by its QC bits (clear sky only), albedo, LAI, NDVI, EVI, and
    NDWI, LSWI, NSDSI from band reflectances, plus elevation, slope, aspect and the
    0-5 cm sand, silt and clay fractions. Composited products (NDVI/EVI 16 days, LAI
    8 days) hold their value over their compositing period; daily reflectances are
    averaged over the MODIS 8-day periods first (a stand-in for MOD09A1's 8-day
    composite). Remaining gaps of these slowly varying predictors are filled by
    :func:`soilfuse.gapfill.fill_spatiotemporal` and flagged. Optionally an
    all-weather LST is made with :func:`soilfuse.gapfill.stdf_fill` followed by
    :func:`~soilfuse.gapfill.fill_spatiotemporal`.

``"reanalysis"`` (for real sets that only carry a reanalysis, e.g. ERA5-Land)
    From hourly or daily surface soil moisture ``sm`` (first layer) and the land
    fraction: the daily mean ``sm_rea``, its daily range ``sm_rea_range`` (max − min
    of the hourly values; 0 for daily files), the period mean ``sm_rea_mean``, the
    daily anomaly ``sm_rea_anomaly`` and ``land_fraction``; interpolated bilinearly
    to the fine grid.

The prepared cube is written once to the run directory (``product/predictors.zarr``)
with :func:`soilfuse.io.write_zarr`, so training, prediction and evaluation
read it instead of recomputing the compositing and gap filling, and an interrupted
run resumes.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from soilfuse import gapfill, preprocess
from soilfuse.exceptions import ConfigError, DataError, GridError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.gridded import open_gridded, write_zarr
from soilfuse.io.stations import StationData
from soilfuse.regrid import Regridder

__all__ = [
    "FINE_GRIDS",
    "FLAG_LST_FILLED",
    "FLAG_PREDICTORS_FILLED",
    "MODIS_PREDICTORS",
    "REANALYSIS_PREDICTORS",
    "DownscaleInputs",
    "assemble_inputs",
    "coarse_predictors",
    "expand_files",
    "load_coarse",
    "load_reanalysis_predictors",
    "load_station_targets",
    "load_twin_predictors",
    "persist_predictors",
    "training_table",
]

logger = logging.getLogger(__name__)

#: The paper's 14 predictors (Rao et al., 2022, Eq. 6), canonical names.
MODIS_PREDICTORS: tuple[str, ...] = (
    "lst_day", "albedo", "lai", "ndwi", "lswi", "nsdsi", "ndvi", "evi",
    "elevation", "slope", "aspect", "sand", "silt", "clay",
)
#: Predictors derived from a reanalysis' surface soil moisture (see the module docstring).
REANALYSIS_PREDICTORS: tuple[str, ...] = ("sm_rea", "sm_rea_range", "sm_rea_mean", "sm_rea_anomaly", "land_fraction")

#: Flag bit: the pixel-day's LST was gap-filled (all-weather variant).
FLAG_LST_FILLED = 16
#: Flag bit: another predictor of the pixel-day was gap-filled.
FLAG_PREDICTORS_FILLED = 32

#: Slowly varying MODIS predictors (composited, then gap-filled).
_SLOW = ("albedo", "lai", "ndvi", "evi", "ndwi", "lswi", "nsdsi")
_BANDS = ("refl_b2", "refl_b4", "refl_b6", "refl_b7")
_STATIC = ("elevation", "slope", "aspect", "sand", "silt", "clay")
_LAND_COVER_WATER = 5

#: Named fine grids: EASE-Grid 2.0 subsets of the domain region.
FINE_GRIDS: dict[str, str] = {"ease9km": "9km", "ease3km": "3km", "ease1km": "1km"}


@dataclass(frozen=True)
class DownscaleInputs:
    """Everything the recipe reads, aligned on one fine and one coarse grid.

    Attributes
    ----------
    predictors : xarray.Dataset
        Fine cube (lazy): the predictors, ``input_flag`` (uint8 bits of
        :data:`FLAG_PREDICTORS_FILLED`), ``<name>_filled`` flags and, when made,
        ``lst_day_gapfilled`` (K).
    features : tuple of str
        Predictor names, in model column order.
    coarse : xarray.DataArray
        Coarse surface soil moisture ``(time, y, x)`` (m³ m⁻³) on the days of the
        predictors, in memory.
    fine_grid, coarse_grid : Grid
    reference : xarray.DataArray or None
        Fine-scale reference soil moisture (twin truth 0-5 cm, or e.g. SMAP 9 km) on
        the fine grid and the same days, lazy.
    reference_name : str
    stations : StationData or None
        Daily surface (0-5 cm) station soil moisture, flag ``"G"``.
    land : xarray.DataArray
        Boolean ``(y, x)``: pixels that can get a value, in memory.
    """

    predictors: xr.Dataset
    features: tuple[str, ...]
    coarse: xr.DataArray
    fine_grid: Grid
    coarse_grid: Grid
    reference: xr.DataArray | None
    reference_name: str
    stations: StationData | None
    land: xr.DataArray

    @property
    def days(self) -> pd.DatetimeIndex:
        """The product's days."""
        return pd.DatetimeIndex(self.predictors["time"].values)


# ---------------------------------------------------------------------- coarse target
def expand_files(paths: Sequence[Path]) -> list[Path]:
    """Files of ``paths``, folders replaced by the ``*.nc`` files in them (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob("*.nc")) if p.is_dir() else [p])
    if not out:
        msg = f"No files found in {[str(p) for p in paths]}; give NetCDF files or folders holding them."
        raise DataError(msg)
    return out


def load_coarse(paths: Sequence[Path], product: Literal["smap", "cci"], *, region: Any = None) -> xr.DataArray:
    """Coarse surface soil moisture ``sm (time, y, x)`` (m³ m⁻³), in memory.

    Parameters
    ----------
    paths : sequence of Path
        SMAP L3 point files (36 km EASE-Grid 2.0) or ESA CCI / C3S daily images.
    product : {"smap", "cci"}
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees.
    """
    from soilfuse.io.products import read_cci, read_smap

    files = expand_files(paths)
    if product == "smap":
        ds = read_smap(files, grid="36km", region=region)
    else:
        ds = read_cci(files, variables=["sm"], region=region)
    if "sm" not in ds:
        msg = f"The coarse files ({product}) hold no volumetric 'sm' (found {list(ds.data_vars)}); use m3 m-3 data."
        raise DataError(msg)
    return ds["sm"].load()


# ---------------------------------------------------------------------- MODIS-like predictors
def _period_start(times: Any, days: int) -> npt.NDArray[np.datetime64]:
    """First day of the MODIS ``days``-day period (from 1 January) holding each time."""
    t = pd.DatetimeIndex(times).normalize()
    jan1 = t.to_period("Y").to_timestamp()
    k = (t.day_of_year.to_numpy() - 1) // days
    return (jan1 + pd.to_timedelta(k * days, unit="D")).to_numpy()


def _held(da: xr.DataArray, days: pd.DatetimeIndex) -> xr.DataArray:
    """A layer on every day: daily layers as they are, composites held over their period.

    The cadence is read from the dates on which the layer has any value (computes one
    boolean per date).
    """
    has = da.notnull().any(("y", "x")).compute().to_numpy()
    da = da.isel(time=np.flatnonzero(has))
    times = pd.DatetimeIndex(da["time"].values)
    step = int(np.median(np.diff(times.to_numpy()).astype("timedelta64[D]").astype(int))) if times.size > 1 else 1
    if step <= 1:
        return da.reindex(time=days)
    return da.reindex(time=days, method="ffill", tolerance=pd.Timedelta(days=step - 1))


def _composite(da: xr.DataArray, days: pd.DatetimeIndex, period: int) -> xr.DataArray:
    """Mean of the valid daily values over each MODIS ``period``-day period, on every day."""
    labels = xr.DataArray(_period_start(da["time"].values, period), dims="time", name="period")
    comp = da.groupby(labels).mean(skipna=True)
    wanted = _period_start(days, period)
    out = comp.reindex(period=np.unique(wanted)).sel(period=wanted)
    return out.rename(period="time").assign_coords(time=days.to_numpy())


def _fill(da: xr.DataArray, max_gap: int) -> tuple[xr.DataArray, xr.DataArray]:
    """Gap-fill a slowly varying predictor; returns the values and a "was filled" mask."""
    out = gapfill.fill_spatiotemporal(da, max_gap=max_gap)
    flag = out[f"{da.name}_flag"]
    filled = (flag != gapfill.OBSERVED) & (flag != gapfill.MISSING)
    return out[str(da.name)].astype("float32"), filled


def load_twin_predictors(
    folder: Path,
    days: pd.DatetimeIndex,
    *,
    features: Sequence[str],
    lst_gapfill: bool,
    composite_days: int = 8,
    max_fill_gap: int = 32,
    chunks: dict[str, int] | None = None,
) -> xr.Dataset:
    """The MODIS-like predictor cube of a synthetic-world folder (lazy).

    Parameters
    ----------
    folder : Path
        Folder written by ``soilfuse twin`` (``modis/*.tif``, ``static/*.tif``).
    days : pandas.DatetimeIndex
        Days of the cube.
    features : sequence of str
        Predictors among :data:`MODIS_PREDICTORS`.
    lst_gapfill : bool
        Also make ``lst_day_gapfilled`` (STDF, then spatio-temporal interpolation).
    composite_days : int
        Compositing period of daily reflectances (days; MOD09A1: 8).
    max_fill_gap : int
        Longest gap (days) of a slow predictor bridged in time.
    chunks : mapping, optional
        Dask chunks of the MODIS stacks.

    Returns
    -------
    xarray.Dataset
        Predictors, optionally ``lst_day_gapfilled``, and ``<name>_filled`` (uint8, 1
        where a slow predictor was gap-filled); NaN off land (water cover, missing
        elevation).
    """
    from soilfuse.recipes.inputs import load_modis, load_static

    unknown = sorted(set(features) - set(MODIS_PREDICTORS))
    if unknown:
        msg = f"options.predictors: {unknown} are not MODIS-source predictors; choose from {list(MODIS_PREDICTORS)}."
        raise ConfigError(msg)
    static = load_static(folder)
    layers = ["lst_day", *[n for n in ("albedo", "lai", "ndvi", "evi") if n in features or n == "ndvi"]]
    if {"ndwi", "lswi", "nsdsi"} & set(features):
        layers += list(_BANDS)
    grid = Grid.from_dataset(static)
    modis = load_modis(folder, layers, qc="good", chunks=chunks)
    if Grid.from_dataset(modis) != grid:
        msg = (f"The MODIS stacks are on {Grid.from_dataset(modis)!r} but the static maps on {grid!r}; "
               "the predictor source 'modis' needs both on one fine grid.")
        raise GridError(msg)
    # one set of coordinates for both (their float coordinates may differ in the last bits)
    modis = with_grid(modis, grid)
    static = with_grid(static, grid)
    land = _twin_land(static)
    out: dict[str, xr.DataArray] = {}
    flags: dict[str, xr.DataArray] = {}
    slow: dict[str, xr.DataArray] = {n: _held(modis[n], days) for n in ("albedo", "lai", "ndvi", "evi") if n in modis}
    if {"ndwi", "lswi", "nsdsi"} & set(features):
        bands = xr.Dataset({b: _composite(modis[b].sel(time=slice(days[0] - pd.Timedelta(days=composite_days),
                                                                   days[-1])), days, composite_days)
                            for b in _BANDS})
        for name in ("ndwi", "lswi", "nsdsi"):
            if name in features:
                slow[name] = preprocess.spectral_indices(bands, [name])[name]
    for name, da in slow.items():
        values, was = _fill(da.rename(name).chunk({"time": -1}), max_fill_gap)
        slow[name] = values
        if name in features:
            flags[f"{name}_filled"] = was.where(land, False).astype("uint8")
    lst = modis["lst_day"].reindex(time=days).astype("float32")
    out["lst_day"] = lst
    for name in features:
        if name in slow:
            out[name] = slow[name]
        elif name in _STATIC:
            out[name] = _surface_layer(static, name).astype("float32")
    if lst_gapfill:
        dem = static["elevation"].astype("float64")
        stdf = gapfill.stdf_fill(lst.chunk({"time": -1}), slow["ndvi"].chunk({"time": -1}), dem)
        out["lst_day_gapfilled"] = gapfill.fill_spatiotemporal(stdf, max_gap=max_fill_gap)["lst_day"]
    ds = xr.Dataset({k: v.where(land).astype("float32") for k, v in out.items()})
    ds = ds[[n for n in features if n in ds] + [n for n in ("lst_day_gapfilled",) if n in ds]].assign(flags)
    return with_grid(ds.drop_vars([c for c in ds.coords if c not in ("time", "y", "x")]), grid)


def _surface_layer(static: xr.Dataset, name: str) -> xr.DataArray:
    """A static map, or its shallowest depth interval (texture comes per interval, top first)."""
    if name in static:
        return static[name]
    layered = [str(k) for k in static.data_vars if str(k).startswith(f"{name}_")]
    if not layered:
        msg = f"No static map {name!r} in the inputs (have {sorted(map(str, static.data_vars))})."
        raise DataError(msg)
    return static[f"{name}_0-5cm"] if f"{name}_0-5cm" in layered else static[layered[0]]


def _twin_land(static: xr.Dataset) -> xr.DataArray:
    land = static["elevation"].notnull()
    if "land_cover" in static:
        land = land & (static["land_cover"] != _LAND_COVER_WATER)
    if "water_fraction" in static:
        land = land & ~(static["water_fraction"] > 0.5)
    return land.compute()


# ---------------------------------------------------------------------- reanalysis predictors
def load_reanalysis_predictors(
    paths: Sequence[Path], fine_grid: Grid, days: pd.DatetimeIndex | None = None, *, min_land: float = 0.5
) -> xr.Dataset:
    """Predictors derived from a reanalysis' surface soil moisture, on the fine grid.

    Parameters
    ----------
    paths : sequence of Path
        ERA5 / ERA5-Land files holding ``swvl1`` (hourly or daily) and ``lsm``.
    fine_grid : Grid
        Target grid (bilinear interpolation).
    days : pandas.DatetimeIndex, optional
        Days to keep (all complete days by default).
    min_land : float
        Pixels with a land fraction below this are not land (NaN).

    Returns
    -------
    xarray.Dataset
        :data:`REANALYSIS_PREDICTORS`, lazy (Dask).
    """
    from soilfuse.io.products import read_era5

    hourly = read_era5(expand_files(paths), variables=["sm", "land_fraction"], daily=False)
    if "land_fraction" not in hourly:
        msg = "The reanalysis files hold no land-sea mask (lsm); it is needed to mask the sea."
        raise DataError(msg)
    sm = hourly["sm"].isel(depth=0, drop=True) if "depth" in hourly["sm"].dims else hourly["sm"]
    sm = sm.drop_vars([c for c in sm.coords if c not in ("time", "y", "x", "spatial_ref")])
    # One day's hourly values are few; a groupby on the UTC day gives mean and range at once.
    grouped = sm.groupby(sm["time"].dt.floor("D").rename("day"))
    mean = grouped.mean().rename(day="time")
    rng = (grouped.max() - grouped.min()).rename(day="time")
    if days is not None:
        mean = mean.reindex(time=days)
        rng = rng.reindex(time=days)
    clim = mean.mean("time")
    raw = xr.Dataset({
        "sm_rea": mean, "sm_rea_range": rng, "sm_rea_mean": clim, "sm_rea_anomaly": mean - clim,
        "land_fraction": hourly["land_fraction"].squeeze(drop=True),
    })
    # the reanalysis is coarse and fits in memory; its fine-grid version stays lazy
    raw = with_grid(raw, Grid.from_dataset(hourly)).load().chunk({"time": 32})
    fine = Regridder(Grid.from_dataset(raw), fine_grid, "bilinear")(raw)
    land = fine["land_fraction"] >= min_land
    ds = xr.Dataset({k: fine[k].where(land).astype("float32") for k in REANALYSIS_PREDICTORS})
    return with_grid(ds, fine_grid)


# ---------------------------------------------------------------------- persisting
def persist_predictors(make: Callable[[], xr.Dataset], path: Path, *, chunks: dict[str, int]) -> xr.Dataset:
    """Write the predictor cube ``make()`` to ``path`` and reopen it lazily; an existing store is reused.

    Variables are computed and written one at a time (static maps first, each dynamic
    predictor with its ``_filled`` flag), which bounds memory by the largest single
    variable's graph: gap filling needs whole series and STDF whole images, so the
    cube is not written region by region (each region would recompute them). The store
    is assembled under ``<path>.partial`` and renamed when complete.

    Returns
    -------
    xarray.Dataset
        The cube, plus ``input_flag`` (uint8, :data:`FLAG_PREDICTORS_FILLED` where any
        predictor of the pixel-day was gap-filled), lazy.
    """
    if not path.exists():
        ds = make().chunk({"time": chunks["time"], "y": chunks["y"], "x": chunks["x"]})
        partial = path.with_name(path.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        names = [str(v) for v in ds.data_vars]
        static = [v for v in names if "time" not in ds[v].dims]
        dynamic = [v for v in names if v not in static and not v.endswith("_filled")]
        groups = [[v, *([f"{v}_filled"] if f"{v}_filled" in names else [])] for v in dynamic]
        attrs = {"title": "ml-downscale predictor cube",
                 "summary": "Fine-grid predictors as used for training and prediction."}
        write_zarr(ds[static + groups[0]], partial, chunks=chunks, attrs=attrs)
        for group in groups[1:]:
            logger.info("predictor cube: writing %s", ", ".join(group))
            write_zarr(ds[group], partial, mode="a")
        partial.rename(path)
    else:
        logger.info("reusing the predictor cube %s", path)
    cube = open_gridded(path, chunks=chunks)
    flags = [cube[v] for v in cube.data_vars if str(v).endswith("_filled")]
    template = next(cube[v] for v in cube.data_vars if "time" in cube[v].dims)
    filled = sum(f.astype("uint8") for f in flags) if flags else xr.zeros_like(template, dtype="uint8")
    flag = xr.where(filled > 0, np.uint8(FLAG_PREDICTORS_FILLED), np.uint8(0)).astype("uint8")
    return cube.assign(input_flag=flag.transpose("time", "y", "x"))


# ---------------------------------------------------------------------- training samples
def coarse_predictors(
    predictors: xr.Dataset, features: Sequence[str], coarse_grid: Grid, method: Literal["nearest", "mean"]
) -> xr.Dataset:
    """Predictors resampled to the coarse grid: nearest neighbour (paper) or area-weighted mean.

    ``"nearest"`` takes the fine pixel containing each coarse cell centre (Rao et al.,
    2022, §2.3.2); ``"mean"`` averages the valid fine pixels of each coarse cell, NaN
    where less than half of its area is valid.
    """
    rg = Regridder(Grid.from_dataset(predictors), coarse_grid, method)
    return rg(predictors[list(features)])


def training_table(coarse: xr.DataArray, coarse_preds: xr.Dataset) -> pd.DataFrame:
    """Every valid (coarse pixel, day) sample: ``time``, keys, the predictors and ``target``."""
    from soilfuse.sample import extract_at_coarse_pixels

    table = extract_at_coarse_pixels(coarse.rename("sm"), coarse_preds.compute(), dropna="any")
    return table


# ---------------------------------------------------------------------- stations
def _read_surface_records(folder: Path) -> StationData:
    """The station table and the raw records of surface soil-moisture sensors only.

    A Parquet observation table is read with a row filter, so the (often much larger)
    records of deeper sensors and of soil temperature never enter memory.
    """
    from soilfuse.io.stations import read_stations

    parquet = folder / "observations.parquet"
    keep = [("variable", "==", "sm"), ("depth_from", "<", 5.0), ("depth_to", "<=", 10.0)]
    if parquet.is_file() and ((folder / "stations.csv").is_file() or (folder / "stations.parquet").is_file()):
        table = folder / "stations.parquet"
        stations = pd.read_parquet(table) if table.is_file() else pd.read_csv(folder / "stations.csv")
        obs = pd.read_parquet(parquet, filters=keep)
    else:
        data = read_stations(folder)
        stations, obs = data.stations, data.observations
        obs = obs.loc[(obs["variable"] == "sm") & (obs["depth_from"] < 5.0) & (obs["depth_to"] <= 10.0)]
    if obs.empty:
        msg = f"No surface soil-moisture sensor (top within 0-5 cm) in {folder}."
        raise DataError(msg)
    return StationData(stations=stations, observations=obs.reset_index(drop=True))


def load_station_targets(folder: Path) -> StationData:
    """Daily surface (0-5 cm) soil moisture at the stations, quality-controlled.

    Parameters
    ----------
    folder : Path
        Station tables (``stations.csv`` and ``observations.parquet``, see
        :func:`soilfuse.io.stations.read_stations`).

    Returns
    -------
    StationData
        The stations and one ``0-5cm`` daily value per station-day, flag ``"G"``.

    Notes
    -----
    Raw sub-daily records of the sensors reaching into the top 10 cm go through
    :func:`soilfuse.stations.run_qc` and :func:`~soilfuse.stations.apply_qc`, daily
    means with the coverage rule, and :func:`~soilfuse.stations.map_to_layers` onto
    the ``0-5cm`` layer.
    """
    from soilfuse import stations as st

    raw = _read_surface_records(Path(folder))
    clean = st.apply_qc(st.run_qc(raw))
    layers = st.map_to_layers(st.daily_means(clean), sm_layers=["0-5cm"])
    layers = layers.loc[layers["layer"] == "0-5cm"]
    daily = pd.DataFrame({
        "station_id": layers["station_id"].astype(str).to_numpy(), "time": layers["time"].to_numpy(),
        "depth_from": 0.0, "depth_to": 5.0, "variable": "sm", "value": layers["value"].to_numpy(), "flag": "G",
    })
    logger.info("stations: %d daily surface values at %d stations", len(daily), daily["station_id"].nunique())
    return StationData(stations=raw.stations, observations=daily)


# ---------------------------------------------------------------------- assembly
def assemble_inputs(
    *,
    twin: Path | None,
    coarse_files: Sequence[Path] | None,
    reanalysis_files: Sequence[Path] | None,
    station_folder: Path | None,
    reference_files: Sequence[Path] | None,
    coarse_product: Literal["smap", "cci"],
    predictor_source: Literal["modis", "reanalysis"],
    features: Sequence[str],
    fine_grid: str,
    region: Any,
    start: Any,
    end: Any,
    lst_gapfill: bool,
    composite_days: int,
    max_fill_gap: int,
    chunks: dict[str, int],
    cube_path: Path,
) -> DownscaleInputs:
    """Read, align and persist everything the recipe needs (see :class:`DownscaleInputs`).

    Files come from a synthetic-world folder (``twin``) unless given explicitly; the
    predictor cube is written to ``cube_path`` (reused if it exists). The product's
    days are the coarse product's days within ``start``–``end``.

    Raises
    ------
    ConfigError
        If an input the chosen sources need is not given.
    DataError
        If files are missing or the inputs share no day.
    """
    from soilfuse.recipes.inputs import load_truth, require

    if coarse_files is None:
        if twin is None:
            msg = "key 'inputs.coarse_sm' is required without 'inputs.twin': list the coarse soil-moisture files."
            raise ConfigError(msg)
        coarse_files = require(twin / "satellite" / coarse_product, "*.nc", f"{coarse_product} files")
    coarse = load_coarse(coarse_files, coarse_product, region=region)
    days = pd.DatetimeIndex(coarse["time"].values)
    days = days[(days >= pd.Timestamp(start or days[0])) & (days <= pd.Timestamp(end or days[-1]))]
    if days.empty:
        msg = f"No coarse soil moisture between {start} and {end}; check 'period' against the coarse files."
        raise DataError(msg)
    if predictor_source == "modis":
        if twin is None or fine_grid != "predictors":
            msg = ("options.predictor_source 'modis' reads the 'modis/' and 'static/' folders of 'inputs.twin' and "
                   "keeps their grid: set inputs.twin and options.fine_grid: predictors.")
            raise ConfigError(msg)
        make = partial(load_twin_predictors, twin, days, features=features, lst_gapfill=lst_gapfill,
                       composite_days=composite_days, max_fill_gap=max_fill_gap, chunks={"time": chunks["time"]})
    else:
        files = reanalysis_files or (require(twin / "reanalysis", "*.nc", "reanalysis files") if twin else None)
        if not files:
            msg = "key 'inputs.reanalysis' is required with options.predictor_source 'reanalysis'."
            raise ConfigError(msg)
        grid = _fine_grid(fine_grid, region, files)
        make = partial(load_reanalysis_predictors, files, grid, days)
    cube = persist_predictors(make, cube_path, chunks=chunks)
    grid = Grid.from_dataset(cube)
    days = pd.DatetimeIndex(cube["time"].values)
    static = [v for v in features if "time" not in cube[v].dims]
    land = (cube[static[0]].notnull() if static else cube[features[0]].notnull().any("time")).compute()
    reference, name = None, ""
    if reference_files:
        from soilfuse.io.products import read_smap

        ref = read_smap(expand_files(reference_files), grid=grid, region=region)["sm"]
        reference = _on_grid(ref, grid).reindex(time=days)
        name = "fine reference"
    elif twin is not None and (twin / "truth.zarr").exists():
        truth = load_truth(twin, ["sm"])["sm"]
        depth = next(d for d in truth.dims if str(d).startswith("depth"))
        reference = with_grid(truth.isel({depth: 0}, drop=True).drop_vars(
            [c for c in truth.coords if c not in ("time", "y", "x")], errors="ignore"), grid).sel(time=days)
        name = "truth"
    folder = station_folder or (twin / "stations" if twin is not None and (twin / "stations").is_dir() else None)
    stations = load_station_targets(folder) if folder is not None else None
    return DownscaleInputs(
        predictors=cube, features=tuple(features), coarse=coarse.reindex(time=days), fine_grid=grid,
        coarse_grid=Grid.from_dataset(coarse), reference=reference, reference_name=name, stations=stations,
        land=land,
    )


def _fine_grid(name: str, region: Any, files: Sequence[Path]) -> Grid:
    if name in FINE_GRIDS:
        if region is None:
            msg = f"key 'domain.region' is required with options.fine_grid {name!r}: give (west, east, south, north)."
            raise ConfigError(msg)
        return Grid.ease2(FINE_GRIDS[name]).subset(tuple(region))  # type: ignore[arg-type]
    from soilfuse.io.products import read_era5

    return Grid.from_dataset(read_era5(expand_files(files), variables=["land_fraction"], daily=False))


def _on_grid(da: xr.DataArray, grid: Grid) -> xr.DataArray:
    """``da`` (a subset of ``grid``'s cells in the same CRS) placed on ``grid``, NaN elsewhere."""
    src = Grid.from_dataset(da)
    rows, cols = grid.index(src.x[[0, -1]], src.y[[0, -1]])
    if (rows < 0).any() or src.resolution != grid.resolution:
        msg = f"The fine reference on {src!r} is not a part of the fine grid {grid!r}."
        raise GridError(msg)
    out = xr.DataArray(np.full((da.sizes["time"], *grid.shape), np.nan, dtype="float32"), dims=("time", "y", "x"),
                       coords={"time": da["time"].values})
    out[:, rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = np.asarray(da.transpose("time", "y", "x").values)
    return with_grid(out.rename("sm"), grid)
