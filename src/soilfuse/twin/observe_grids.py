"""Coarse gridded observing systems of the twin: an ERA5-Land-like reanalysis, ESA CCI-like
and SMAP-like satellite soil moisture.

All three start from area means of the fine-grid truth and forcing on their own grid
(:class:`~soilfuse.twin.observe_common.AreaAccumulator`, i.e. the overlap weights of
:class:`soilfuse.regrid.Regridder` with ``method="mean"``), accumulated tile by tile and
block of days by block of days, then add the errors the recipes have to overcome. The
errors are added block by block as well (the reanalysis carries one day over for its
lag), with the same values as a computation over the whole period at once.
:func:`observe_grids` keeps the float32 products of the whole period;
:func:`grid_blocks` hands them over one block of days at a time, so that a writer
holds one block only:

* **reanalysis** (0.1°, ERA5-Land-like; Muñoz-Sabater et al. 2021): a Gaussian
  smoothing that lowers the effective resolution to ~25 km, a cold bias that grows
  with elevation, a wet soil-moisture bias in dry climates, damped soil-moisture
  anomalies, a one-day lag (phase shift) of soil moisture and temperature, extra light
  rain; soil layers 0-7, 7-28, 28-100 and 100-289 cm mapped from the truth layers (the
  90-100 cm layer extended below 1 m, the 40 cm temperature held below 40 cm);
  evaporation and potential evaporation from the world's (biased), or a
  Priestley-Taylor estimate when the world has none;
* **CCI** (0.25° daily, combined product; Dorigo et al. 2017; Liu et al., seed 002 on its
  gaps): compressed range, retrieval noise, the CCI ``flag`` bits (1 frozen/snow,
  2 dense vegetation, 4 retrieval failure, 8 above the physical bound, 16 low
  weight), and days without an overpass as moving, spatially coherent gaps that are
  more frequent in winter;
* **SMAP** (EASE-Grid 2.0 36 km, AM descending, as used by Rao et al., seed 004, and
  Song et al., seed 003): a dry bias and noise, descending swaths 1000 km wide whose seams move
  every day with the 8-day repeat orbit (a pixel is seen every 2-3 days at these
  latitudes), frozen/snow, dense-vegetation and radio-frequency-interference
  dropouts.

Usage
-----
>>> from soilfuse.twin.observe_grids import grid_blocks, observe_grids, plan_grids
>>> grids = observe_grids(world)  # doctest: +SKIP
>>> grids["reanalysis"]["sm"].dims  # doctest: +SKIP
('time', 'depth', 'y', 'x')
>>> plan = plan_grids(world)  # doctest: +SKIP
>>> [block["cci"].sizes["time"] for block in grid_blocks(plan)][:2]  # doctest: +SKIP
[32, 32]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter

from soilfuse._typing import FloatArray, Region
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords, variable_attrs
from soilfuse.twin.fields import SmoothSeries
from soilfuse.twin.observe_common import (
    AreaAccumulator,
    day_numbers,
    hash_normal,
    profile_of,
    profile_weights,
    snap_region,
    tiles,
)
from soilfuse.twin.observe_satellite import (
    CCIModel,
    SMAPModel,
    cci_block,
    cci_datasets,
    cci_gap_series,
    cci_grid,
    smap_block,
    smap_datasets,
    smap_grid,
)

__all__ = [
    "ERA5_LAYERS",
    "CCIModel",
    "GridPlan",
    "ReanalysisModel",
    "SMAPModel",
    "cci_grid",
    "grid_blocks",
    "land_fractions",
    "observe_grids",
    "plan_grids",
    "reanalysis_grid",
    "smap_grid",
]

logger = logging.getLogger(__name__)

#: ERA5 / ERA5-Land soil layers (top, bottom) in cm.
ERA5_LAYERS: tuple[tuple[float, float], ...] = ((0, 7), (7, 28), (28, 100), (100, 289))
_FORCING = ("t2m", "tp", "ssrd", "ssr", "strd", "u10", "v10", "sd", "lai")
# Evaporation and potential evaporation (mm day-1, positive upward): taken from the world
# when it provides them, else estimated by Priestley-Taylor from the reanalysis fields.
_EVAP = ("e", "pev")
_STREAM: dict[str, int] = {"rea": 201}
#: Largest block of days of the reanalysis-grid area means (bytes); the error model
#: holds a few arrays of that size at once.
_BLOCK_BYTES = 64 * 2**20
_SIGMA = 5.670374419e-8  # Stefan-Boltzmann constant, W m-2 K-4
_LATENT = 2.45e6  # latent heat of vaporisation, J kg-1


def _cover_bias() -> dict[int, float]:
    return {1: -1.0, 2: 0.5, 3: 1.0, 4: 2.0, 5: 0.0, 6: 1.5}


def _wet_bias() -> dict[int, float]:
    return {1: 0.08, 2: 0.05, 3: 0.02, 4: 0.0, 5: 0.03}


@dataclass(frozen=True)
class ReanalysisModel:
    """Errors of the ERA5-Land-like reanalysis.

    Parameters
    ----------
    resolution : float
        Grid spacing in degrees.
    smooth_cells : float
        Standard deviation of the Gaussian smoothing, in grid cells.
    t_lapse_bias : float
        Temperature bias per km of elevation above the domain mean (K km-1).
    t_noise_sd : float
        Daily, spatially smooth temperature error (K).
    sm_wet_bias : mapping of int to float
        Soil-moisture bias (m3 m-3) by climate zone (1 arid … 5 cold).
    sm_damping : float
        Fraction of the soil-moisture anomaly (about the mean of field capacity and
        wilting point) the reanalysis keeps.
    sm_lag : float
        Weight of the previous day in soil moisture (phase shift).
    st_lag : float
        Weight of the previous day in soil temperature.
    st_coupling : float
        Fraction of the soil-minus-air temperature difference the reanalysis keeps.
        A land-surface model with its own vegetation and soil parameters couples the
        soil too tightly to the air (values < 1), as reported for ERA5-Land against
        station soil temperature (its R² of 0.83–0.89 in Wang et al. 2025).
    st_cover_bias : mapping of int to float
        Soil-temperature bias (K) by land-cover class (1 forest … 6 urban): the
        reanalysis' vegetation tiles differ from the real cover.
    st_snow_bias : float
        Soil-temperature bias (K) where there is snow (cold bias of the snow scheme).
    tp_factor : float
        Multiplicative precipitation bias.
    tp_drizzle : float
        Light rain (mm day-1) added wherever the smoothed field has any rain.
    e_factor, pev_factor : float
        Multiplicative biases of evaporation and potential evaporation.
    """

    resolution: float = 0.1
    smooth_cells: float = 1.0
    t_lapse_bias: float = -1.2
    t_noise_sd: float = 0.6
    sm_wet_bias: Mapping[int, float] = field(default_factory=_wet_bias)
    sm_damping: float = 0.6
    sm_lag: float = 0.35
    st_lag: float = 0.25
    st_coupling: float = 0.5
    st_cover_bias: Mapping[int, float] = field(default_factory=_cover_bias)
    st_snow_bias: float = -1.5
    tp_factor: float = 1.1
    tp_drizzle: float = 0.3
    e_factor: float = 1.15
    pev_factor: float = 0.9


# ====================================================================== grids
def reanalysis_grid(region: Region, resolution: float = 0.1) -> Grid:
    """The 0.1° lat-lon grid (edges on multiples of the resolution) covering ``region``."""
    return Grid.latlon(snap_region(region, resolution), resolution)


# ====================================================================== main entry
@dataclass(frozen=True)
class GridPlan:
    """What the coarse products of a world need before its days are visited.

    Made by :func:`plan_grids`; :func:`grid_blocks` then produces the products block of
    days by block of days, and :func:`observe_grids` assembles the whole period.

    Attributes
    ----------
    world : soilfuse.twin.World
        The world.
    models : tuple of ReanalysisModel, CCIModel, SMAPModel
        The error models.
    grids : dict of str to Grid
        The ``rea``, ``cci`` and ``smap`` grids.
    accumulators : dict of str to AreaAccumulator
        Area-mean weights from the fine grid to each of them.
    statics : dict of str to dict of str to numpy.ndarray
        Area means of the static fields each product needs, per grid.
    gaps : SmoothSeries
        The field whose low values are the days without a CCI observation.
    """

    world: Any
    models: tuple[ReanalysisModel, CCIModel, SMAPModel]
    grids: Mapping[str, Grid]
    accumulators: Mapping[str, AreaAccumulator]
    statics: Mapping[str, Mapping[str, FloatArray]]
    gaps: SmoothSeries

    @property
    def times(self) -> pd.DatetimeIndex:
        """Days of the world."""
        return pd.DatetimeIndex(self.world.truth["time"].values)


def plan_grids(
    world: Any,
    *,
    reanalysis: ReanalysisModel | None = None,
    cci: CCIModel | None = None,
    smap: SMAPModel | None = None,
) -> GridPlan:
    """Grids, area-mean weights and static area means of the coarse products of ``world``.

    Parameters
    ----------
    world : soilfuse.twin.World
        The world.
    reanalysis, cci, smap : optional
        Error models; defaults when None.

    Returns
    -------
    GridPlan
        Input of :func:`grid_blocks`; reads the static maps tile by tile, no day yet.
    """
    models = (reanalysis or ReanalysisModel(), cci or CCIModel(), smap or SMAPModel())
    cfg = world.config
    grids = {"rea": reanalysis_grid(cfg.region, models[0].resolution),
             "cci": cci_grid(cfg.region, models[1].resolution), "smap": smap_grid(cfg.region)}
    acc = {
        "rea": AreaAccumulator(cfg.grid, grids["rea"], min_coverage=0.5),
        "cci": AreaAccumulator(cfg.grid, grids["cci"], min_coverage=models[1].min_coverage),
        "smap": AreaAccumulator(cfg.grid, grids["smap"], min_coverage=models[2].min_coverage),
    }
    statics = _aggregate_static(world, acc, cfg.tile, models[0])
    gaps = cci_gap_series(grids["cci"], world.truth.sizes["time"], cfg.seed, cfg.region)
    return GridPlan(world, models, grids, acc, statics, gaps)


def observe_grids(
    world: Any,
    *,
    reanalysis: ReanalysisModel | None = None,
    cci: CCIModel | None = None,
    smap: SMAPModel | None = None,
) -> dict[str, xr.Dataset]:
    """Reanalysis, CCI and SMAP products of a world, with the truth on their grids.

    Parameters
    ----------
    world : soilfuse.twin.World
        The world.
    reanalysis, cci, smap : optional
        Error models; defaults when None.

    Returns
    -------
    dict of str to xarray.Dataset
        ``reanalysis`` (canonical names and units, ERA5 layers on ``depth``), ``cci``
        (``sm``, ``sm_uncertainty``, ``flag``, ``t0``, ``dnflag``, ``mode``,
        ``sensor``, ``freqbandID``), ``smap`` (``sm``, ``sm_dca``), and
        ``reanalysis_truth``, ``cci_truth``, ``smap_truth``: the error-free area means
        of the truth on each grid (for scoring).

    See Also
    --------
    grid_blocks : the same products one block of days at a time (memory bounded by the block).
    """
    plan = plan_grids(world, reanalysis=reanalysis, cci=cci, smap=smap)
    n_times = plan.times.size
    parts: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {k: ({}, {}) for k in plan.grids}
    for ts, products in _product_blocks(plan):
        for key, (obs, truth) in products.items():
            _place(parts[key][0], obs, ts, n_times)
            _place(parts[key][1], truth, ts, n_times)
    return _datasets(plan, parts, plan.times)


def grid_blocks(plan: GridPlan) -> Iterator[dict[str, xr.Dataset]]:
    """The products of :func:`observe_grids` for consecutive blocks of days.

    Values are those of the whole-period products on the same days; memory follows
    one block of days on the coarse grids (besides the plan), not the period.

    Parameters
    ----------
    plan : GridPlan
        From :func:`plan_grids`.

    Yields
    ------
    dict of str to xarray.Dataset
        The datasets of :func:`observe_grids` (same keys) on the days of one block.
    """
    for ts, products in _product_blocks(plan):
        yield _datasets(plan, products, plan.times[ts])


def land_fractions(plan: GridPlan) -> dict[str, xr.Dataset]:
    """Land share (1) of every cell of the ``reanalysis``, ``cci`` and ``smap`` grids.

    Stands in for the products when they are streamed (:func:`grid_blocks`): carries
    their grids without any day.
    """
    names = {"rea": "reanalysis", "cci": "cci", "smap": "smap"}
    return {names[key]: with_grid(xr.Dataset({"land_fraction": (
        ("y", "x"), plan.statics[key]["land_fraction"].astype("float32"))}), grid)
        for key, grid in plan.grids.items()}


def _product_blocks(plan: GridPlan) -> Iterator[tuple[slice, dict[str, tuple[dict[str, np.ndarray],
                                                                            dict[str, np.ndarray]]]]]:
    """Products and their truth, ``(day, ...)`` arrays by name, of consecutive blocks of days.

    The errors are added block by block; one day carried over from the previous block
    makes the lagged reanalysis fields equal to a computation over the whole period.

    Yields
    ------
    days : slice
        Days of the block (indices into the world's time axis).
    products : dict
        ``rea``, ``cci`` and ``smap``: ``(observed, truth)``, each a dict of arrays.
    """
    rea_m, cci_m, smap_m = plan.models
    cfg, times, g = plan.world.config, plan.times, plan.grids
    _, sm_t, sm_b = profile_of(plan.world.truth, "sm")
    _, st_t, st_b = profile_of(plan.world.truth, "st")
    previous: FloatArray | None = None
    for ts, fields in _coarse_blocks(plan.world, plan.accumulators):
        first = ts.start - (0 if previous is None else 1)
        f_rea = fields["rea"] if previous is None else np.concatenate([previous, fields["rea"]])
        rea, rea_truth = _reanalysis_block(f_rea, plan.statics["rea"], (sm_t, sm_b), (st_t, st_b), g["rea"],
                                           times[first:ts.stop], rea_m, cfg.seed)
        skip = ts.start - first
        yield ts, {
            "rea": ({k: v[skip:] for k, v in rea.items()}, {k: v[skip:] for k, v in rea_truth.items()}),
            "cci": cci_block(fields["cci"], plan.statics["cci"], g["cci"], times, ts, cci_m, cfg.seed,
                              plan.gaps),
            "smap": smap_block(fields["smap"], g["smap"], times[ts], smap_m, cfg.seed),
        }
        previous = fields["rea"][-1:]
        logger.debug("grids: days %d-%d done", ts.start, ts.stop - 1)


def _datasets(plan: GridPlan, parts: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
              times: pd.DatetimeIndex) -> dict[str, xr.Dataset]:
    """The products and their truth on the days ``times`` as the datasets of :func:`observe_grids`."""
    g = plan.grids
    rea_ds, rea_ref = _reanalysis_datasets(*parts["rea"], plan.statics["rea"], g["rea"], times)
    cci_ds, cci_ref = cci_datasets(*parts["cci"], g["cci"], times)
    smap_ds, smap_ref = smap_datasets(*parts["smap"], g["smap"], times)
    return {"reanalysis": rea_ds, "cci": cci_ds, "smap": smap_ds, "reanalysis_truth": rea_ref,
            "cci_truth": cci_ref, "smap_truth": smap_ref}


def _coarse_blocks(world: Any, acc: Mapping[str, AreaAccumulator]) -> Iterator[tuple[slice, dict[str, FloatArray]]]:
    """Area means on the coarse grids of consecutive blocks of days, accumulated tile by tile.

    Blocks follow the world's own time chunks (a misaligned block would decompress the
    same chunk several times), shortened to whole divisors of a chunk when a chunk's
    days on the reanalysis grid would exceed :data:`_BLOCK_BYTES`: memory follows one
    tile and one block of days on the coarse grids (the accumulators build each tile's
    overlap weights as it comes), not the period or the fine domain.

    Yields
    ------
    days : slice
        Days of the block (indices into the world's time axis).
    fields : dict of str to numpy.ndarray
        ``rea``: ``(day, channel, y, x)`` sm layers (m3 m-3), st depths (K), forcing and
        the frozen fraction; ``cci`` and ``smap``: ``(day, 4, y, x)`` surface (0-5 cm) soil
        moisture (m3 m-3), frozen fraction (1), snow water equivalent (m) and LAI
        (m2 m-2); NaN where the land cover is too small.
    """
    cfg = world.config
    sm, sm_t, sm_b = profile_of(world.truth, "sm")
    n_sm, n_st = sm.shape[1], profile_of(world.truth, "st")[0].shape[1]
    w_surf = profile_weights(sm_t, sm_b, [0.0], [5.0])[0]
    names = _forcing_names(world)
    n_ch = n_sm + n_st + len(names) + 1
    nt = world.truth.sizes["time"]
    chunk = int(sm.chunks[0][0]) if sm.chunks is not None else 32
    day_bytes = n_ch * math.prod(acc["rea"].coarse.shape) * 8
    block = next(d for d in range(chunk, 0, -1) if chunk % d == 0 and (d == 1 or d * day_bytes <= _BLOCK_BYTES))
    for t0 in range(0, nt, block):
        ts = slice(t0, min(nt, t0 + block))
        for key, a in acc.items():
            a.reset((ts.stop - ts.start, n_ch if key == "rea" else 4))
        for rows, cols in tiles(cfg.grid.shape, cfg.tile):
            arr = _load_block(world, names, ts, rows, cols)
            acc["rea"].add(arr, rows, cols)
            surf = np.einsum("k,tkyx->tyx", w_surf, arr[:, :n_sm])
            small = np.stack([surf, arr[:, -1], arr[:, n_sm + n_st + names.index("sd")],
                              arr[:, n_sm + n_st + names.index("lai")]], axis=1)
            acc["cci"].add(small, rows, cols)
            acc["smap"].add(small, rows, cols)
        yield ts, {key: a.result()[0] for key, a in acc.items()}


def _place(store: dict[str, np.ndarray], block: Mapping[str, np.ndarray], days: slice, n_times: int) -> None:
    """Copy the ``(day, ...)`` arrays of a block into whole-period arrays."""
    for name, values in block.items():
        if name not in store:
            store[name] = np.empty((n_times, *values.shape[1:]), dtype=values.dtype)
        store[name][days] = values


def _forcing_names(world: Any) -> tuple[str, ...]:
    extra = _EVAP if all(v in world.forcing for v in _EVAP) else ()
    return (*_FORCING, *extra)


def _load_block(world: Any, names: tuple[str, ...], ts: slice, rows: slice, cols: slice) -> FloatArray:
    """Fine channels ``(time, channel, y, x)``: sm layers, st depths, forcing, frozen."""
    sel = {"time": ts, "y": rows, "x": cols}
    truth = world.truth[["sm", "st", "frozen"]].isel(sel).load()
    forcing = world.forcing[list(names)].isel(sel).load()
    sm, _, _ = profile_of(truth, "sm")
    st, _, _ = profile_of(truth, "st")
    parts = [np.asarray(sm.values, "float32"), np.asarray(st.values, "float32")]
    parts += [np.asarray(forcing[v].transpose("time", "y", "x").values, "float32")[:, None] for v in names]
    parts.append(np.asarray(truth["frozen"].transpose("time", "y", "x").values, "float32")[:, None])
    return np.concatenate(parts, axis=1)


_STATIC_FIELDS = ("elevation", "wet_bias", "land_fraction", *(f"ref{i}" for i in range(len(ERA5_LAYERS))),
                  "st_cover_bias", "fc1", "wp1", "porosity")


def _static_fields(static: xr.Dataset, rea_m: ReanalysisModel) -> FloatArray:
    """Fine static fields the products need, ``(field, y, x)`` in the order of :data:`_STATIC_FIELDS`.

    Elevation (m), reanalysis wet bias (m3 m-3), land fraction (1), the reference soil
    moisture of each ERA5 layer (m3 m-3, mean of field capacity and wilting point),
    reanalysis soil-temperature bias by cover (K), field capacity and wilting point of
    the first ERA5 layer and the 0-5 cm porosity (m3 m-3).
    """
    cz = np.asarray(static["climate_zone"].values)
    wet = np.vectorize(lambda z: rea_m.sm_wet_bias.get(int(z), 0.0))(cz) if cz.size else cz
    lc = np.asarray(static["land_cover"].values)
    cover = np.vectorize(lambda c: rea_m.st_cover_bias.get(int(c), 0.0))(lc) if lc.size else lc
    water = np.asarray(static["water_fraction"].values, "float64") if "water_fraction" in static \
        else (lc == 5).astype("float64")
    fc, fc_t, fc_b = profile_of(static, "field_capacity")
    wp, _, _ = profile_of(static, "wilting_point")
    por, _, _ = profile_of(static, "porosity")
    fc_v, wp_v = np.asarray(fc.values), np.asarray(wp.values)
    w_era = profile_weights(fc_t, fc_b, [a for a, _ in ERA5_LAYERS], [b for _, b in ERA5_LAYERS])
    w_surf = profile_weights(fc_t, fc_b, [0.0], [5.0])
    ref = 0.5 * (np.tensordot(w_era, fc_v, 1) + np.tensordot(w_era, wp_v, 1))
    return np.concatenate([
        np.asarray(static["elevation"].values, "float64")[None], wet[None], 1.0 - water[None], ref,
        np.asarray(cover, "float64")[None],
        np.tensordot(w_era[:1], fc_v, 1), np.tensordot(w_era[:1], wp_v, 1),
        np.tensordot(w_surf, np.asarray(por.values), 1),
    ])


def _aggregate_static(world: Any, acc: Mapping[str, AreaAccumulator], tile: int,
                      rea_m: ReanalysisModel) -> dict[str, dict[str, FloatArray]]:
    """Area means of the static maps each product needs, read tile by tile."""
    for a in acc.values():
        a.reset((len(_STATIC_FIELDS),))
    for rows, cols in tiles(world.config.grid.shape, tile):
        fields = _static_fields(world.static.isel(y=rows, x=cols).load(), rea_m)
        for a in acc.values():
            a.add(fields, rows, cols)
    result: dict[str, dict[str, FloatArray]] = {}
    for key, a in acc.items():
        mean, frac = a.result()
        result[key] = dict(zip(_STATIC_FIELDS, mean, strict=True))
        result[key]["coverage"] = a.coverage()
        result[key]["land_fraction"] = np.where(np.isfinite(mean[2]), mean[2] * frac[2], 0.0)
    return result


# ====================================================================== reanalysis
def _smooth(values: FloatArray, sigma: float) -> FloatArray:
    """NaN-aware Gaussian smoothing of the last two axes (normalised convolution)."""
    if sigma <= 0:
        return values
    valid = np.isfinite(values)
    sig = (0,) * (values.ndim - 2) + (sigma, sigma)
    num = gaussian_filter(np.where(valid, values, 0.0), sig, mode="nearest")
    den = gaussian_filter(valid.astype("float64"), sig, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, num / den, np.nan)


def _lagged(x: FloatArray, weight: float) -> FloatArray:
    """``(1 - w) x(t) + w x(t-1)`` along axis 0 (the first day keeps its value)."""
    prev = np.concatenate([x[:1], x[:-1]], axis=0)
    return (1.0 - weight) * x + weight * prev


def _reanalysis_block(
    f: FloatArray, stat: Mapping[str, FloatArray], sm_b: tuple[FloatArray, FloatArray],
    st_b: tuple[FloatArray, FloatArray], grid: Grid, times: pd.DatetimeIndex,
    m: ReanalysisModel, seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Reanalysis fields and their error-free truth for consecutive days (float32, ``(day, ...)``).

    ``f`` holds the area means of :func:`_coarse_blocks` (``rea``) of the days
    ``times``; the first day's lagged fields use that day itself.
    """
    n_sm, n_st = sm_b[0].size, st_b[0].size
    tops, bots = [a for a, _ in ERA5_LAYERS], [b for _, b in ERA5_LAYERS]
    w_sm = profile_weights(sm_b[0], sm_b[1], tops, bots)
    w_st = profile_weights(st_b[0], st_b[1], tops, bots)
    sm_true = np.einsum("lk,tkyx->tlyx", w_sm, f[:, :n_sm])
    st_true = np.einsum("lk,tkyx->tlyx", w_st, f[:, n_sm:n_sm + n_st])
    names = _FORCING + (_EVAP if f.shape[1] > n_sm + n_st + len(_FORCING) + 1 else ())
    forc = {v: f[:, n_sm + n_st + i] for i, v in enumerate(names)}
    s = m.smooth_cells
    elev = stat["elevation"]
    t_bias = m.t_lapse_bias * (elev - np.nanmean(elev)) / 1000.0
    rows, cols = np.arange(grid.shape[0])[:, None], np.arange(grid.shape[1])[None, :]
    t_err = np.stack([_smooth(m.t_noise_sd * 2.0 * hash_normal(seed, _STREAM["rea"], d, rows, cols), 2.0)
                      for d in day_numbers(times)])
    t2m = _smooth(forc["t2m"], s) + t_bias + t_err
    st_s = _lagged(_smooth(st_true, s), m.st_lag)
    t2m_s = _smooth(forc["t2m"], s)[:, None]
    snow = np.where(_smooth(forc["sd"], s) > 0.005, m.st_snow_bias, 0.0)[:, None]
    st = (t2m_s + m.st_coupling * (st_s - t2m_s) + stat["st_cover_bias"][None, None] + snow
          + t_bias[None] + t_err[:, None])
    ref = np.stack([stat[f"ref{i}"] for i in range(len(ERA5_LAYERS))])
    sm_s = _lagged(_smooth(sm_true, s), m.sm_lag)
    sm = ref + m.sm_damping * (sm_s - ref) + stat["wet_bias"]
    sm = np.clip(sm, 0.01, 0.6)
    tp_s = _smooth(forc["tp"], s)
    tp = m.tp_factor * tp_s + np.where(tp_s > 0.05, m.tp_drizzle, 0.0)
    ssr, strd = _smooth(forc["ssr"], s) * 1.03, _smooth(forc["strd"], s) - 5.0
    if "pev" in forc:
        pev = _smooth(forc["pev"], s) * m.pev_factor
        e = _smooth(forc["e"], s) * m.e_factor
    else:
        pev = _priestley_taylor(ssr, strd, t2m)
        e = pev * np.clip((sm[:, 0] - stat["wp1"]) / (stat["fc1"] - stat["wp1"]), 0.0, 1.0)
    data = {
        "t2m": t2m, "tp": tp, "ssrd": _smooth(forc["ssrd"], s) * 1.03, "ssr": ssr, "strd": strd,
        "u10": _smooth(forc["u10"], s), "v10": _smooth(forc["v10"], s),
        "sd": np.clip(_smooth(forc["sd"], s) * 1.2, 0.0, None), "pev": pev, "e": e, "sm": sm, "st": st,
    }
    truth = {**forc, "sm": sm_true, "st": st_true}
    return ({k: v.astype("float32") for k, v in data.items()},
            {k: v.astype("float32") for k, v in truth.items()})


def _reanalysis_datasets(data: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray],
                         stat: Mapping[str, FloatArray], grid: Grid,
                         times: pd.DatetimeIndex) -> tuple[xr.Dataset, xr.Dataset]:
    """The reanalysis and its truth as annotated datasets (ERA5 layers on ``depth``)."""
    coords = {"time": times, **depth_coords([a for a, _ in ERA5_LAYERS], [b for _, b in ERA5_LAYERS])}

    def dims(name: str) -> tuple[str, ...]:
        return ("time", "depth", "y", "x") if name in ("sm", "st") else ("time", "y", "x")

    ds = xr.Dataset(
        {k: (dims(k), v) for k, v in data.items()}
        | {"land_fraction": (("y", "x"), stat["land_fraction"].astype("float32"))},
        coords=coords,
        attrs={"title": "Synthetic ERA5-Land-like reanalysis (soilfuse twin)"},
    )
    ref_ds = xr.Dataset({k: (dims(k), v) for k, v in truth.items()}, coords=coords)
    return _annotate(with_grid(ds, grid)), _annotate(with_grid(ref_ds, grid))


def _priestley_taylor(ssr: FloatArray, strd: FloatArray, t2m: FloatArray) -> FloatArray:
    """Potential evaporation (mm day-1, positive upward), Priestley & Taylor (1972), alpha 1.26."""
    tc = t2m - 273.15
    es = 0.6108 * np.exp(17.27 * tc / (tc + 237.3))
    delta = 4098.0 * es / (tc + 237.3) ** 2
    gamma = 0.066
    rn = ssr + 0.97 * strd - 0.97 * _SIGMA * t2m**4
    return np.clip(1.26 * delta / (delta + gamma) * rn / _LATENT * 86400.0, 0.0, None)


def _annotate(ds: xr.Dataset) -> xr.Dataset:
    for name in ds.data_vars:
        try:
            attrs = variable_attrs(str(name))
        except KeyError:
            continue
        ds[name].attrs.update(attrs)
    return ds
