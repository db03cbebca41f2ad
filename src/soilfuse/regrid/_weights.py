"""Numpy kernels that build sparse regridding weights between two :class:`~soilfuse.grid.Grid`.

Every builder returns a :class:`scipy.sparse.csr_array` ``W`` of shape
``(target cells, source cells)`` over cells flattened in C order (row-major, ``y`` then
``x``). A target value is ``sum_s W[t, s] * v[s] / sum_s W[t, s]`` over the valid source
cells (see :mod:`soilfuse.regrid._apply`), so the rows need not be normalised:

* bilinear and nearest rows sum to 1 (interpolation weights);
* mean rows hold overlap *areas* in m², so a row sum is the target cell's area covered by
  the source grid and the valid fraction is a ratio of areas.

These functions take plain grids and return plain sparse arrays; no xarray here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import LambertCylindricalEqualAreaConversion
from pyproj.exceptions import ProjError
from scipy import sparse

from soilfuse._typing import FloatArray, IntArray
from soilfuse.exceptions import GridError
from soilfuse.grid import Grid

__all__ = [
    "area_weights",
    "auto_subsample",
    "bilinear_weights",
    "nearest_weights",
    "same_crs",
    "typical_cell_area",
]

logger = logging.getLogger(__name__)

#: Index coordinates closer than this (in cells) to a whole number are snapped to it, so
#: that nested grids give exact 0/1 overlaps despite floating-point edges.
_SNAP = 1e-9
#: Sample points transformed per block when sub-sampling cells (bounds peak memory).
_POINTS_PER_BLOCK = 2_000_000


# ---------------------------------------------------------------------- helpers
def same_crs(a: CRS, b: CRS) -> bool:
    """True if two CRSs are the same up to axis order (soilfuse always uses x, y order)."""
    return bool(a.equals(b, ignore_axis_order=True))


def _window(grid: Grid, other: Grid) -> tuple[slice, slice] | None:
    """Rows and columns of ``grid`` near the bounds of ``other`` (None if disjoint).

    The bounds are transformed as a densified bounding box, which can fall slightly
    short of curved edges; one cell of margin on each side covers that. Where the
    bounds cannot be transformed (e.g. a pole in Mercator) the whole grid is used.
    """
    ny, nx = grid.shape
    try:
        rows, cols = grid.window(other.bounds, crs=other.crs)
    except GridError:
        return None
    except (ProjError, OverflowError, ValueError):
        return slice(0, ny), slice(0, nx)
    return (
        slice(max(0, rows.start - 1), min(ny, rows.stop + 1)),
        slice(max(0, cols.start - 1), min(nx, cols.stop + 1)),
    )


def _flat_index(rows: IntArray, cols: IntArray, window: tuple[slice, slice], nx: int) -> IntArray:
    """Flat C-order index in the full grid of ``(rows, cols)`` counted inside ``window``."""
    return (rows + window[0].start) * nx + (cols + window[1].start)


def _centres(grid: Grid, window: tuple[slice, slice]) -> tuple[FloatArray, FloatArray, IntArray]:
    """Cell-centre coordinates of the cells in ``window`` (flattened) and their flat indices."""
    sub = grid.slice(*window)
    xx, yy = np.meshgrid(sub.x, sub.y)
    rows, cols = np.meshgrid(np.arange(sub.shape[0]), np.arange(sub.shape[1]), indexing="ij")
    flat = _flat_index(rows.ravel(), cols.ravel(), window, grid.shape[1])
    return xx.ravel(), yy.ravel(), flat


def _transform(x: FloatArray, y: FloatArray, src: CRS, dst: CRS) -> tuple[FloatArray, FloatArray]:
    """Points from ``src`` to ``dst`` (x, y order); identity when the CRSs agree."""
    if same_crs(src, dst):
        return x, y
    tr = Transformer.from_crs(src, dst, always_xy=True)
    tx, ty = tr.transform(x, y)
    return np.asarray(tx, dtype="float64"), np.asarray(ty, dtype="float64")


def _to_csr(
    target_idx: IntArray, source_idx: IntArray, values: FloatArray, shape: tuple[int, int]
) -> sparse.csr_array:
    """Sparse array from triplets; duplicate entries are summed and zeros dropped."""
    keep = values > 0
    coo = sparse.coo_array(
        (values[keep], (target_idx[keep], source_idx[keep])), shape=shape
    )
    out = coo.tocsr()
    out.sum_duplicates()
    out.sort_indices()
    return out


def _empty(target: Grid, source: Grid) -> sparse.csr_array:
    return sparse.csr_array((math.prod(target.shape), math.prod(source.shape)), dtype="float64")


def _fractional_index(grid: Grid, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Continuous ``(row, col)`` of points, with cell ``i`` spanning ``[i, i + 1)``."""
    t = grid.transform
    return (y - t.f) / t.e, (x - t.c) / t.a


# ---------------------------------------------------------------------- point methods
def bilinear_weights(source: Grid, target: Grid) -> sparse.csr_array:
    """Bilinear interpolation weights at the target cell centres.

    Target centres are transformed into the source CRS (pyproj, ``always_xy``) and
    interpolated between the four surrounding source cell centres, so a field that is
    linear in the source CRS coordinates is reproduced exactly. Centres inside the
    source grid's outer edges but outside the hull of its cell centres (the half-cell
    border) take the value of the nearest edge cells along the axis that leaves the
    hull (constant extrapolation); centres outside the source grid get no weights.

    Parameters
    ----------
    source, target : Grid
        Source and target grids (any CRSs).

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(target cells, source cells)``; each covered row sums to 1.
    """
    window = _window(target, source)
    if window is None:
        return _empty(target, source)
    tx, ty, t_flat = _centres(target, window)
    sx, sy = _transform(tx, ty, target.crs, source.crs)
    row_f, col_f = _fractional_index(source, sx, sy)
    ny, nx = source.shape
    inside = np.isfinite(row_f) & np.isfinite(col_f)
    inside &= (row_f >= 0) & (row_f <= ny) & (col_f >= 0) & (col_f <= nx)
    row_f, col_f, t_flat = row_f[inside] - 0.5, col_f[inside] - 0.5, t_flat[inside]
    i0, i1, wy = _axis_neighbours(row_f, ny)
    j0, j1, wx = _axis_neighbours(col_f, nx)
    targets = np.tile(t_flat, 4)
    sources = np.concatenate([i0 * nx + j0, i0 * nx + j1, i1 * nx + j0, i1 * nx + j1])
    weights = np.concatenate(
        [(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx]
    )
    return _to_csr(targets, sources, weights, (math.prod(target.shape), ny * nx))


def _axis_neighbours(pos: FloatArray, n: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Lower and upper neighbour indices and the upper weight along one axis.

    ``pos`` is measured in cells from the first cell centre; it is clamped to the
    range of centres, which gives constant extrapolation over the half-cell border.
    """
    pos = np.clip(pos, 0.0, n - 1.0)
    lower = np.minimum(np.floor(pos), max(n - 2, 0)).astype("int64")
    upper = np.minimum(lower + 1, n - 1)
    return lower, upper, pos - lower


def nearest_weights(source: Grid, target: Grid) -> sparse.csr_array:
    """Weight 1 on the source cell that contains each target cell centre.

    Used for both ``"nearest"`` and ``"broadcast"``: a target centre lying exactly on a
    source cell edge goes to the cell east/south of the edge (floor of the index).

    Parameters
    ----------
    source, target : Grid
        Source and target grids (any CRSs).

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(target cells, source cells)``, one entry of 1 per covered target.
    """
    window = _window(target, source)
    if window is None:
        return _empty(target, source)
    tx, ty, t_flat = _centres(target, window)
    sx, sy = _transform(tx, ty, target.crs, source.crs)
    rows, cols = source.index(sx, sy)
    ok = rows >= 0
    s_flat = rows[ok] * source.shape[1] + cols[ok]
    shape = (math.prod(target.shape), math.prod(source.shape))
    return _to_csr(t_flat[ok], s_flat, np.ones(s_flat.size), shape)


# ---------------------------------------------------------------------- area methods
def area_weights(source: Grid, target: Grid, *, subsample: int | None = None) -> sparse.csr_array:
    """Overlap areas (m²) between every source and target cell, for area-weighted means.

    Grids in the same CRS get exact overlaps: 1-D interval overlaps in ``x`` and ``y``
    give the fraction of each source cell inside each target cell, times the source
    cell area from :meth:`Grid.cell_area`. On geographic grids the ``y`` fraction is
    measured in the equal-area (authalic) latitude, so it is exact on the ellipsoid; on
    projected grids it is planar (exact for equal-area projections such as EASE-Grid 2.0).

    Grids in different CRSs are approximated by sub-sampling: each cell of the grid with
    the smaller cells is split into ``k × k`` equal parts whose centres are transformed
    to the other CRS and assigned to the cell containing them, each carrying
    ``1 / k²`` of the cell's area. When the source is sampled (fine → coarse) the whole
    area of every source cell is handed out, so area-weighted totals and domain means
    are conserved exactly; only cells that straddle a target edge are split
    approximately, by at most half a sub-cell per edge crossing. With ``N`` the ratio of
    coarse to fine cell size, the covered area of a target cell is thus within about
    ``2 / (k N)`` of the exact one in the worst case, and much closer on average.

    Parameters
    ----------
    source, target : Grid
        Source and target grids.
    subsample : int, optional
        ``k``, points per cell side for the different-CRS case. ``None`` chooses
        :func:`auto_subsample` (2 for 4× or larger size ratios, up to 8 for equal sizes).

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(target cells, source cells)``, overlap areas in m².

    Raises
    ------
    GridError
        If ``subsample`` is not a positive integer.
    """
    if same_crs(source.crs, target.crs):
        return _exact_overlap(source, target)
    src_area = typical_cell_area(source)
    tgt_area = typical_cell_area(target)
    k = auto_subsample(source, target) if subsample is None else int(subsample)
    if k < 1:
        msg = f"subsample must be a positive number of points per cell side; got {subsample}."
        raise GridError(msg)
    if src_area <= tgt_area:
        return _sampled_overlap(source, target, k)
    # The source cells are coarser: sample the target cells instead, which gives the same
    # overlap areas with far fewer points; the transposed matrix has the same meaning.
    return _sampled_overlap(target, source, k).T.tocsr()


def auto_subsample(source: Grid, target: Grid) -> int:
    """Default sub-sampling ``k``: ``ceil(8 / N)`` clipped to 2-8, ``N`` the cell-size ratio.

    ``N >= 1`` is the ratio of the larger to the smaller typical cell side of the two
    grids, so fine → coarse aggregation over 4× or more uses ``k = 2`` and grids of
    similar cell size use up to ``k = 8``.
    """
    a = typical_cell_area(source)
    b = typical_cell_area(target)
    ratio = math.sqrt(max(a, b) / min(a, b))
    return int(min(8, max(2, math.ceil(8.0 / ratio))))


def typical_cell_area(grid: Grid) -> float:
    """Median cell area (m²) estimated on at most ~64 × 64 strided super-cells."""
    ny, nx = grid.shape
    stride = max(1, max(ny, nx) // 64)
    coarse = Grid(
        grid.crs,
        grid.transform @ Affine.scale(stride, stride),
        (max(1, ny // stride), max(1, nx // stride)),
    )
    area = coarse.cell_area()
    return float(np.median(area[np.isfinite(area)])) / stride**2


def _exact_overlap(source: Grid, target: Grid) -> sparse.csr_array:
    """Exact overlap areas for grids sharing one CRS (see :func:`area_weights`)."""
    fx = _axis_overlap(
        source.transform.c, source.transform.a, source.shape[1],
        np.append(target.x_bounds[:, 0], target.x_bounds[-1, 1]),
    )
    measure = _authalic_northing(source.crs) if source.is_geographic else None
    fy = _axis_overlap(
        source.transform.f, source.transform.e, source.shape[0],
        np.append(target.y_bounds[:, 0], target.y_bounds[-1, 1]),
        measure=measure,
    )
    fractions = sparse.kron(fy, fx, format="csr")
    if fractions.nnz == 0:
        return _empty(target, source)
    # Areas are needed only for source cells that overlap the target.
    used = np.zeros(fractions.shape[1], dtype=bool)
    used[fractions.indices] = True
    cells = np.flatnonzero(used)
    rows, cols = np.divmod(cells, source.shape[1])
    window = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    area = source.slice(*window).cell_area()
    cell_area = np.zeros(math.prod(source.shape))
    cell_area[cells] = area[rows - window[0].start, cols - window[1].start]
    fractions.data *= cell_area[fractions.indices]
    fractions.eliminate_zeros()
    return sparse.csr_array(fractions)


def _axis_overlap(
    origin: float,
    step: float,
    n_source: int,
    target_edges: FloatArray,
    *,
    measure: Callable[[FloatArray], FloatArray] | None = None,
) -> sparse.csr_array:
    """Fraction of each source cell (columns) inside each target interval (rows), one axis.

    Edges are mapped to the source's continuous cell index ``u`` (cell ``i`` spans
    ``[i, i + 1]``) and snapped to whole numbers within :data:`_SNAP`, so aligned
    edges overlap exactly. ``measure`` maps a coordinate to the length measure that
    makes fractions exact (the authalic northing on geographic ``y``); linear if None.
    """
    u = (np.asarray(target_edges, dtype="float64") - origin) / step
    rounded = np.round(u)
    u = np.where(np.abs(u - rounded) < _SNAP, rounded, u)
    lo_edge, hi_edge = np.minimum(u[:-1], u[1:]), np.maximum(u[:-1], u[1:])
    first = np.clip(np.floor(lo_edge), 0, n_source).astype("int64")
    stop = np.clip(np.ceil(hi_edge), 0, n_source).astype("int64")
    counts = np.maximum(stop - first, 0)
    t_idx = np.repeat(np.arange(u.size - 1), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    s_idx = np.repeat(first, counts) + offsets
    lo = np.maximum(s_idx, lo_edge[t_idx])
    hi = np.minimum(s_idx + 1, hi_edge[t_idx])
    if measure is None:
        frac = hi - lo
    else:
        m_lo = measure(origin + lo * step)
        m_hi = measure(origin + hi * step)
        cell = measure(origin + (s_idx + 1) * step) - measure(origin + s_idx * step)
        frac = (m_hi - m_lo) / cell
    frac = np.abs(frac)
    return _to_csr(t_idx, s_idx, frac, (u.size - 1, n_source))


def _authalic_northing(crs: CRS) -> Callable[[FloatArray], FloatArray]:
    """Map latitude (degrees) to the northing of a cylindrical equal-area projection.

    That northing is proportional to the authalic latitude function ``q`` of the CRS's
    ellipsoid, so differences of it are proportional to band areas.
    """
    cea = ProjectedCRS(
        conversion=LambertCylindricalEqualAreaConversion(), geodetic_crs=crs.geodetic_crs
    )
    tr = Transformer.from_crs(crs, cea, always_xy=True)

    def northing(lat: FloatArray) -> FloatArray:
        lat = np.asarray(lat, dtype="float64")
        _, y = tr.transform(np.zeros_like(lat), lat)
        return np.asarray(y, dtype="float64")

    return northing


def _sampled_overlap(sampled: Grid, other: Grid, k: int) -> sparse.csr_array:
    """Approximate overlap areas by sub-sampling the cells of ``sampled`` (k × k each).

    Returns an array of shape ``(other cells, sampled cells)``.
    """
    window = _window(sampled, other)
    n_other = math.prod(other.shape)
    n_sampled = math.prod(sampled.shape)
    if window is None:
        return sparse.csr_array((n_other, n_sampled), dtype="float64")
    sub = sampled.slice(*window)
    ny, nx = sub.shape
    tr = Transformer.from_crs(sampled.crs, other.crs, always_xy=True)
    offsets = (np.arange(k) + 0.5) / k
    col_f = (np.arange(nx)[:, None] + offsets[None, :]).ravel()
    x = sub.transform.c + col_f * sub.transform.a
    cols = np.repeat(np.arange(nx), k)
    rows_per_block = max(1, _POINTS_PER_BLOCK // (nx * k * k))
    area = sub.cell_area()
    parts: list[tuple[IntArray, IntArray, FloatArray]] = []
    logger.debug("sub-sampling %d x %d cells with %d x %d points each", ny, nx, k, k)
    for r0 in range(0, ny, rows_per_block):
        r1 = min(ny, r0 + rows_per_block)
        row_f = (np.arange(r0, r1)[:, None] + offsets[None, :]).ravel()
        y = sub.transform.f + row_f * sub.transform.e
        xx, yy = np.meshgrid(x, y)
        ox, oy = tr.transform(xx.ravel(), yy.ravel())
        o_rows, o_cols = other.index(np.asarray(ox), np.asarray(oy))
        rr2, cc2 = np.meshgrid(np.repeat(np.arange(r0, r1), k), cols, indexing="ij")
        ok = o_rows >= 0
        rr, cc = rr2.ravel()[ok], cc2.ravel()[ok]
        o_flat = o_rows[ok] * other.shape[1] + o_cols[ok]
        s_flat = _flat_index(rr, cc, window, sampled.shape[1])
        weight = area[rr, cc] / (k * k)
        # Sum the points of each (other, sampled) cell pair now, so memory stays ~ cells.
        block = _to_csr(o_flat, s_flat, weight, (n_other, n_sampled)).tocoo()
        parts.append((block.row, block.col, block.data))
    o_all, s_all, w_all = (np.concatenate(v) for v in zip(*parts, strict=True))
    return _to_csr(o_all, s_all, w_all, (n_other, n_sampled))
