"""Shared kernels of the twin's observing systems: counter-based noise, vertical profile
weights, area-mean accumulation over tiles and MODIS compositing periods.

Everything here is plain numpy (no xarray except :func:`profile_of`, which reads the
layer bounds of a world variable), deterministic given its integer keys, and
independent of how a domain is cut into tiles or time blocks:

* :func:`hash_uniform` / :func:`hash_normal` give a reproducible random number for every
  ``(seed, stream, t, row, col)`` key (a SplitMix64 hash), so a pixel's noise is the
  same whether the grid is processed whole or tile by tile;
* :func:`profile_weights` maps soil layers or point depths onto other layers or
  sensor depths (used for station sensors and for the ERA5-Land layers);
* :class:`AreaAccumulator` sums area-weighted fine-grid values into a coarse grid tile
  by tile with the overlap weights of :class:`soilfuse.regrid.Regridder` (``"mean"``);
* :func:`composite_periods` cuts a daily time axis into MODIS 16-day (or 8-day) periods,
  which restart on 1 January of every year;
* :func:`snap_region` and :func:`day_numbers` align coarse grids to whole multiples of
  their spacing and key daily random draws on the calendar day.

Usage
-----
>>> import numpy as np
>>> u = hash_uniform(7, 1, np.arange(3), 0, 0)
>>> bool(np.all((u > 0) & (u < 1))), bool(np.all(u == hash_uniform(7, 1, np.arange(3), 0, 0)))
(True, True)
>>> w = profile_weights([0, 0], [5, 10], [5], [5])  # a 5 cm sensor sees the 0-10 cm mean
>>> [abs(round(float(v), 3)) for v in w[0]]
[0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtri

from soilfuse._typing import FloatArray, Region
from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.regrid._weights import area_weights, auto_subsample, same_crs

__all__ = [
    "AreaAccumulator",
    "composite_periods",
    "day_numbers",
    "hash_normal",
    "hash_uniform",
    "profile_of",
    "profile_weights",
    "snap_region",
    "tiles",
]

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# Odd multipliers that spread each key over the 64-bit state before mixing.
_KEY_MULT = (
    np.uint64(0xD6E8FEB86659FD93),
    np.uint64(0xA0761D6478BD642F),
    np.uint64(0xE7037ED1A0B428DB),
    np.uint64(0x8EBC6AF09C88C6E3),
    np.uint64(0x589965CC75374CC3),
)


# ---------------------------------------------------------------------- counter-based noise
def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, stream: int, *keys: object) -> FloatArray:
    """Reproducible uniform numbers in (0, 1), one per broadcast combination of ``keys``.

    A counter-based generator: the value depends only on ``(seed, stream, *keys)``, not
    on the order or blocking of evaluation, so noise drawn for a tile equals the same
    pixels' noise drawn for the whole grid. Hand-written (SplitMix64, Steele et al. 2014)
    because numpy's bit generators are sequential, not addressable by pixel.

    Parameters
    ----------
    seed, stream : int
        Twin seed and a constant naming the purpose of the draw.
    *keys : array_like of int
        Up to three integer keys broadcast together (e.g. day, row, column).

    Returns
    -------
    numpy.ndarray
        float64 uniform values strictly between 0 and 1.
    """
    if len(keys) > len(_KEY_MULT) - 2:
        msg = f"hash_uniform takes at most {len(_KEY_MULT) - 2} keys; got {len(keys)}."
        raise DataError(msg)
    with np.errstate(over="ignore"):
        base = _splitmix(np.asarray(seed, dtype="int64").astype("uint64") * _KEY_MULT[0]
                         ^ np.asarray(stream, dtype="int64").astype("uint64") * _KEY_MULT[1])
        # Keys enter as a sum of odd multiples (injective for keys below ~1e9 in practice)
        # computed on their own small shapes; only the two mixing rounds run on the
        # full broadcast array.
        mixed = base
        for mult, key in zip(_KEY_MULT[2:], keys, strict=False):
            mixed = mixed + np.asarray(key, dtype="int64").astype("uint64") * mult
        state = _splitmix(_splitmix(np.asarray(mixed)))
    bits = (state >> np.uint64(11)).astype("float64")
    return (bits + 0.5) / float(2**53)


def hash_normal(seed: int, stream: int, *keys: object) -> FloatArray:
    """Reproducible standard normal numbers (inverse CDF of :func:`hash_uniform`)."""
    return np.asarray(ndtri(hash_uniform(seed, stream, *keys)), dtype="float64")


# ---------------------------------------------------------------------- vertical profiles
def profile_of(ds: xr.Dataset, name: str) -> tuple[xr.DataArray, FloatArray, FloatArray]:
    """A layered world variable with dims ``([time,] depth, y, x)`` and its layer bounds (cm).

    The depth dim is whatever dim of ``ds[name]`` is not ``time``, ``y`` or ``x``; its
    bounds come from a ``<dim>_bnds``/``depth_bnds`` coordinate, else layer labels,
    else the depth values as point depths.

    Returns
    -------
    data : xarray.DataArray
        ``ds[name]`` transposed to ``([time,] <depth>, y, x)``.
    tops, bottoms : numpy.ndarray
        Upper and lower bound of every layer (equal for point depths), cm.

    Raises
    ------
    MissingVariableError
        If ``name`` is not in ``ds`` or has no depth dim.
    """
    if name not in ds:
        msg = f"The world has no {name!r} variable (variables: {sorted(map(str, ds.data_vars))})."
        raise MissingVariableError(msg)
    da = ds[name]
    extra = [d for d in da.dims if d not in ("time", "y", "x")]
    if len(extra) != 1:
        msg = f"{name!r} must have exactly one depth dim besides time, y, x; got dims {da.dims}."
        raise MissingVariableError(msg)
    dim = extra[0]
    bounds = None
    for cand in (f"{dim}_bnds", "depth_bnds"):
        if cand in da.coords and dim in da[cand].dims:
            bounds = np.asarray(da[cand].transpose(dim, ...).values, dtype="float64")
            break
    if bounds is None:
        labels = [c for c in da.coords.values() if c.dims == (dim,) and c.dtype.kind in "OUS"]
        if labels:
            parsed = [cf.parse_layer(str(v)) for v in labels[0].values]
            bounds = np.asarray(parsed, dtype="float64")
        else:
            depths = np.asarray(da[dim].values, dtype="float64")
            bounds = np.stack([depths, depths], axis=-1)
    lead = ["time"] if "time" in da.dims else []
    return da.transpose(*lead, dim, "y", "x"), bounds[:, 0], bounds[:, 1]


def profile_weights(
    src_tops: Sequence[float] | FloatArray,
    src_bottoms: Sequence[float] | FloatArray,
    dst_tops: Sequence[float] | FloatArray,
    dst_bottoms: Sequence[float] | FloatArray,
) -> FloatArray:
    """Linear map from source layers (or point depths) to target layers or point depths.

    Layered sources (e.g. soil moisture ``0-5, 0-10, 10-20, …, 90-100 cm``) are first
    split into non-overlapping pieces between all layer bounds by least squares (a
    nested ``0-5`` inside ``0-10`` gives pieces ``0-5`` and ``5-10``). A target layer is
    the thickness-weighted mean of the pieces it overlaps, the deepest piece extending
    below the profile; a target point depth interpolates linearly between piece
    midpoints. Point sources (soil temperature at 0, 5, …, 40 cm) are interpolated
    linearly in depth and held constant above and below; a target layer is the depth
    mean of that profile.

    Parameters
    ----------
    src_tops, src_bottoms : sequence of float
        Source bounds in cm (equal for point sensors).
    dst_tops, dst_bottoms : sequence of float
        Target bounds in cm (equal for point sensors).

    Returns
    -------
    numpy.ndarray
        ``W`` of shape ``(n_target, n_source)`` with ``target = W @ source``.
    """
    st_ = np.asarray(src_tops, dtype="float64")
    sb = np.asarray(src_bottoms, dtype="float64")
    dt = np.asarray(dst_tops, dtype="float64")
    db = np.asarray(dst_bottoms, dtype="float64")
    if np.any(sb > st_):
        edges = np.unique(np.concatenate([st_, sb]))
        p_top, p_bot = edges[:-1], edges[1:]
        overlap = np.clip(np.minimum(sb[:, None], p_bot) - np.maximum(st_[:, None], p_top), 0, None)
        m = overlap / (sb - st_)[:, None]
        basis = np.linalg.pinv(m)  # piece values = basis @ layer means
        nodes = (p_top + p_bot) / 2
        layered = True
    else:
        order = np.argsort(st_)
        basis = np.eye(st_.size)[order]
        nodes = st_[order]
        p_top = p_bot = nodes
        layered = False
    rows = []
    for top, bottom in zip(dt, db, strict=True):
        if bottom <= top:
            w = _interp_weights(nodes, top)
        elif layered:
            ext_bot = p_bot.copy()
            ext_bot[-1] = max(ext_bot[-1], bottom)
            w = np.clip(np.minimum(bottom, ext_bot) - np.maximum(top, p_top), 0, None)
            w = w / (bottom - top)
        else:
            zs = top + (np.arange(64) + 0.5) * (bottom - top) / 64
            w = np.mean([_interp_weights(nodes, z) for z in zs], axis=0)
        rows.append(w @ basis)
    return np.asarray(rows)


def _interp_weights(nodes: FloatArray, z: float) -> FloatArray:
    """Linear interpolation weights of depth ``z`` between sorted ``nodes`` (held at the ends)."""
    w = np.zeros(nodes.size)
    if z <= nodes[0]:
        w[0] = 1.0
    elif z >= nodes[-1]:
        w[-1] = 1.0
    else:
        i = int(np.searchsorted(nodes, z)) - 1
        f = (z - nodes[i]) / (nodes[i + 1] - nodes[i])
        w[i], w[i + 1] = 1.0 - f, f
    return w


# ---------------------------------------------------------------------- tiles and periods
def tiles(shape: tuple[int, int], tile: int) -> Iterator[tuple[slice, slice]]:
    """Row and column slices of square tiles of edge ``tile`` covering ``shape``."""
    ny, nx = shape
    step = max(1, int(tile))
    for r0 in range(0, ny, step):
        for c0 in range(0, nx, step):
            yield slice(r0, min(ny, r0 + step)), slice(c0, min(nx, c0 + step))


def composite_periods(times: pd.DatetimeIndex, length: int) -> list[tuple[int, int, pd.Timestamp]]:
    """MODIS compositing periods of ``length`` days (16 or 8) that restart every 1 January.

    Returns
    -------
    list of (start index, stop index, period start date)
        Index ranges into ``times`` (daily, sorted); the first and last periods may be
        partial when the series starts or ends inside a period. The date is the
        nominal MODIS period start (day of year 1, 1 + length, …), which can precede
        the first day of the series.
    """
    doy = np.asarray(times.day_of_year) - 1
    start_doy = (doy // length) * length
    key = np.asarray(times.year) * 1000 + start_doy
    out: list[tuple[int, int, pd.Timestamp]] = []
    i = 0
    while i < key.size:
        j = i
        while j < key.size and key[j] == key[i]:
            j += 1
        nominal = pd.Timestamp(year=int(times[i].year), month=1, day=1) + pd.Timedelta(days=int(start_doy[i]))
        out.append((i, j, nominal))
        i = j
    return out


# ---------------------------------------------------------------------- area means by tiles
class AreaAccumulator:
    """Area-weighted means of fine-grid fields on a coarse grid, accumulated tile by tile.

    Overlap areas come from ``soilfuse.regrid._weights.area_weights`` (the weights of
    ``Regridder(..., "mean")``), built for each fine tile as it is added rather than
    once for the whole domain: the domain's weights hold one entry per fine cell, so
    keeping them would make memory grow with the domain. Each fine cell's weights depend
    only on that cell, so per-tile weights equal the rows of the domain's. Missing (NaN)
    fine values are left out of the mean.

    Parameters
    ----------
    fine, coarse : Grid
        Source and target grids.
    min_coverage : float
        Smallest fraction (0-1) of a coarse cell's area that must be covered by valid
        fine cells for a value (else NaN).
    """

    def __init__(self, fine: Grid, coarse: Grid, *, min_coverage: float = 0.5) -> None:
        self.fine = fine
        self.coarse = coarse
        self.min_coverage = float(min_coverage)
        # One sub-sampling for every tile, chosen on the whole grids as Regridder does.
        self._subsample = None if same_crs(fine.crs, coarse.crs) else auto_subsample(fine, coarse)
        self._area = np.asarray(coarse.cell_area(), dtype="float64").ravel()
        self._sum: FloatArray | None = None
        self._wsum: FloatArray | None = None
        self._covered = np.zeros(self._area.size)

    def coverage(self) -> FloatArray:
        """Fraction of each coarse cell covered by the fine tiles added since :meth:`reset`."""
        return (self._covered / self._area).reshape(self.coarse.shape)

    def reset(self, lead: tuple[int, ...]) -> None:
        """Start a new accumulation for fields with leading shape ``lead`` (e.g. ``(time, depth)``)."""
        n = int(np.prod(lead)) if lead else 1
        self._lead = lead
        self._sum = np.zeros((self._area.size, n))
        self._wsum = np.zeros((self._area.size, n))
        self._covered = np.zeros(self._area.size)

    def add(self, values: FloatArray, rows: slice, cols: slice) -> None:
        """Add a fine tile of shape ``lead + (rows, cols)``."""
        if self._sum is None or self._wsum is None:
            msg = "Call reset() before add()."
            raise DataError(msg)
        w = area_weights(self.fine.slice(rows, cols), self.coarse, subsample=self._subsample)
        n_cells = w.shape[1]
        # Source cells as rows, so one sparse product serves every leading index.
        arr = np.ascontiguousarray(np.asarray(values).reshape(-1, n_cells).T, dtype="float64")
        valid = np.isfinite(arr)
        cover = np.asarray(w @ np.ones(n_cells))
        self._covered += cover
        if valid.all():
            self._sum += w @ arr
            self._wsum += cover[:, None]
        else:
            self._sum += w @ np.where(valid, arr, 0.0)
            self._wsum += w @ valid.astype("float64")

    def result(self) -> tuple[FloatArray, FloatArray]:
        """Means and valid-area fractions, each of shape ``lead + coarse.shape``."""
        if self._sum is None or self._wsum is None:
            msg = "Nothing accumulated; call reset() and add() first."
            raise DataError(msg)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum / self._wsum
        frac = self._wsum / self._area[:, None]
        mean = np.where(frac >= self.min_coverage - 1e-9, mean, np.nan)
        shape = (*self._lead, *self.coarse.shape)
        return mean.T.reshape(shape), frac.T.reshape(shape)


def snap_region(region: Region, step: float) -> Region:
    """``region`` widened to the nearest multiples of ``step`` (degrees) outward."""
    west, east, south, north = region
    eps = 1e-9
    return (np.floor(west / step + eps) * step, np.ceil(east / step - eps) * step,
            np.floor(south / step + eps) * step, np.ceil(north / step - eps) * step)


def day_numbers(times: pd.DatetimeIndex) -> np.ndarray:
    """Days since 1970-01-01 (keys of daily random draws, independent of the period start)."""
    return (times.values.astype("datetime64[D]").astype("int64")).astype("int64")
