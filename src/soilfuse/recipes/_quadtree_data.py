"""Data assembly of the quadtree-st recipe: covariate cube, station targets, training table.

Predictors follow Wang et al. (2025, Table 1): EVI, LST mean of day and night, 2 m air
temperature, net and downward solar radiation, downward longwave (screened out by
VIF), precipitation, 10 m wind, elevation, slope, and sand and clay per texture
interval (silt dropped as compositional). Gridded inputs are bilinearly resampled to
the fine grid; cloud gaps in LST and EVI are filled by spatio-temporal linear
interpolation and smoothed with a Savitzky–Golay filter (their §2.2.1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.gapfill import fill_spatiotemporal, savgol
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.stations import StationData
from soilfuse.preprocess import evi
from soilfuse.recipes.inputs import load_modis, load_reanalysis, load_static, load_stations
from soilfuse.regrid import Regridder
from soilfuse.sample import block_id, extract_at_stations
from soilfuse.stations import apply_qc, daily_means, filter_completeness, map_to_layers, run_qc

__all__ = [
    "METEO",
    "SOIL_LAYERS",
    "build_covariates",
    "reanalysis_st_at_depths",
    "station_targets",
    "training_table",
]

logger = logging.getLogger(__name__)

#: Reanalysis predictors (canonical names).
METEO = ("t2m", "ssr", "ssrd", "strd", "tp", "wind10")
#: Texture intervals used as predictors (Wang et al. use the first four).
SOIL_LAYERS = ("0-5cm", "5-15cm", "15-30cm", "30-60cm")
#: Non-predictor columns of a covariate table.
KEYS = ("station_id", "time", "lat", "lon", "block", "land_cover", "climate_zone")


def build_covariates(
    folder: Path,
    grid_hint: Grid | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    chunks: dict[str, int],
    memory_days: Sequence[int] = (),
    reanalysis_depths: Sequence[str] = (),
) -> tuple[xr.Dataset, xr.Dataset]:
    """Daily covariate cube on the fine grid, and the reanalysis (for baselines).

    ``memory_days`` (not in the paper; empty by default) adds, per window length ``n``,
    the predictor ``lst_tend_{n}d`` = LST mean minus its mean over the ``n`` days up to
    and including the day (K): whether the surface has been warming or cooling, which
    deeper layers follow with a lag that same-day predictors cannot express.
    ``reanalysis_depths`` (not in the paper; empty by default) adds, per depth ``d``,
    ``st_rea_<d>``: the reanalysis soil temperature linearly interpolated to that depth
    (:func:`reanalysis_st_at_depths`) and bilinear on the fine grid (K), as references
    the models can learn departures from.

    Returns
    -------
    covariates : xarray.Dataset
        Lazy ``(time, y, x)`` predictors plus static ``(y, x)`` maps, including
        ``land_cover`` and ``climate_zone`` (used for stratification only).
    reanalysis : xarray.Dataset
        The reanalysis on its own grid (for the interpolated-reanalysis baseline).
    """
    static = load_static(folder)
    fine = grid_hint or Grid.from_dataset(static)
    keep = ["elevation", "slope", "land_cover", "climate_zone"]
    keep += [f"{v}_{lay}" for v in ("sand", "clay") for lay in SOIL_LAYERS if f"{v}_{lay}" in static]
    static = _on_grid(static[keep], fine, "static maps")
    rea = load_reanalysis(folder).sel(time=slice(start, end))
    if rea.sizes["time"] == 0:
        msg = f"The reanalysis has no days between {start.date()} and {end.date()}; check 'period'."
        raise DataError(msg)
    missing = [v for v in METEO if v not in rea]
    if missing:
        msg = f"The reanalysis lacks {missing}; the quadtree-st predictors need {list(METEO)}."
        raise DataError(msg)
    to_fine = Regridder(Grid.from_dataset(rea), fine, "bilinear")
    meteo = to_fine(rea[list(METEO)].chunk({"time": chunks["time"]}))
    if reanalysis_depths:
        st = reanalysis_st_at_depths(rea, reanalysis_depths)["st"].chunk({"time": chunks["time"]})
        levels = xr.Dataset({f"st_rea_{d}": st.isel(depth=k, drop=True) for k, d in enumerate(reanalysis_depths)})
        for d in reanalysis_depths:
            levels[f"st_rea_{d}"].attrs = {"units": "K", "long_name": f"reanalysis soil temperature at {d} (bilinear)"}
        meteo = meteo.merge(to_fine(levels))
    modis = _on_grid(load_modis(folder, ["lst_day", "lst_night", "refl_b1", "refl_b2", "refl_b3"], qc="good"),
                     fine, "MODIS layers")
    modis = modis.sel(time=slice(start, end)).chunk({"time": -1, "y": chunks["y"], "x": chunks["x"]})
    lst = {}
    for name in ("lst_day", "lst_night"):
        filled = savgol(fill_spatiotemporal(modis[name]), window=7, order=2)
        lst[name] = filled[name]
    lst_mean = ((lst["lst_day"] + lst["lst_night"]) / 2.0).rename("lst_mean")
    lst_mean.attrs = {"units": "K", "long_name": "mean of day and night land surface temperature (gap-filled)"}
    tendencies = [_tendency(lst_mean, n) for n in memory_days]
    evi_raw = evi(modis[["refl_b1", "refl_b2", "refl_b3"]])
    evi_filled = savgol(fill_spatiotemporal(evi_raw), window=7, order=2)["evi"]
    cube = xr.merge([meteo, lst_mean.to_dataset(), *tendencies, evi_filled.to_dataset(), static], join="inner",
                    compat="override",
                    combine_attrs="drop_conflicts")
    cube = cube.chunk({"time": chunks["time"], "y": chunks["y"], "x": chunks["x"]})
    return cube, rea


def _tendency(lst_mean: xr.DataArray, days: int) -> xr.DataArray:
    """LST mean minus its trailing ``days``-day mean (K); shorter windows at the period start."""
    trailing = lst_mean.rolling(time=days, min_periods=1).mean()
    out = (lst_mean - trailing).rename(f"lst_tend_{days}d")
    out.attrs = {"units": "K", "long_name": f"LST mean minus its mean over the last {days} days"}
    return out


def _on_grid(ds: xr.Dataset, grid: Grid, what: str) -> xr.Dataset:
    """``ds`` with the exact coordinates of ``grid`` (files may differ in the last bits)."""
    found = Grid.from_dataset(ds)
    if found != grid:
        msg = f"The {what} are on {found}, not on the fine grid {grid}; regrid them first."
        raise DataError(msg)
    return with_grid(ds.drop_vars(["x", "y"]), grid)


def station_targets(
    folder: Path, depths: Sequence[str], cube: xr.Dataset, *, max_missing: float = 0.2
) -> tuple[StationData, pd.DataFrame]:
    """QC'd daily soil temperature per station and target depth (wide: one column per depth).

    QC uses the gridded precipitation and air temperature of the covariate cube
    (ISMN-style flags, :func:`soilfuse.stations.run_qc`); flagged values are dropped,
    sub-daily records averaged to days, sensors mapped to the target depths, and
    station-depths missing more than ``max_missing`` of the days dropped.
    """
    t0, t1 = pd.Timestamp(cube["time"].values[0]), pd.Timestamp(cube["time"].values[-1])
    data = load_stations(folder, variables=["st"], start=t0, end=t1 + pd.Timedelta(days=1))
    st_obs = data.observations
    if st_obs.empty:
        msg = f"No soil-temperature ('st') observations in {folder / 'stations'}."
        raise DataError(msg)
    flagged = run_qc(
        StationData(data.stations, st_obs.reset_index(drop=True)),
        air_temperature=cube["t2m"],
    )
    clean = apply_qc(flagged)
    daily = daily_means(clean)
    mapped = map_to_layers(daily, st_depths=list(depths))
    mapped = filter_completeness(mapped, max_missing=max_missing, start=t0, end=t1)
    wide = mapped.pivot_table(index=["station_id", "time"], columns="layer", values="value", aggfunc="mean")
    wide = wide.reindex(columns=list(depths))
    wide.columns.name = None
    logger.info("station targets: %d station-days, %d stations", len(wide), wide.index.get_level_values(0).nunique())
    return data, wide.reset_index()


def training_table(
    cube: xr.Dataset, targets: pd.DataFrame, stations: pd.DataFrame, *, block_size: float
) -> pd.DataFrame:
    """Covariates at the station cells joined to the targets, with keys and 1° blocks."""
    used = stations[stations["station_id"].isin(targets["station_id"].unique())]
    days = pd.DatetimeIndex(sorted(targets["time"].unique()))
    covs = extract_at_stations(cube.sel(time=cube["time"].isin(days.values)), used[["station_id", "lat", "lon"]])
    covs["time"] = pd.to_datetime(covs["time"])
    table = targets.merge(covs, on=["station_id", "time"], how="inner")
    meta = used.set_index("station_id")[["lat", "lon"]]
    table["lat"] = table["station_id"].map(meta["lat"]).to_numpy(dtype="float64")
    table["lon"] = table["station_id"].map(meta["lon"]).to_numpy(dtype="float64")
    table["block"] = block_id(table["lat"].to_numpy(), table["lon"].to_numpy(), block_size)
    return table


def reanalysis_st_at_depths(rea: xr.Dataset, depths: Sequence[str]) -> xr.Dataset:
    """Reanalysis soil temperature interpolated linearly in depth to the target depths.

    ERA5-Land layers (0–7, 7–28, 28–100, 100–289 cm) are taken at their midpoints;
    depths above the first midpoint take the first layer's value.
    """
    st = rea["st"]
    mids = np.asarray(st["depth"].values, dtype="float64")
    levels = []
    for d in depths:
        z = float(np.clip(float(d.removesuffix("cm")), mids.min(), mids.max()))
        i1 = int(np.clip(np.searchsorted(mids, z), 1, len(mids) - 1))
        w = (z - mids[i1 - 1]) / (mids[i1] - mids[i1 - 1])
        levels.append((1 - w) * st.isel(depth=i1 - 1, drop=True) + w * st.isel(depth=i1, drop=True))
    targets = [float(d.removesuffix("cm")) for d in depths]
    out = xr.concat(levels, dim=xr.DataArray(targets, dims="depth", name="depth"))
    out.attrs = dict(st.attrs)
    return out.transpose("time", "depth", "y", "x").to_dataset(name="st")
