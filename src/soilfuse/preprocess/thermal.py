"""Thermal covariates: daily mean LST, diurnal range, fractional cover and soil evaporative efficiency.

* :func:`lst_mean` — (LST_day + LST_night) / 2 in K (Wang et al. 2025, seed 000 §2.2.1).
* :func:`dtr` — diurnal LST range LST_day − LST_night in K (Liu et al., seed 002 §2.1.1).
* :func:`fractional_cover` — vegetation cover fv from NDVI between a bare-soil and a
  full-cover end-member, clipped to [0, 1].
* :func:`soil_evaporative_efficiency` — SEE from LST and fv in the spirit of
  Merlin et al. (2008) and DISPATCH (Merlin et al. 2012), as used by Song et al.
  (seed 003 eq. 2).

Estimator of SEE (per day and per window)
-----------------------------------------
The LST–fv space of the fine pixels inside each window (a coarse pixel: a block of
``block × block`` cells from the array's north-west corner, or any labelled ``zones``
map such as the 36 km cell of each 1 km pixel) is bounded by a hot (dry) edge and a
cold (wet) edge. Each edge is a straight line fitted by ordinary least squares through
per-bin quantiles: fv is split into ``bins`` equal bins on [0, 1]; in every bin with at
least ``min_per_bin`` pixels the ``1 − quantile`` (hot) and ``quantile`` (cold) LST
quantiles are taken at the bin's mean fv; at least ``min_bins`` such bins are needed.
From the edges:

* soil end-members ``Ts_max = hot(0)`` and ``Ts_min = cold(0)`` (bare-soil LST on the
  dry and wet edges),
* vegetation temperature ``Tv = (hot(1) + cold(1)) / 2`` (the mid-point of the two
  full-cover end-members, a simplification of the DISPATCH "hourglass"),
* soil temperature of each pixel from the linear decomposition
  ``LST = fv Tv + (1 − fv) Ts``, i.e. ``Ts = (LST − fv Tv) / (1 − fv)``,
* ``SEE = (Ts_max − Ts) / (Ts_max − Ts_min)`` clipped to [0, 1].

SEE is NaN where the window's edges cannot be fitted, where ``Ts_max − Ts_min`` is
below ``min_spread`` K, where ``fv > fv_max`` (Ts is ill-determined under dense
cover), and where LST or NDVI is missing. Pass the daytime LST (~10:30): the
temperature contrast between dry and wet soil is largest then.

Chunking: windows need all their pixels, so the data are rechunked to spatially whole
chunks (any time chunks); peak memory per task is a few images per time step.

Usage
-----
>>> import numpy as np, xarray as xr
>>> day = xr.DataArray([[300.0]], dims=("y", "x"), attrs={"units": "K"})
>>> night = xr.DataArray([[11.85]], dims=("y", "x"), attrs={"units": "degC"})
>>> ds = xr.Dataset({"lst_day": day, "lst_night": night})
>>> round(float(lst_mean(ds)[0, 0]), 3), round(float(dtr(ds)[0, 0]), 3)
(292.5, 15.0)
>>> float(fractional_cover(xr.DataArray(0.525), ndvi_soil=0.15, ndvi_veg=0.90))
0.5
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from soilfuse._typing import FloatArray, IntArray
from soilfuse.exceptions import DataError
from soilfuse.preprocess._common import annotate, float_dtype, require, require_dims, variable_as
from soilfuse.variables import VARIABLES

__all__ = [
    "dtr",
    "fractional_cover",
    "lst_mean",
    "see_kernel",
    "soil_evaporative_efficiency",
]

logger = logging.getLogger(__name__)


# ====================================================================== LST mean and DTR
def _day_night(ds: xr.Dataset, what: str) -> tuple[xr.DataArray, xr.DataArray]:
    day, night = require(ds, ("lst_day", "lst_night"), what=what)
    return variable_as(day, "lst_day"), variable_as(night, "lst_night")


def lst_mean(ds: xr.Dataset) -> xr.DataArray:
    """Daily mean land surface temperature (LST_day + LST_night) / 2.

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``lst_day`` and ``lst_night`` with ``units`` (K or degC; converted to K).

    Returns
    -------
    xarray.DataArray
        ``lst_mean`` in K (valid range 180–360 K); NaN where either input is NaN.

    Raises
    ------
    MissingVariableError
        If a variable is missing.
    UnitsError
        If the units are missing or not a temperature.
    """
    day, night = _day_night(ds, "lst_mean()")
    return annotate((day + night) / 2, "lst_mean", VARIABLES["lst_mean"].attrs())


def dtr(ds: xr.Dataset) -> xr.DataArray:
    """Diurnal land surface temperature range LST_day − LST_night.

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``lst_day`` and ``lst_night`` with ``units`` (K or degC).

    Returns
    -------
    xarray.DataArray
        ``dtr`` in K (valid range −60–80 K; usually positive); NaN where either input is NaN.

    Raises
    ------
    MissingVariableError
        If a variable is missing.
    UnitsError
        If the units are missing or not a temperature.
    """
    day, night = _day_night(ds, "dtr()")
    return annotate(day - night, "dtr", VARIABLES["dtr"].attrs())


# ====================================================================== fractional cover
def fractional_cover(ndvi: xr.DataArray, *, ndvi_soil: float = 0.15, ndvi_veg: float = 0.90) -> xr.DataArray:
    """Fractional vegetation cover ``(NDVI − NDVI_soil) / (NDVI_veg − NDVI_soil)`` clipped to [0, 1].

    Parameters
    ----------
    ndvi : xarray.DataArray
        NDVI (1).
    ndvi_soil, ndvi_veg : float
        NDVI of bare soil and of full cover (1); defaults as in Merlin et al. (2008).

    Returns
    -------
    xarray.DataArray
        ``fv`` (1) in [0, 1]; NaN where NDVI is NaN.

    Raises
    ------
    DataError
        If ``ndvi_veg <= ndvi_soil``.
    """
    if not ndvi_veg > ndvi_soil:
        msg = f"ndvi_veg must exceed ndvi_soil; got ndvi_soil={ndvi_soil}, ndvi_veg={ndvi_veg}."
        raise DataError(msg)
    ndvi = variable_as(ndvi, "ndvi")
    fv = ((ndvi - ndvi_soil) / (ndvi_veg - ndvi_soil)).clip(0.0, 1.0)
    attrs = {"units": "1", "long_name": "fractional vegetation cover",
             "comment": f"from NDVI with end-members {ndvi_soil} (bare soil) and {ndvi_veg} (full cover)"}
    return annotate(fv, "fv", attrs)


# ====================================================================== SEE kernel
def _group_quantile(values: FloatArray, starts: IntArray, counts: IntArray, q: float) -> FloatArray:
    """Quantile ``q`` (linear interpolation) of each run of an already sorted ``values``."""
    pos = starts + q * (counts - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, starts + counts - 1)
    frac = pos - lo
    return values[lo] * (1 - frac) + values[hi] * frac


def _edge_lines(x: FloatArray, y: FloatArray, zone: IntArray, n_zones: int) -> tuple[FloatArray, FloatArray]:
    """Per-zone least-squares intercept and slope of ``y`` on ``x`` (NaN where undetermined)."""
    n = np.bincount(zone, minlength=n_zones).astype("float64")
    sx = np.bincount(zone, x, n_zones)
    sy = np.bincount(zone, y, n_zones)
    sxx = np.bincount(zone, x * x, n_zones)
    sxy = np.bincount(zone, x * y, n_zones)
    det = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(det > 1e-12, (n * sxy - sx * sy) / det, np.nan)
        intercept = (sy - slope * sx) / n
    return intercept, slope


def see_kernel(
    lst: FloatArray,
    fv: FloatArray,
    zones: IntArray,
    *,
    bins: int = 10,
    quantile: float = 0.05,
    min_per_bin: int = 3,
    min_bins: int = 3,
    fv_max: float = 0.9,
    min_spread: float = 1.0,
) -> FloatArray:
    """Numpy kernel of :func:`soil_evaporative_efficiency` (estimator in the module docstring).

    Parameters
    ----------
    lst : numpy.ndarray
        LST (K), shape ``(..., ny, nx)``.
    fv : numpy.ndarray
        Fractional cover (1), same shape as ``lst``.
    zones : numpy.ndarray of int
        Window label of every cell, shape ``(ny, nx)``; negative labels are excluded.
    bins, quantile, min_per_bin, min_bins, fv_max, min_spread
        See :func:`soil_evaporative_efficiency`.

    Returns
    -------
    numpy.ndarray
        SEE (1) in [0, 1], NaN where undetermined; shape and float dtype of ``lst``.
    """
    dtype = float_dtype(lst, fv)
    shape = lst.shape
    ny, nx = shape[-2:]
    v_all = np.asarray(lst, dtype="float64").reshape(-1, ny * nx)
    f_all = np.broadcast_to(np.asarray(fv, dtype="float64"), shape).reshape(-1, ny * nx)
    z = np.asarray(zones).reshape(ny * nx).astype(np.int64)
    n_zones = int(z.max()) + 1 if z.size and z.max() >= 0 else 0
    out = np.full(v_all.shape, np.nan)
    for k in range(v_all.shape[0]):
        v, f = v_all[k], f_all[k]
        ok = np.isfinite(v) & np.isfinite(f) & (z >= 0)
        if n_zones == 0 or not ok.any():
            continue
        vv, ff, zz = v[ok], f[ok], z[ok]
        key = zz * bins + np.minimum((ff * bins).astype(np.int64), bins - 1)
        order = np.lexsort((vv, key))
        key_s, v_s, f_s = key[order], vv[order], ff[order]
        groups, starts, counts = np.unique(key_s, return_index=True, return_counts=True)
        x = np.add.reduceat(f_s, starts) / counts  # mean fv of each (zone, bin) group
        keep = counts >= min_per_bin
        if not keep.any():
            continue
        groups, starts, counts, x = groups[keep], starts[keep], counts[keep], x[keep]
        hot = _group_quantile(v_s, starts, counts, 1.0 - quantile)
        cold = _group_quantile(v_s, starts, counts, quantile)
        zone_of = groups // bins
        n_bins = np.bincount(zone_of, minlength=n_zones)
        hot_a, hot_b = _edge_lines(x, hot, zone_of, n_zones)
        cold_a, cold_b = _edge_lines(x, cold, zone_of, n_zones)
        ts_max, ts_min = hot_a, cold_a
        tv = (hot_a + hot_b + cold_a + cold_b) / 2
        good = (n_bins >= min_bins) & np.isfinite(ts_max) & np.isfinite(ts_min) & (ts_max - ts_min >= min_spread)
        sel = ok & (f <= fv_max)
        zsel = z[sel]
        gz = good[zsel]
        fz = f[sel]
        with np.errstate(divide="ignore", invalid="ignore"):
            ts = (v[sel] - fz * tv[zsel]) / (1.0 - fz)
            see = (ts_max[zsel] - ts) / (ts_max[zsel] - ts_min[zsel])
        row = out[k]
        row[np.flatnonzero(sel)] = np.where(gz, np.clip(see, 0.0, 1.0), np.nan)
    return out.reshape(shape).astype(dtype, copy=False)


# ====================================================================== xarray wrapper
def _block_zones(ny: int, nx: int, block: int) -> IntArray:
    rows = np.arange(ny) // block
    cols = np.arange(nx) // block
    n_cols = -(-nx // block)
    return (rows[:, None] * n_cols + cols[None, :]).astype(np.int64)


def soil_evaporative_efficiency(
    lst: xr.DataArray,
    ndvi: xr.DataArray,
    *,
    block: int | None = 36,
    zones: xr.DataArray | None = None,
    ndvi_soil: float = 0.15,
    ndvi_veg: float = 0.90,
    bins: int = 10,
    quantile: float = 0.05,
    min_per_bin: int = 3,
    min_bins: int = 3,
    fv_max: float = 0.9,
    min_spread: float = 1.0,
) -> xr.DataArray:
    """Soil evaporative efficiency from daytime LST and NDVI (estimator in the module docstring).

    Parameters
    ----------
    lst : xarray.DataArray
        Daytime LST (K or degC), dims ``(..., y, x)`` (usually ``(time, y, x)``).
    ndvi : xarray.DataArray
        NDVI (1) on the same grid, ``(time, y, x)`` or static ``(y, x)``.
    block : int, optional
        Edge of the square windows in cells (e.g. 36 for 36 km coarse pixels on a 1 km
        grid), counted from the north-west corner. Ignored when ``zones`` is given.
    zones : xarray.DataArray, optional
        Integer window label of every cell, dims ``(y, x)``; negative or NaN labels
        are left out. Use it for coarse pixels that are not aligned blocks.
    ndvi_soil, ndvi_veg : float
        NDVI end-members of :func:`fractional_cover`.
    bins : int
        Number of equal fv bins on [0, 1] for the edge fits.
    quantile : float
        Lower quantile of the cold edge; the hot edge uses ``1 − quantile`` (0 gives
        the per-bin minimum and maximum).
    min_per_bin, min_bins : int
        Pixels needed in a bin, and bins needed in a window, to fit the edges.
    fv_max : float
        SEE is NaN above this cover (1).
    min_spread : float
        Smallest ``Ts_max − Ts_min`` (K) for which SEE is computed.

    Returns
    -------
    xarray.DataArray
        ``see`` (1) in [0, 1], dims and coords of ``lst``, spatially whole chunks when lazy.

    Raises
    ------
    DataError
        If dims are missing or parameters are out of range.
    UnitsError
        If LST has no temperature units.
    """
    require_dims(lst, ("y", "x"), what="soil_evaporative_efficiency()")
    require_dims(ndvi, ("y", "x"), what="soil_evaporative_efficiency()")
    if not (0.0 <= quantile < 0.5) or bins < 2 or min_per_bin < 1 or min_bins < 2:
        msg = (
            f"Need 0 <= quantile < 0.5, bins >= 2, min_per_bin >= 1 and min_bins >= 2; got quantile={quantile}, "
            f"bins={bins}, min_per_bin={min_per_bin}, min_bins={min_bins}."
        )
        raise DataError(msg)
    lst_k = variable_as(lst, "lst_day")
    fv = fractional_cover(ndvi, ndvi_soil=ndvi_soil, ndvi_veg=ndvi_veg)
    ny, nx = lst.sizes["y"], lst.sizes["x"]
    if zones is None:
        if block is None or block < 1:
            msg = f"Give a window: block must be a positive number of cells or zones a (y, x) label map; got {block}."
            raise DataError(msg)
        labels = xr.DataArray(_block_zones(ny, nx, block), dims=("y", "x"))
        window = f"blocks of {block} x {block} cells"
    else:
        require_dims(zones, ("y", "x"), what="soil_evaporative_efficiency(zones=...)")
        labels = zones.fillna(-1).astype(np.int64)
        if labels.chunks is not None:
            labels = labels.chunk({"y": -1, "x": -1})
        window = "the given zones"
    whole = {"y": -1, "x": -1}
    if lst_k.chunks is not None or fv.chunks is not None:
        lst_k, fv = lst_k.chunk(whole), fv.chunk(whole)
    dtype = float_dtype(lst_k)
    out = xr.apply_ufunc(
        see_kernel, lst_k, fv, labels.drop_vars(list(labels.coords)),
        input_core_dims=[["y", "x"], ["y", "x"], ["y", "x"]],
        output_core_dims=[["y", "x"]],
        kwargs={"bins": bins, "quantile": quantile, "min_per_bin": min_per_bin, "min_bins": min_bins,
                "fv_max": fv_max, "min_spread": min_spread},
        dask="parallelized", output_dtypes=[dtype],
    )
    out = out.transpose(*lst.dims)
    attrs = {
        "units": "1", "long_name": "soil evaporative efficiency", "valid_min": 0.0, "valid_max": 1.0,
        "comment": (
            f"(Ts_max - Ts)/(Ts_max - Ts_min) with hot/cold edges of the LST-fv space fitted per day in "
            f"{window} through the {1 - quantile:g}/{quantile:g} LST quantiles of {bins} fv bins "
            f"(Merlin et al. 2008); NaN for fv > {fv_max}"
        ),
    }
    return annotate(out, "see", attrs)
