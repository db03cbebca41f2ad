"""MODIS-like 1 km optical and thermal products of the twin, with clouds and QC bits.

Every product is a lazy Dask array on the fine grid, computed block by block (a MODIS
16-day period × a spatial tile) from the world's truth, so peak memory follows the
block, not the domain:

* **clouds**: a spatially coherent field (two AR(1) smooth random fields of
  :class:`soilfuse.twin.fields.SmoothSeries`, ~60 km and ~15 km) is thresholded so that
  each pixel is cloudy with the probability given by the world's ``cloud_fraction``,
  raised on rainy days; a thin band around clouds is kept but flagged as
  cloud-contaminated ("other quality"), and a few pixels fail for other reasons. The
  night overpass has its own, partly correlated, cloud field.
* **LST** day/night (MOD11A1-like): truth plus sensor noise; cloud-contaminated
  pixels are colder and noisier; QC bits as in MOD11 (bits 0-1: 00 good, 01 other
  quality, 10 not produced due to cloud, 11 not produced for other reasons; bits 2-3
  data quality; bits 6-7 LST error class).
* **reflectance** bands 1-7 (MOD09GA-like): truth with relative and absolute noise
  under the day overpass's clear sky, brighter where cloud-contaminated.
* **NDVI/EVI** (MOD13A2-like): 16-day maximum-value composites of the clear days
  (EVI of the day NDVI was largest; Holben 1986), missing when no day was clear.
* **LAI** (MCD15A2H-like): 8-day composites (largest clear-sky value).
* **albedo** (MCD43A3-like): daily, available when the 16-day window holds at least
  :attr:`OpticalModel.albedo_min_clear` clear days (the BRDF inversion needs several).

Composite periods restart every 1 January (day of year 1, 17, … and 1, 9, …) and are
labelled with their nominal start date, which can precede the first day of the run.

Usage
-----
>>> from soilfuse.twin.observe_optical import observe_optical
>>> modis = observe_optical(world)  # doctest: +SKIP
>>> modis["ndvi"].dims  # doctest: +SKIP
('time_16d', 'y', 'x')
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from soilfuse._typing import FloatArray
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import variable_attrs
from soilfuse.twin.fields import SmoothSeries
from soilfuse.twin.observe_common import composite_periods, hash_normal, hash_uniform

__all__ = ["SKY_CODES", "OpticalModel", "mod11_qc", "observe_optical"]

logger = logging.getLogger(__name__)

#: Sky state codes of the cloud masks: clear, cloud-contaminated edge, cloudy, failed.
SKY_CODES = {"clear": 0, "edge": 1, "cloudy": 2, "failed": 3}
_STREAM = {"lst_day": 301, "lst_night": 302, "refl": 310, "ndvi": 320, "evi": 321, "lai": 322,
           "albedo": 323, "failed": 330}
# The day and night sky masks are kept in memory (computed once) up to this size in bytes;
# larger ones are recomputed per 16-day period and tile, which bounds their memory on any domain.
_PERSIST_LIMIT = 2**28


@dataclass(frozen=True)
class OpticalModel:
    """Cloud and sensor-noise parameters of the MODIS-like products.

    Parameters
    ----------
    rain_cloud : float
        Added to the cloud probability on days with more than ``rain_threshold`` mm.
    rain_threshold : float
        Daily precipitation (mm) counted as a rainy day.
    large_scale_km, small_scale_km : float
        Correlation lengths of the two cloud fields (km).
    large_share : float
        Variance share of the large-scale field (0-1).
    day_persistence : float
        Day-to-day autocorrelation of the cloud fields.
    night_correlation : float
        Correlation of the night cloud field with the day field.
    edge_band : float
        Width, in cloud probability, of the contaminated band around clouds.
    failed_rate : float
        Probability that a pixel is not produced for other reasons.
    lst_noise_sd : float
        LST sensor noise (K).
    edge_lst_bias, edge_lst_sd : float
        Extra bias (K, negative: colder) and noise (K) of contaminated LST pixels.
    refl_rel_sd, refl_abs_sd : float
        Relative and absolute reflectance noise (1).
    edge_refl_bias : float
        Brightening of contaminated reflectances (1).
    ndvi_sd, lai_sd, albedo_sd : float
        Noise of daily NDVI/EVI (1), LAI (m2 m-2) and albedo (1).
    albedo_min_clear : int
        Clear days in the 16-day window needed for an albedo value.
    """

    rain_cloud: float = 0.3
    rain_threshold: float = 1.0
    large_scale_km: float = 60.0
    small_scale_km: float = 15.0
    large_share: float = 0.75
    day_persistence: float = 0.4
    night_correlation: float = 0.6
    edge_band: float = 0.06
    failed_rate: float = 0.005
    lst_noise_sd: float = 0.7
    edge_lst_bias: float = -2.0
    edge_lst_sd: float = 2.0
    refl_rel_sd: float = 0.03
    refl_abs_sd: float = 0.005
    edge_refl_bias: float = 0.05
    ndvi_sd: float = 0.02
    lai_sd: float = 0.15
    albedo_sd: float = 0.01
    albedo_min_clear: int = 3


def mod11_qc(sky: np.ndarray) -> np.ndarray:
    """MOD11A1 QC byte of each sky code.

    Good pixels get 0; contaminated ones ``0b10_00_01_01`` (other quality, other
    data quality, LST error ≤ 3 K) = 133; cloudy ones 2 (not produced due to cloud);
    failed ones 3 (not produced, other reasons).

    Examples
    --------
    >>> mod11_qc(np.array([0, 1, 2, 3], dtype="uint8")).tolist()
    [0, 133, 2, 3]
    """
    table = np.array([0, 133, 2, 3], dtype="uint8")
    return table[np.asarray(sky, dtype="int64")]


# ====================================================================== kernels
def _sky_codes(cloud_fraction: np.ndarray, tp: np.ndarray, *, times: slice, rows: slice, cols: slice,
               world_info: dict[str, Any], m: OpticalModel) -> np.ndarray:
    """Day and night sky codes of days ``times`` on cells ``rows x cols``: ``(2, time, y, x)``.

    ``cloud_fraction`` and ``tp`` hold those days and cells. The smooth cloud series
    are built once per call for the cells; days are processed 32 at a time.
    """
    lon, lat = world_info["lon"][cols], world_info["lat"][rows]
    seed, region, nt = world_info["seed"], world_info["region"], world_info["n_times"]
    rho = m.day_persistence
    large = SmoothSeries(seed, "cloud-large", region, m.large_scale_km, rho, nt, lon, lat)
    small = SmoothSeries(seed, "cloud-small", region, m.small_scale_km, rho, nt, lon, lat)
    night_f = SmoothSeries(seed, "cloud-night", region, 2 * m.small_scale_km, rho, nt, lon, lat)
    out = np.empty((2, *cloud_fraction.shape), dtype="uint8")
    r = np.arange(rows.start, rows.stop)[None, :, None]
    c = np.arange(cols.start, cols.stop)[None, None, :]
    for t0 in range(times.start, times.stop, 32):
        t1 = min(times.stop, t0 + 32)
        k0, k1 = t0 - times.start, t1 - times.start
        z = np.sqrt(m.large_share) * large.values(t0, t1) + np.sqrt(1 - m.large_share) * small.values(t0, t1)
        cf = np.nan_to_num(cloud_fraction[k0:k1], nan=0.5)
        p = np.clip(cf + m.rain_cloud * (np.nan_to_num(tp[k0:k1]) > m.rain_threshold), 0.01, 0.99)
        day = world_info["days"][t0:t1][:, None, None]
        for night in (0, 1):
            if night:
                z = m.night_correlation * z + np.sqrt(1 - m.night_correlation**2) * night_f.values(t0, t1)
            u = ndtr(z)
            sky = np.where(u < p, 2, np.where(u < p + m.edge_band, 1, 0))
            failed = hash_uniform(seed, _STREAM["failed"] + night, day, r, c) < m.failed_rate
            out[night, k0:k1] = np.where(failed & (sky != 2), 3, sky)
    return out


def _sky_block(cloud_fraction: np.ndarray, tp: np.ndarray, *, info: dict[str, Any],
               world_info: dict[str, Any], m: OpticalModel) -> np.ndarray:
    """:func:`_sky_codes` of one Dask block, located by ``info``."""
    (t0, t1), (r0, r1), (c0, c1) = info["array-location"]
    return _sky_codes(cloud_fraction, tp, times=slice(t0, t1), rows=slice(r0, r1), cols=slice(c0, c1),
                      world_info=world_info, m=m)


def _sky_masks(world: Any, world_info: dict[str, Any], m: OpticalModel,
               chunks: tuple[tuple[int, ...], ...]) -> tuple[dsa.Array, dsa.Array]:
    """Lazy day and night sky codes ``(time, y, x)``.

    When both masks fit in :data:`_PERSIST_LIMIT` bytes they are computed once, one task
    per spatial tile over the whole period, and kept in memory; otherwise one task per
    16-day period and tile, recomputed by each product that needs them (memory stays
    bounded by the block).
    """
    cf = dsa.asarray(world.forcing["cloud_fraction"].transpose("time", "y", "x").data).rechunk(chunks)
    tp = dsa.asarray(world.forcing["tp"].transpose("time", "y", "x").data).rechunk(chunks)
    nt = world_info["n_times"]
    if 2 * cf.size > _PERSIST_LIMIT:
        both = dsa.map_blocks(_with_location(_sky_block), cf, tp, dtype="uint8", new_axis=0,
                              chunks=((2,), *chunks), meta=np.empty((0, 0, 0, 0), "uint8"),
                              world_info=world_info, m=m)
        return both[0], both[1]
    rows_blocks = []
    r0 = 0
    for ny in chunks[1]:
        row_blocks = []
        c0 = 0
        for nx in chunks[2]:
            rows, cols = slice(r0, r0 + ny), slice(c0, c0 + nx)
            task = dask.delayed(_sky_codes)(cf[:, rows, cols], tp[:, rows, cols], times=slice(0, nt),
                                            rows=rows, cols=cols, world_info=world_info, m=m)
            row_blocks.append(dsa.from_delayed(task, shape=(2, nt, ny, nx), dtype="uint8"))
            c0 += nx
        rows_blocks.append(dsa.concatenate(row_blocks, axis=3))
        r0 += ny
    both = dsa.concatenate(rows_blocks, axis=2).rechunk(((2,), *chunks)).persist()
    return both[0], both[1]


def _noise(seed: int, stream: int, info: dict[str, Any], days: np.ndarray) -> FloatArray:
    (t0, t1), (r0, r1), (c0, c1) = info["array-location"]
    return hash_normal(seed, stream, days[t0:t1][:, None, None], np.arange(r0, r1)[None, :, None],
                       np.arange(c0, c1)[None, None, :])


def _lst_kernel(truth: np.ndarray, sky: np.ndarray, *, info: dict[str, Any], seed: int,
                stream: int, days: np.ndarray, m: OpticalModel) -> np.ndarray:
    e = _noise(seed, stream, info, days)
    value = truth + np.where(sky == 1, m.edge_lst_bias + m.edge_lst_sd * e, m.lst_noise_sd * e)
    return np.where(sky <= 1, value, np.nan).astype("float32")


def _refl_kernel(truth: np.ndarray, sky: np.ndarray, *, info: dict[str, Any], seed: int,
                 stream: int, days: np.ndarray, m: OpticalModel) -> np.ndarray:
    e = _noise(seed, stream, info, days)
    value = truth * (1 + m.refl_rel_sd * e) + m.refl_abs_sd * e + np.where(sky == 1, m.edge_refl_bias, 0.0)
    return np.where(sky <= 1, np.clip(value, -0.01, 1.6), np.nan).astype("float32")


def _period_slices(n: int, starts: np.ndarray) -> list[slice]:
    return [slice(a, b) for a, b in itertools.pairwise([*starts.tolist(), n])]


def _vi_kernel(ndvi: np.ndarray, evi: np.ndarray, sky: np.ndarray, *, info: dict[str, Any],
               seed: int, days: np.ndarray, m: OpticalModel, which: str) -> np.ndarray:
    """16-day maximum-value composite of one block (a single period)."""
    e1 = _noise(seed, _STREAM["ndvi"], info, days)
    obs = np.where(sky == 0, ndvi + m.ndvi_sd * e1, np.where(sky == 1, ndvi - 0.1 + m.ndvi_sd * e1, -np.inf))
    best = np.argmax(obs, axis=0)
    ok = np.isfinite(np.max(obs, axis=0))
    if which == "ndvi":
        out = np.take_along_axis(obs, best[None], axis=0)[0]
    else:
        e2 = _noise(seed, _STREAM["evi"], info, days)
        ev = evi + m.ndvi_sd * e2 - np.where(sky == 1, 0.05, 0.0)
        out = np.take_along_axis(ev, best[None], axis=0)[0]
    return np.where(ok, np.clip(out, -0.2, 1.0), np.nan).astype("float32")[None]


def _lai_kernel(lai: np.ndarray, sky: np.ndarray, *, info: dict[str, Any], seed: int,
                days: np.ndarray, m: OpticalModel, starts8: np.ndarray) -> np.ndarray:
    """8-day composites (largest clear-sky LAI) of the 8-day periods inside one block."""
    e = _noise(seed, _STREAM["lai"], info, days)
    obs = np.where(sky == 0, np.clip(lai + m.lai_sd * e, 0.0, 10.0), -np.inf)
    out = []
    for sl in _period_slices(lai.shape[0], starts8):
        best = np.max(obs[sl], axis=0)
        out.append(np.where(np.isfinite(best), best, np.nan))
    return np.asarray(out, dtype="float32")


def _albedo_kernel(albedo: np.ndarray, sky: np.ndarray, *, info: dict[str, Any], seed: int,
                   days: np.ndarray, m: OpticalModel) -> np.ndarray:
    e = _noise(seed, _STREAM["albedo"], info, days)
    enough = np.sum(sky == 0, axis=0) >= m.albedo_min_clear
    value = np.clip(albedo + m.albedo_sd * e, 0.0, 1.0)
    return np.where(enough[None], value, np.nan).astype("float32")


# ====================================================================== wrapper
def observe_optical(world: Any, *, model: OpticalModel | None = None) -> xr.Dataset:
    """MODIS-like products of a world as a lazy dataset on the fine grid.

    Parameters
    ----------
    world : soilfuse.twin.World
        The world (truth ``lst_day``, ``lst_night``, ``refl_b1``…``refl_b7``, ``ndvi``,
        ``evi``, ``lai``, ``albedo``; forcing ``cloud_fraction``, ``tp``).
    model : OpticalModel, optional
        Cloud and noise parameters; defaults when None.

    Returns
    -------
    xarray.Dataset
        Daily (``time``): ``lst_day``, ``lst_night`` (K), ``qc_day``, ``qc_night``
        (uint8 MOD11 QC), ``refl_b1``…``refl_b7``, ``albedo`` (1), ``cloud``,
        ``cloud_night`` (bool). 16-day (``time_16d``): ``ndvi``, ``evi``. 8-day
        (``time_8d``): ``lai``. NaN where not observed. Dask-backed, chunked by
        16-day period and by the config's tile.
    """
    m = model or OpticalModel()
    cfg = world.config
    grid = cfg.grid
    times = pd.DatetimeIndex(world.truth["time"].values)
    p16 = composite_periods(times, 16)
    tchunks = tuple(b - a for a, b, _ in p16)
    ny, nx = grid.shape
    tile = int(cfg.tile)
    ychunks = tuple(min(tile, ny - r) for r in range(0, ny, tile))
    xchunks = tuple(min(tile, nx - c) for c in range(0, nx, tile))
    chunks = (tchunks, ychunks, xchunks)
    days = times.values.astype("datetime64[D]").astype("int64")
    world_info = {"lon": grid.x, "lat": grid.y, "seed": int(cfg.seed), "region": tuple(cfg.region),
                  "n_times": times.size, "days": days}
    seed = int(cfg.seed)

    def source(ds: xr.Dataset, name: str) -> dsa.Array:
        data = ds[name].transpose("time", "y", "x").data
        return dsa.asarray(data).astype("float32").rechunk(chunks)

    def block_map(func: Any, *arrays: dsa.Array, dtype: Any, **kw: Any) -> dsa.Array:
        return dsa.map_blocks(_with_location(func), *arrays, dtype=dtype, meta=np.empty((0, 0, 0), dtype), **kw)

    sky_day, sky_night = _sky_masks(world, world_info, m, chunks)
    sky = {False: sky_day, True: sky_night}
    data: dict[str, tuple[tuple[str, ...], Any, dict[str, Any]]] = {}
    dims = ("time", "y", "x")
    for name, night in (("lst_day", False), ("lst_night", True)):
        arr = block_map(_lst_kernel, source(world.truth, name), sky[night], dtype="float32",
                        seed=seed, stream=_STREAM[name], days=days, m=m)
        data[name] = (dims, arr, variable_attrs(name))
    for name, night in (("qc_day", False), ("qc_night", True)):
        data[name] = (dims, dsa.map_blocks(mod11_qc, sky[night], dtype="uint8"),
                      {"long_name": f"MOD11A1 QC byte ({'night' if night else 'day'})", "units": "1"})
    for b in range(1, 8):
        name = f"refl_b{b}"
        data[name] = (dims, block_map(_refl_kernel, source(world.truth, name), sky[False], dtype="float32",
                                      seed=seed, stream=_STREAM["refl"] + b, days=days, m=m),
                      variable_attrs(name))
    data["albedo"] = (dims, block_map(_albedo_kernel, source(world.truth, "albedo"), sky[False],
                                      dtype="float32", seed=seed, days=days, m=m), variable_attrs("albedo"))
    data["cloud"] = (dims, sky[False] == SKY_CODES["cloudy"], {"long_name": "cloudy at the day overpass"})
    data["cloud_night"] = (dims, sky[True] == SKY_CODES["cloudy"], {"long_name": "cloudy at the night overpass"})
    nd, ev, la = (source(world.truth, v) for v in ("ndvi", "evi", "lai"))
    vi_chunks = ((1,) * len(p16), ychunks, xchunks)
    for which in ("ndvi", "evi"):
        arr = block_map(_vi_kernel, nd, ev, sky[False], dtype="float32", chunks=vi_chunks,
                        seed=seed, days=days, m=m, which=which)
        data[which] = (("time_16d", "y", "x"), arr, variable_attrs(which))
    p8 = composite_periods(times, 8)
    starts8 = np.array([a for a, _, _ in p8])
    per_block = [int(np.sum((starts8 >= a) & (starts8 < b))) for a, b, _ in p16]
    lai_chunks = (tuple(per_block), ychunks, xchunks)
    lai_parts = [starts8[(starts8 >= a) & (starts8 < b)] - a for a, b, _ in p16]
    data["lai"] = (("time_8d", "y", "x"),
                   block_map(_lai_by_block(lai_parts), la, sky[False], dtype="float32", chunks=lai_chunks,
                             seed=seed, days=days, m=m),
                   variable_attrs("lai"))
    coords = {
        "time": times,
        "time_16d": pd.DatetimeIndex([d for _, _, d in p16]).as_unit("ns"),
        "time_8d": pd.DatetimeIndex([d for _, _, d in p8]).as_unit("ns"),
    }
    ds = xr.Dataset(data, coords=coords, attrs={"title": "Synthetic MODIS-like products (soilfuse twin)"})
    logger.debug("optical products: %d days, %d 16-day and %d 8-day periods", times.size, len(p16), len(p8))
    return with_grid(ds, grid)


def _with_location(func: Any) -> Any:
    """Adapt a kernel taking ``info=`` to Dask's ``block_info`` (location of the first input)."""

    def wrapped(*arrays: np.ndarray, block_info: dict[Any, Any] | None = None, **kw: Any) -> np.ndarray:
        info = block_info[0] if block_info else {"array-location": [(0, a) for a in arrays[0].shape]}
        return func(*arrays, info=info, **kw)

    return wrapped


def _lai_by_block(parts: list[np.ndarray]) -> Any:
    """LAI kernel that looks up the 8-day starts of its 16-day block by location."""

    def kernel(lai: np.ndarray, sky: np.ndarray, *, info: dict[str, Any], **kw: Any) -> np.ndarray:
        block = info["chunk-location"][0]
        return _lai_kernel(lai, sky, info=info, starts8=parts[block], **kw)

    return kernel
