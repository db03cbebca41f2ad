"""Grid definitions: an immutable value made of a CRS, an affine transform and a shape.

A :class:`Grid` describes a regular, north-up raster: cell ``(row, col)`` has its
upper-left corner at ``transform * (col, row)``. Rows run from north to south, so the
``y`` coordinate decreases with the row index. Every gridded dataset in soilfuse has
dims ``(..., y, x)`` on exactly one grid, and its coordinates are the cell centres in
the grid's CRS units (degrees for geographic grids, metres for projected ones).

Usage
-----
>>> from soilfuse.grid import Grid
>>> fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.01)
>>> fine.shape
(100, 100)
>>> ease = Grid.ease2("36km")
>>> ease.shape
(406, 964)
>>> Grid.ease2("1km").nests_in(ease)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from soilfuse._typing import EaseResolution, FloatArray, IntArray, Region
from soilfuse.exceptions import CRSMismatchError, GridError

__all__ = ["EASE2_GRIDS", "Grid", "crs_of", "grid_mapping_attrs"]

#: Official EASE-Grid 2.0 global (EPSG:6933) definitions: cell size (m), rows, columns.
#: The map extent is the same for every resolution: x in +-17,367,530.445 m and
#: y in +-7,314,540.831 m (NSIDC, Brodzik et al. 2012, 2014).
EASE2_GRIDS: Mapping[str, tuple[float, int, int]] = {
    "36km": (36032.220840584, 406, 964),
    "9km": (9008.055210146, 1624, 3856),
    "3km": (3002.6850700487, 4872, 11568),
    "1km": (1000.895023349556, 14616, 34704),
}
_EASE2_X0 = -17367530.445161372
_EASE2_Y0 = 7314540.830638504

# Authalic (equal-area) sphere of WGS 84, used for exact cell areas on lat-lon grids.
_WGS84_A = 6378137.0
_WGS84_F = 1 / 298.257223563


class Grid:
    """A regular north-up raster: CRS, affine transform and shape ``(ny, nx)``.

    Instances are immutable values: they compare equal when CRS, transform (to
    1e-9 of a cell) and shape agree, hash consistently and tokenize deterministically
    for Dask. Methods return new grids.

    Parameters
    ----------
    crs : pyproj.CRS or str or int
        Coordinate reference system, anything :meth:`pyproj.CRS.from_user_input` reads.
    transform : affine.Affine
        Maps ``(col, row)`` of a cell's upper-left corner to CRS coordinates. Must be
        axis-aligned with positive ``a`` (cell width) and negative ``e`` (north-up).
    shape : tuple of int
        ``(ny, nx)``, number of rows and columns.

    Raises
    ------
    GridError
        If the transform is rotated, not north-up, or the shape is not positive.
    """

    __slots__ = ("_crs", "_shape", "_transform")
    _crs: CRS
    _transform: Affine
    _shape: tuple[int, int]

    def __init__(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> None:
        crs_obj = CRS.from_user_input(crs)
        if transform.b != 0 or transform.d != 0:
            msg = f"Grid transforms must be axis-aligned; got rotation terms b={transform.b}, d={transform.d}."
            raise GridError(msg)
        if not (transform.a > 0 and transform.e < 0):
            msg = (
                f"Grid transforms must have positive cell width and negative cell height "
                f"(north-up); got a={transform.a}, e={transform.e}. Flip the y axis first."
            )
            raise GridError(msg)
        ny, nx = (int(v) for v in shape)
        if ny <= 0 or nx <= 0:
            msg = f"Grid shape must be positive (ny, nx); got {shape}."
            raise GridError(msg)
        object.__setattr__(self, "_crs", crs_obj)
        object.__setattr__(self, "_transform", transform)
        object.__setattr__(self, "_shape", (ny, nx))

    def __setattr__(self, name: str, value: Any) -> None:
        msg = "Grid is immutable; build a new one instead."
        raise AttributeError(msg)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def latlon(cls, region: Region, resolution: float, *, crs: Any = "EPSG:4326") -> Grid:
        """Regular latitude-longitude grid covering ``region`` at ``resolution`` degrees.

        Parameters
        ----------
        region : tuple of float
            ``(west, east, south, north)`` in degrees; the outer cell edges.
        resolution : float
            Cell size in degrees (e.g. 0.01, 0.1, 0.25).
        crs : optional
            A geographic CRS; WGS 84 by default.

        Returns
        -------
        Grid
            Cells whose edges start at ``west`` and ``north``. The east and south edges
            are rounded to a whole number of cells.

        Raises
        ------
        GridError
            If the region is empty or the resolution not positive.
        """
        west, east, south, north = _check_region(region)
        if resolution <= 0:
            msg = f"resolution must be a positive number of degrees; got {resolution}."
            raise GridError(msg)
        nx = max(1, round((east - west) / resolution))
        ny = max(1, round((north - south) / resolution))
        transform = Affine(resolution, 0.0, west, 0.0, -resolution, north)
        return cls(crs, transform, (ny, nx))

    @classmethod
    def ease2(cls, resolution: EaseResolution) -> Grid:
        """Global EASE-Grid 2.0 (EPSG:6933) at 36, 9, 3 or 1 km with official origin and shape.

        Parameters
        ----------
        resolution : {"36km", "9km", "3km", "1km"}
            Nominal cell size.

        Returns
        -------
        Grid
        """
        if resolution not in EASE2_GRIDS:
            msg = f"Unknown EASE-Grid 2.0 resolution {resolution!r}; expected one of {sorted(EASE2_GRIDS)}."
            raise GridError(msg)
        size, ny, nx = EASE2_GRIDS[resolution]
        return cls("EPSG:6933", Affine(size, 0.0, _EASE2_X0, 0.0, -size, _EASE2_Y0), (ny, nx))

    @classmethod
    def projected(
        cls, crs: Any, bounds: tuple[float, float, float, float], resolution: float
    ) -> Grid:
        """Regular grid in any projected CRS.

        Parameters
        ----------
        crs : pyproj.CRS or str or int
            A projected CRS.
        bounds : tuple of float
            ``(xmin, xmax, ymin, ymax)`` outer edges in CRS units (m).
        resolution : float
            Cell size in CRS units (m).
        """
        xmin, xmax, ymin, ymax = bounds
        if not (xmax > xmin and ymax > ymin) or resolution <= 0:
            msg = f"Need xmax > xmin, ymax > ymin and resolution > 0; got bounds={bounds}, resolution={resolution}."
            raise GridError(msg)
        nx = max(1, round((xmax - xmin) / resolution))
        ny = max(1, round((ymax - ymin) / resolution))
        return cls(crs, Affine(resolution, 0.0, xmin, 0.0, -resolution, ymax), (ny, nx))

    @classmethod
    def from_coords(cls, x: Any, y: Any, crs: Any) -> Grid:
        """Grid from 1-D cell-centre coordinates (either order of ``y``).

        Raises
        ------
        GridError
            If the coordinates are not evenly spaced (to 1e-6 of a cell).
        """
        xv = np.asarray(x, dtype="float64")
        yv = np.asarray(y, dtype="float64")
        if xv.ndim != 1 or yv.ndim != 1 or xv.size < 1 or yv.size < 1:
            msg = "x and y must be non-empty 1-D coordinate arrays."
            raise GridError(msg)
        dx = _regular_step(xv, "x")
        dy = abs(_regular_step(yv, "y"))
        if dx < 0:
            msg = "x coordinates must increase (west to east)."
            raise GridError(msg)
        transform = Affine(dx, 0.0, xv[0] - dx / 2, 0.0, -dy, yv.max() + dy / 2)
        return cls(crs, transform, (yv.size, xv.size))

    @classmethod
    def from_dataset(cls, obj: xr.Dataset | xr.DataArray) -> Grid:
        """Grid of a dataset with ``x``/``y`` dims and a CRS (see :func:`crs_of`)."""
        for dim in ("x", "y"):
            if dim not in obj.dims:
                msg = f"Dataset has no '{dim}' dimension (dims: {tuple(obj.dims)}); rename spatial dims to y, x."
                raise GridError(msg)
        return cls.from_coords(obj["x"].values, obj["y"].values, crs_of(obj))

    # ------------------------------------------------------------------ properties
    @property
    def crs(self) -> CRS:
        """Coordinate reference system."""
        return self._crs

    @property
    def transform(self) -> Affine:
        """Affine map from ``(col, row)`` cell corners to CRS coordinates."""
        return self._transform

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return self._shape

    @property
    def resolution(self) -> tuple[float, float]:
        """Cell size ``(dx, dy)`` in CRS units, both positive."""
        return self._transform.a, -self._transform.e

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Outer edges ``(west, east, south, north)`` in CRS units."""
        t = self._transform
        ny, nx = self._shape
        return t.c, t.c + nx * t.a, t.f + ny * t.e, t.f

    @property
    def is_geographic(self) -> bool:
        """True if coordinates are longitude/latitude degrees."""
        return bool(self._crs.is_geographic)

    @property
    def x(self) -> FloatArray:
        """Cell-centre x coordinates (west to east)."""
        t = self._transform
        return t.c + (np.arange(self._shape[1]) + 0.5) * t.a

    @property
    def y(self) -> FloatArray:
        """Cell-centre y coordinates (north to south)."""
        t = self._transform
        return t.f + (np.arange(self._shape[0]) + 0.5) * t.e

    @property
    def x_bounds(self) -> FloatArray:
        """Cell edges in x, shape ``(nx, 2)``."""
        t = self._transform
        left = t.c + np.arange(self._shape[1]) * t.a
        return np.stack([left, left + t.a], axis=-1)

    @property
    def y_bounds(self) -> FloatArray:
        """Cell edges in y, shape ``(ny, 2)`` as ``(north, south)`` of each row."""
        t = self._transform
        top = t.f + np.arange(self._shape[0]) * t.e
        return np.stack([top, top + t.e], axis=-1)

    # ------------------------------------------------------------------ geometry
    def lonlat(self) -> tuple[FloatArray, FloatArray]:
        """Longitude and latitude of every cell centre, each of shape ``(ny, nx)`` (degrees)."""
        xx, yy = np.meshgrid(self.x, self.y)
        if self.is_geographic:
            return xx, yy
        to_ll = Transformer.from_crs(self._crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform(xx, yy)
        return np.asarray(lon), np.asarray(lat)

    def cell_area(self) -> FloatArray:
        """Area of every cell in m², shape ``(ny, nx)``.

        Lat-lon grids use the exact area of a band between two latitudes on the
        WGS 84 ellipsoid. Equal-area projections (e.g. EASE-Grid 2.0) give
        ``dx * dy``; other projections divide ``dx * dy`` by the local areal scale
        factor at the cell centre.
        """
        ny, nx = self._shape
        if self.is_geographic:
            edges = np.append(self.y_bounds[:, 0], self.y_bounds[-1, 1])
            q = _authalic_q(np.deg2rad(edges))
            dlon = np.deg2rad(self.resolution[0])
            row_area = np.abs(np.diff(q)) * dlon * _WGS84_A**2 / 2
            return np.broadcast_to(row_area[:, None], (ny, nx)).copy()
        dx, dy = self.resolution
        if _is_equal_area(self._crs):
            return np.full((ny, nx), dx * dy)
        from pyproj import Proj

        lon, lat = self.lonlat()
        factors = Proj(self._crs).get_factors(lon, lat)
        return dx * dy / np.asarray(factors.areal_scale)

    def index(
        self, x: Any, y: Any, *, crs: Any | None = None
    ) -> tuple[IntArray, IntArray]:
        """Row and column of the cell containing each point.

        Parameters
        ----------
        x, y : array_like
            Point coordinates (e.g. longitude, latitude in degrees).
        crs : optional
            CRS of the points; the grid's CRS when ``None``. Use ``"EPSG:4326"``
            for longitude/latitude on a projected grid.

        Returns
        -------
        rows, cols : numpy.ndarray of int
            ``-1`` for points outside the grid (both row and column).
        """
        xv = np.atleast_1d(np.asarray(x, dtype="float64"))
        yv = np.atleast_1d(np.asarray(y, dtype="float64"))
        if crs is not None and not CRS.from_user_input(crs).equals(self._crs):
            tr = Transformer.from_crs(CRS.from_user_input(crs), self._crs, always_xy=True)
            xv, yv = (np.asarray(v) for v in tr.transform(xv, yv))
        col_f, row_f = ~self._transform @ (xv, yv)
        finite = np.isfinite(col_f) & np.isfinite(row_f)
        col = np.floor(np.where(finite, col_f, -1.0)).astype("int64")
        row = np.floor(np.where(finite, row_f, -1.0)).astype("int64")
        inside = finite & (col >= 0) & (col < self._shape[1]) & (row >= 0) & (row < self._shape[0])
        col = np.where(inside, col, -1)
        row = np.where(inside, row, -1)
        return row, col

    def window(self, region: Region, *, crs: Any = "EPSG:4326") -> tuple[slice, slice]:
        """Row and column slices of the cells that intersect ``region``.

        Parameters
        ----------
        region : tuple of float
            ``(west, east, south, north)`` in ``crs`` units (degrees by default).
        crs : optional
            CRS of ``region``; transformed to the grid's CRS by its bounding box.

        Raises
        ------
        GridError
            If the region does not intersect the grid.
        """
        west, east, south, north = _check_region(region)
        region_crs = CRS.from_user_input(crs)
        if not region_crs.equals(self._crs):
            tr = Transformer.from_crs(region_crs, self._crs, always_xy=True)
            west, south, east, north = tr.transform_bounds(west, south, east, north)
        inv = ~self._transform
        c0, r0 = inv @ (west, north)
        c1, r1 = inv @ (east, south)
        eps = 1e-9
        col0 = max(0, int(np.floor(c0 + eps)))
        row0 = max(0, int(np.floor(r0 + eps)))
        col1 = min(self._shape[1], int(np.ceil(c1 - eps)))
        row1 = min(self._shape[0], int(np.ceil(r1 - eps)))
        if col1 <= col0 or row1 <= row0:
            msg = f"Region {region} does not intersect the grid with bounds {self.bounds}."
            raise GridError(msg)
        return slice(row0, row1), slice(col0, col1)

    def subset(self, region: Region, *, crs: Any = "EPSG:4326") -> Grid:
        """The sub-grid of cells intersecting ``region`` (see :meth:`window`)."""
        rows, cols = self.window(region, crs=crs)
        return self.slice(rows, cols)

    def slice(self, rows: slice, cols: slice) -> Grid:
        """The sub-grid of the given row and column ranges (steps of 1)."""
        r0, r1, _ = rows.indices(self._shape[0])
        c0, c1, _ = cols.indices(self._shape[1])
        if r1 <= r0 or c1 <= c0:
            msg = f"Empty grid slice rows={rows}, cols={cols}."
            raise GridError(msg)
        return Grid(self._crs, self._transform @ Affine.translation(c0, r0), (r1 - r0, c1 - c0))

    def nesting_factor(self, coarse: Grid) -> tuple[int, int]:
        """How many of this grid's cells fit in one ``coarse`` cell, as ``(fy, fx)``.

        Raises
        ------
        CRSMismatchError
            If the CRSs differ.
        GridError
            If the cells do not nest exactly (sizes not integer multiples, or cell
            edges not aligned).
        """
        if not self._crs.equals(coarse._crs):
            msg = "Grids do not nest: their CRSs differ; regrid one of them first."
            raise CRSMismatchError(msg)
        fx = coarse.resolution[0] / self.resolution[0]
        fy = coarse.resolution[1] / self.resolution[1]
        if not (_is_whole(fx) and _is_whole(fy) and fx >= 1 - 1e-9 and fy >= 1 - 1e-9):
            msg = f"Grids do not nest: coarse/fine cell size ratios are ({fy:.6g}, {fx:.6g}), not whole numbers."
            raise GridError(msg)
        off_x = (self._transform.c - coarse._transform.c) / self.resolution[0]
        off_y = (coarse._transform.f - self._transform.f) / self.resolution[1]
        if not (_is_whole(off_x) and _is_whole(off_y)):
            msg = "Grids do not nest: fine cell edges are not aligned with coarse cell edges."
            raise GridError(msg)
        return round(fy), round(fx)

    def nests_in(self, coarse: Grid) -> bool:
        """True if every cell of this grid lies inside exactly one ``coarse`` cell."""
        try:
            self.nesting_factor(coarse)
        except GridError:
            return False
        return True

    # ------------------------------------------------------------------ xarray
    def coords(self) -> dict[str, xr.DataArray]:
        """CF-annotated ``y``, ``x`` and ``spatial_ref`` coordinates for a dataset."""
        if self.is_geographic:
            x_attrs = {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"}
            y_attrs = {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"}
        else:
            unit = self._crs.axis_info[0].unit_name if self._crs.axis_info else "metre"
            units = "m" if unit in ("metre", "meter") else unit
            x_attrs = {"standard_name": "projection_x_coordinate", "long_name": "x coordinate of projection"}
            y_attrs = {"standard_name": "projection_y_coordinate", "long_name": "y coordinate of projection"}
            x_attrs.update(units=units, axis="X")
            y_attrs.update(units=units, axis="Y")
        return {
            "y": xr.DataArray(self.y, dims="y", attrs=y_attrs),
            "x": xr.DataArray(self.x, dims="x", attrs=x_attrs),
            "spatial_ref": xr.DataArray(np.int32(0), attrs=grid_mapping_attrs(self)),
        }

    def empty_like(self, name: str = "data", *, dtype: Any = "float32", fill: float = np.nan) -> xr.DataArray:
        """A ``(y, x)`` DataArray on this grid filled with ``fill``."""
        da = xr.DataArray(
            np.full(self._shape, fill, dtype=dtype), dims=("y", "x"), coords=self.coords(), name=name
        )
        da.attrs["grid_mapping"] = "spatial_ref"
        return da

    # ------------------------------------------------------------------ value semantics
    def _key(self) -> tuple[Any, ...]:
        t = self._transform
        dx, dy = self.resolution
        return (
            self._crs.to_wkt(),
            self._shape,
            round(t.a, 9), round(t.e, 9),
            round(t.c / dx, 6), round(t.f / dy, 6),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        if self._shape != other._shape or not self._crs.equals(other._crs):
            return False
        dx, dy = self.resolution
        a, b = self._transform, other._transform
        tol = 1e-9
        return (
            abs(a.a - b.a) <= tol * dx
            and abs(a.e - b.e) <= tol * dy
            and abs(a.c - b.c) <= 1e-6 * dx
            and abs(a.f - b.f) <= 1e-6 * dy
        )

    def __hash__(self) -> int:
        return hash(self._key())

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("soilfuse.Grid", *self._key())

    def __repr__(self) -> str:
        west, east, south, north = self.bounds
        dx, dy = self.resolution
        name = self._crs.to_string()
        return (
            f"Grid(crs={name!r}, shape={self._shape}, resolution=({dx:.6g}, {dy:.6g}), "
            f"bounds=({west:.6g}, {east:.6g}, {south:.6g}, {north:.6g}))"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Grid, (self._crs.to_wkt(), Affine(*tuple(self._transform)[:6]), self._shape))


def grid_mapping_attrs(grid: Grid) -> dict[str, Any]:
    """CF ``grid_mapping`` attributes (with ``crs_wkt`` and ``spatial_ref``) of a grid."""
    attrs: dict[str, Any] = dict(grid.crs.to_cf())
    wkt = grid.crs.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt  # read by GDAL and rioxarray
    t = grid.transform
    attrs["GeoTransform"] = " ".join(str(v) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    return attrs


def crs_of(obj: xr.Dataset | xr.DataArray) -> CRS:
    """CRS of a dataset from its ``spatial_ref``/``crs`` variable or ``grid_mapping`` attribute.

    Falls back to WGS 84 when the dataset has no CRS but its ``x``/``y`` coordinates
    are longitudes/latitudes (``units`` degrees_east / degrees_north).

    Raises
    ------
    GridError
        If no CRS can be found.
    """
    candidates: list[str] = []
    gm = obj.attrs.get("grid_mapping")
    if isinstance(obj, xr.Dataset):
        for var in obj.data_vars.values():
            if "grid_mapping" in var.attrs:
                gm = gm or var.attrs["grid_mapping"]
    if isinstance(gm, str):
        candidates.append(gm)
    candidates += ["spatial_ref", "crs"]
    for name in candidates:
        if name in obj.coords or (isinstance(obj, xr.Dataset) and name in obj.variables):
            attrs = obj[name].attrs
            for key in ("crs_wkt", "spatial_ref"):
                if key in attrs:
                    return CRS.from_user_input(attrs[key])
            if "grid_mapping_name" in attrs:
                return CRS.from_cf(dict(attrs))
    if "x" in obj.coords and obj["x"].attrs.get("units", "").startswith("degree"):
        return CRS.from_epsg(4326)
    if obj.attrs.get("crs"):
        return CRS.from_user_input(obj.attrs["crs"])
    msg = (
        "Cannot find the CRS of this dataset: no 'spatial_ref' or 'crs' variable with "
        "'crs_wkt', no 'grid_mapping' attribute, and x is not in degrees. Attach one with "
        "soilfuse.io.with_grid(ds, grid)."
    )
    raise GridError(msg)


# ---------------------------------------------------------------------- helpers
def _check_region(region: Region) -> Region:
    try:
        west, east, south, north = (float(v) for v in region)
    except (TypeError, ValueError) as err:
        msg = f"region must be four numbers (west, east, south, north); got {region!r}."
        raise GridError(msg) from err
    if not (east > west and north > south):
        msg = f"region must satisfy east > west and north > south (order: west, east, south, north); got {region!r}."
        raise GridError(msg)
    return west, east, south, north


def _regular_step(v: FloatArray, name: str) -> float:
    if v.size == 1:
        msg = f"Cannot infer the cell size from a single {name} coordinate."
        raise GridError(msg)
    steps = np.diff(v)
    step = float(np.mean(steps))
    if not np.allclose(steps, step, rtol=0, atol=1e-6 * abs(step)):
        msg = f"{name} coordinates are not evenly spaced (steps from {steps.min():.6g} to {steps.max():.6g})."
        raise GridError(msg)
    return step


def _is_whole(v: float, tol: float = 1e-6) -> bool:
    return abs(v - round(v)) < tol


def _eccentricity2() -> float:
    return _WGS84_F * (2 - _WGS84_F)


def _authalic_q(phi: FloatArray) -> FloatArray:
    """The q(phi) function of Snyder (1987, eq. 3-12) on the WGS 84 ellipsoid."""
    e2 = _eccentricity2()
    e = np.sqrt(e2)
    s = np.sin(phi)
    return (1 - e2) * (s / (1 - e2 * s**2) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))


def _is_equal_area(crs: CRS) -> bool:
    method = (crs.coordinate_operation.method_name if crs.coordinate_operation else "").lower()
    return "equal area" in method or "equal-area" in method
