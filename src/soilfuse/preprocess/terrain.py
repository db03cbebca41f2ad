"""Terrain attributes from a DEM: slope, aspect (Horn 1981) and topographic position index.

* :func:`slope_aspect` — slope (degree, 0–90) and aspect (degree clockwise from
  north, 0–360, the compass direction the slope faces, i.e. of steepest descent; NaN
  on flat cells) from Horn's (1981) 3×3 weighted differences.
* :func:`tpi` — topographic position index: the cell's elevation minus the mean of
  its 8 neighbours (m) (Guisan et al. 1999; Liu et al., seed 002 §2.1.1).

Metric spacing
--------------
Derivatives are taken in metres. On projected grids the cell spacing is the grid
resolution in the CRS's linear unit converted to metres (map distance; the
projection's scale factor is not removed). On geographic (lat-lon) grids the spacing
follows the CRS's ellipsoid: east-west, each row uses the length of its own parallel
arc ``N(φ) cos φ Δλ`` (``N`` the prime-vertical radius); north-south, the distance
between the rows above and below is the difference of their meridian arc lengths
(computed with :class:`pyproj.Geod`). Horn's east-west term is therefore the 1-2-1
weighted mean of the three rows' central differences, each divided by its own row's
spacing (identical to Horn's formula when the spacing is uniform); both terms are
exact for any surface that is a linear function of the metric east and north
coordinates, and for quadratics on projected grids.

Edges
-----
The 3×3 stencil needs a ring of cells around the DEM. ``edge="nan"`` (default) leaves
the outermost ring NaN; ``edge="reflect"`` pads with the *odd* reflection about the
edge cell (``z[-1] = 2 z[0] − z[1]``), which continues planes, so planes keep their
exact slope, aspect and zero TPI up to the border. Any NaN in a cell's 3×3
neighbourhood gives NaN.

Dask
----
Lazy DEMs are processed with :func:`dask.array.map_overlap` (a one-cell halo), so any
chunking gives the same numbers as numpy.

Usage
-----
>>> import numpy as np, xarray as xr
>>> from soilfuse.grid import Grid
>>> from soilfuse.io import with_grid
>>> grid = Grid.projected("EPSG:32648", (500000.0, 500500.0, 3500000.0, 3500500.0), 100.0)
>>> xx, yy = np.meshgrid(grid.x, grid.y)
>>> dem = with_grid(xr.DataArray(0.1 * (500500.0 - xx), dims=("y", "x"), attrs={"units": "m"}), grid)
>>> out = slope_aspect(dem)
>>> round(float(out["slope"][2, 2]), 4), round(float(out["aspect"][2, 2]), 4)
(5.7106, 90.0)
>>> float(tpi(dem)[2, 2])
0.0
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import dask.array as dsa
import numpy as np
import xarray as xr
from pyproj import CRS, Geod

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError, GridError
from soilfuse.grid import crs_of
from soilfuse.preprocess._common import annotate
from soilfuse.variables import VARIABLES, normalise_units

__all__ = ["horn_gradient_kernel", "row_spacing", "slope_aspect", "slope_aspect_kernel", "tpi", "tpi_kernel"]

logger = logging.getLogger(__name__)

EdgeMode = Literal["nan", "reflect"]

#: Gradients smaller than this (m per m) are flat: aspect NaN.
FLAT_GRADIENT = 1e-12


# ====================================================================== numpy kernels
def horn_gradient_kernel(z: FloatArray, dx: FloatArray, north: FloatArray, *, component: str) -> FloatArray:
    """East or north elevation gradient (m m-1) by Horn's (1981) 3×3 method.

    Parameters
    ----------
    z : numpy.ndarray
        Elevation (m), shape ``(ny, nx)``, rows north to south.
    dx : numpy.ndarray
        East-west spacing of each row's cells (m), shape ``(ny,)`` or ``(ny, 1)``.
    north : numpy.ndarray
        Northward metric coordinate of each row (m), shape ``(ny,)`` or ``(ny, 1)``.
    component : {"east", "north"}
        Which derivative to return.

    Returns
    -------
    numpy.ndarray
        ``dz/dx_east`` or ``dz/dy_north``, shape ``(ny, nx)``, NaN on the outer ring
        and wherever a cell or one of its 8 neighbours is NaN.
    """
    z = np.asarray(z, dtype="float64")
    dx = np.asarray(dx, dtype="float64").reshape(-1)
    north = np.asarray(north, dtype="float64").reshape(-1)
    out = np.full(z.shape, np.nan)
    if z.shape[0] < 3 or z.shape[1] < 3:
        return out
    if component == "east":
        # central difference of each row over its own spacing, then 1-2-1 weights
        central = (z[:, 2:] - z[:, :-2]) / (2.0 * dx[:, None])
        out[1:-1, 1:-1] = (central[:-2] + 2.0 * central[1:-1] + central[2:]) / 4.0
    elif component == "north":
        span = (north[:-2] - north[2:])[:, None]
        diff = z[:-2] - z[2:]
        out[1:-1, 1:-1] = (diff[:, :-2] + 2.0 * diff[:, 1:-1] + diff[:, 2:]) / (4.0 * span)
    else:
        msg = f"component must be 'east' or 'north'; got {component!r}."
        raise DataError(msg)
    out[~np.isfinite(z)] = np.nan  # Horn's stencil skips the centre; no elevation, no slope
    return out


def slope_aspect_kernel(east: FloatArray, north: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Slope and aspect (degree) from the east and north gradients (m m-1).

    Returns
    -------
    slope : numpy.ndarray
        ``atan(|grad z|)`` in degrees, 0–90.
    aspect : numpy.ndarray
        Azimuth of ``-grad z`` clockwise from north in degrees, [0, 360); NaN where the
        gradient is below :data:`FLAT_GRADIENT`.
    """
    mag = np.hypot(east, north)
    slope = np.degrees(np.arctan(mag))
    aspect = np.mod(np.degrees(np.arctan2(-east, -north)), 360.0)
    aspect = np.where(mag < FLAT_GRADIENT, np.nan, aspect)
    return slope, aspect


def tpi_kernel(z: FloatArray) -> FloatArray:
    """Cell minus the mean of its 8 neighbours (m); NaN on the outer ring.

    Parameters
    ----------
    z : numpy.ndarray
        Elevation (m), shape ``(ny, nx)``.
    """
    z = np.asarray(z, dtype="float64")
    out = np.full(z.shape, np.nan)
    if z.shape[0] < 3 or z.shape[1] < 3:
        return out
    total = np.zeros((z.shape[0] - 2, z.shape[1] - 2))
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            if (dr, dc) != (1, 1):
                total += z[dr:dr + z.shape[0] - 2, dc:dc + z.shape[1] - 2]
    out[1:-1, 1:-1] = z[1:-1, 1:-1] - total / 8.0
    return out


def row_spacing(y: FloatArray, x_step: float, crs: CRS) -> tuple[FloatArray, FloatArray]:
    """East-west cell spacing and northward metric coordinate of each row (both m).

    Parameters
    ----------
    y : numpy.ndarray
        Row-centre coordinates in CRS units (latitude in degrees on geographic grids).
    x_step : float
        Column spacing in CRS units.
    crs : pyproj.CRS
        The grid's CRS.

    Returns
    -------
    dx, north : numpy.ndarray
        Shape of ``y``. Geographic: ``N(φ) cos φ Δλ`` and the signed meridian arc
        length from the equator on the CRS's ellipsoid. Projected: the spacing and
        ``y`` converted to metres.
    """
    y = np.asarray(y, dtype="float64")
    if crs.is_geographic:
        geod = crs.get_geod() or Geod(ellps="WGS84")
        phi = np.radians(np.clip(y, -90.0, 90.0))
        n_radius = geod.a / np.sqrt(1.0 - geod.es * np.sin(phi) ** 2)
        dx = n_radius * np.cos(phi) * np.radians(x_step)
        zeros = np.zeros_like(y)
        _, _, arc = geod.inv(zeros, zeros, zeros, np.clip(y, -90.0, 90.0))
        return dx, np.sign(y) * np.asarray(arc, dtype="float64")
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return np.full(y.shape, abs(x_step) * factor), y * factor


# ====================================================================== wrappers
def _pad(arr: Any, edge: EdgeMode) -> Any:
    """One-cell pad of a numpy or Dask 2-D array: NaN or odd reflection about the edge cells."""
    xp: Any = dsa if isinstance(arr, dsa.Array) else np
    if edge == "nan":
        return xp.pad(arr, 1, mode="constant", constant_values=np.nan)
    # dask's pad has no reflect_type="odd", so both backends build it from slices
    rows = xp.concatenate([2 * arr[:1] - arr[1:2], arr, 2 * arr[-1:] - arr[-2:-1]], axis=0)
    return xp.concatenate([2 * rows[:, :1] - rows[:, 1:2], rows, 2 * rows[:, -1:] - rows[:, -2:-1]], axis=1)


def _prepare(dem: xr.DataArray, edge: EdgeMode, what: str) -> tuple[Any, xr.DataArray]:
    if not isinstance(dem, xr.DataArray) or set(dem.dims) != {"y", "x"}:
        dims = tuple(map(str, dem.dims)) if isinstance(dem, xr.DataArray) else type(dem).__name__
        msg = f"{what} takes a 2-D DEM DataArray with dims ('y', 'x'); got {dims}. Select one band or time first."
        raise DataError(msg)
    if edge not in ("nan", "reflect"):
        msg = f"edge must be 'nan' or 'reflect'; got {edge!r}."
        raise DataError(msg)
    if dem.sizes["y"] < 2 or dem.sizes["x"] < 2:
        msg = f"{what} needs at least 2 x 2 cells; got {dict(dem.sizes)}."
        raise DataError(msg)
    dem = dem.transpose("y", "x")
    if "units" in dem.attrs:
        dem = normalise_units(dem, "elevation")
    data = dem.data
    if isinstance(data, dsa.Array):
        data = data.astype("float64")
    else:
        data = np.asarray(data, dtype="float64")
    return _pad(data, edge), dem


def _apply_3x3(kernel: Any, padded: Any, aux: list[Any], **kwargs: Any) -> Any:
    """Run a 3×3 kernel over a padded array (numpy, or Dask with a one-cell halo) and unpad."""
    if isinstance(padded, dsa.Array):
        ny = padded.shape[0]
        aux_d = [dsa.from_array(a.reshape(ny, 1), chunks=(padded.chunks[0], (1,))) for a in aux]
        depth = [{0: 1, 1: 1}] + [{0: 1, 1: 0}] * len(aux_d)
        out = dsa.map_overlap(kernel, padded, *aux_d, depth=depth, boundary="none",
                              dtype="float64", meta=np.empty((0, 0)), **kwargs)
    else:
        out = kernel(padded, *aux, **kwargs)
    return out[1:-1, 1:-1]


def slope_aspect(dem: xr.DataArray, *, edge: EdgeMode = "nan") -> xr.Dataset:
    """Terrain slope and aspect by Horn's (1981) method with metric spacing.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation, dims ``(y, x)``, in m (a declared ``units`` such as km is converted;
        none means m), on a geographic or projected grid whose CRS
        :func:`soilfuse.grid.crs_of` finds.
    edge : {"nan", "reflect"}
        Outer ring NaN, or odd reflection (see module docstring).

    Returns
    -------
    xarray.Dataset
        ``slope`` (degree, 0–90) and ``aspect`` (degree clockwise from north, [0, 360),
        direction the slope faces; NaN where flat), float32, on the DEM's coords.

    Raises
    ------
    DataError
        If the DEM is not 2-D ``(y, x)`` or ``edge`` is unknown.
    GridError
        If the CRS cannot be found or ``x``/``y`` are not evenly spaced.
    """
    padded, dem = _prepare(dem, edge, "slope_aspect()")
    crs = crs_of(dem)
    y = dem["y"].values.astype("float64")
    x = dem["x"].values.astype("float64")
    if y.size > 1 and not np.allclose(np.diff(y), y[1] - y[0], rtol=1e-6, atol=0):
        msg = "slope_aspect() needs evenly spaced y coordinates; regrid the DEM to a regular grid first."
        raise GridError(msg)
    step_y = y[1] - y[0]
    y_pad = np.concatenate([[y[0] - step_y], y, [y[-1] + step_y]])
    dx, north = row_spacing(y_pad, float(x[1] - x[0]), crs)
    east_g = _apply_3x3(horn_gradient_kernel, padded, [dx, north], component="east")
    north_g = _apply_3x3(horn_gradient_kernel, padded, [dx, north], component="north")
    east_da = dem.copy(data=east_g)
    north_da = dem.copy(data=north_g)
    slope, aspect = xr.apply_ufunc(slope_aspect_kernel, east_da, north_da, output_core_dims=[[], []],
                                   dask="parallelized", output_dtypes=["float64", "float64"])
    edge_note = "outer ring NaN" if edge == "nan" else "odd reflection at the edges"
    method = f"Horn (1981) 3x3 with metric spacing ({'ellipsoidal' if crs.is_geographic else 'map'}); {edge_note}"
    out = xr.Dataset({
        "slope": annotate(slope.astype("float32"), "slope", {**VARIABLES["slope"].attrs(), "comment": method}),
        "aspect": annotate(aspect.astype("float32"), "aspect", {
            **VARIABLES["aspect"].attrs(),
            "comment": f"direction the slope faces (steepest descent), NaN where flat; {method}"}),
    })
    return out


def tpi(dem: xr.DataArray, *, edge: EdgeMode = "nan") -> xr.DataArray:
    """Topographic position index: elevation minus the mean of the 8 neighbours.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation (m), dims ``(y, x)``.
    edge : {"nan", "reflect"}
        Outer ring NaN, or odd reflection (planes give 0 at the border).

    Returns
    -------
    xarray.DataArray
        ``tpi`` (m), float32; positive on ridges, negative in valleys.

    Raises
    ------
    DataError
        If the DEM is not 2-D ``(y, x)`` or ``edge`` is unknown.
    """
    padded, dem = _prepare(dem, edge, "tpi()")
    result = _apply_3x3(tpi_kernel, padded, [])
    out = dem.copy(data=result).astype("float32")
    attrs = {"units": "m", "long_name": "topographic position index",
             "comment": f"cell minus the mean of its 8 neighbours (Guisan et al. 1999); edge={edge}"}
    return annotate(out, "tpi", attrs)
