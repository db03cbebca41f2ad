"""One-call regridding functions on xarray objects (xarray in, xarray out).

Each call builds the weights anew; to regrid many variables or files between the same
two grids, build one :class:`~soilfuse.regrid.Regridder` and reuse it (or save it).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any, TypeVar

import numpy as np
import xarray as xr
from affine import Affine

from soilfuse._typing import RegridMethod
from soilfuse.exceptions import GridError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.regrid._apply import FRACTION_TOL, output_dtype
from soilfuse.regrid.regridder import Regridder

__all__ = ["aggregate", "broadcast", "coarsen_mean", "regrid"]

logger = logging.getLogger(__name__)

XarrayObj = TypeVar("XarrayObj", xr.Dataset, xr.DataArray)


def regrid(
    obj: XarrayObj,
    target: Grid,
    *,
    method: RegridMethod = "bilinear",
    min_valid_fraction: float = 0.5,
    return_valid_fraction: bool = False,
    subsample: int | None = None,
) -> Any:
    """Regrid ``obj`` from its own grid (:meth:`Grid.from_dataset`) onto ``target``.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Data with dims ``(..., y, x)`` and a CRS (see :func:`soilfuse.grid.crs_of`).
    target : Grid
        Grid of the result.
    method : {"bilinear", "nearest", "mean", "broadcast"}
        See :class:`Regridder`.
    min_valid_fraction : float, default 0.5
        Valid share (0-1) of a target's weight needed for a value; see :class:`Regridder`.
    return_valid_fraction : bool, default False
        Add ``<name>_valid_fraction`` variables (a DataArray becomes a Dataset).
    subsample : int, optional
        Points per cell side for ``"mean"`` across CRSs (``None``: automatic).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        On ``target``, lazy if ``obj`` is Dask-backed.

    Raises
    ------
    GridError
        If ``obj`` has no ``y``/``x`` dims or CRS, or the grids do not overlap.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from soilfuse.grid import Grid
    >>> from soilfuse.io.canonical import with_grid
    >>> fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.25)
    >>> lon, lat = np.meshgrid(fine.x, fine.y)
    >>> da = with_grid(xr.DataArray(2.0 * lon - lat, dims=("y", "x")), fine)
    >>> out = regrid(da, Grid.latlon((100.3, 100.7, 30.3, 30.7), 0.2), method="bilinear")
    >>> out.shape
    (2, 2)
    >>> float(out[0, 0])  # 2 * 100.4 - 30.6
    170.2
    """
    rg = Regridder(
        Grid.from_dataset(obj),
        target,
        method,
        min_valid_fraction=min_valid_fraction,
        subsample=subsample,
    )
    return rg._apply(obj, return_valid_fraction, stacklevel=3)


def aggregate(
    obj: XarrayObj,
    target: Grid,
    *,
    min_valid_fraction: float = 0.5,
    return_valid_fraction: bool = False,
    subsample: int | None = None,
) -> Any:
    """Area-weighted mean of ``obj`` over each cell of a coarser ``target`` grid.

    Shorthand for ``regrid(obj, target, method="mean", ...)``. A target cell is NaN
    when less than ``min_valid_fraction`` of its area covered by the source grid has
    valid data; its value is the mean over the valid part, weighted by area (m²).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Fine data with dims ``(..., y, x)`` and a CRS.
    target : Grid
        Coarse grid (any CRS).
    min_valid_fraction : float, default 0.5
        Required valid share (0-1) of the covered area.
    return_valid_fraction : bool, default False
        Add ``<name>_valid_fraction`` variables (a DataArray becomes a Dataset).
    subsample : int, optional
        Points per cell side across CRSs (``None``: automatic).

    Returns
    -------
    xarray.Dataset or xarray.DataArray

    See Also
    --------
    coarsen_mean : the fast path for exactly nested grids.
    """
    rg = Regridder(
        Grid.from_dataset(obj),
        target,
        "mean",
        min_valid_fraction=min_valid_fraction,
        subsample=subsample,
    )
    return rg._apply(obj, return_valid_fraction, stacklevel=3)


def broadcast(obj: XarrayObj, target: Grid) -> Any:
    """Disaggregate coarse ``obj`` onto a finer ``target``: each fine cell takes its coarse cell.

    The coarse cell is the one containing the fine cell's centre (any CRSs). On nested
    grids, ``aggregate(broadcast(coarse, fine), coarse_grid)`` returns ``coarse``.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Coarse data with dims ``(..., y, x)`` and a CRS.
    target : Grid
        Fine grid.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        NaN where the fine centre lies outside the coarse grid or on a NaN cell.

    Warns
    -----
    RegridWarning
        If the target cells are larger than the source cells.
    """
    rg = Regridder(Grid.from_dataset(obj), target, "broadcast")
    return rg._apply(obj, False, stacklevel=3)


def coarsen_mean(
    obj: XarrayObj,
    factor: int | tuple[int, int],
    *,
    min_valid_fraction: float = 0.5,
    return_valid_fraction: bool = False,
) -> Any:
    """Area-weighted block mean over ``factor`` × ``factor`` cells (nested grids, fast path).

    Uses :meth:`xarray.DataArray.coarsen` on area-weighted sums, with the same rule as
    ``method="mean"``: a coarse cell is NaN unless its valid fine cells cover at least
    ``min_valid_fraction`` of its area. The coarse grid starts at the fine grid's
    north-west corner; its cells are exactly those of a ``Grid`` the fine grid nests in
    (:meth:`Grid.nesting_factor`), and the result equals :func:`aggregate` onto it.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Fine data with dims ``(..., y, x)`` and a CRS.
    factor : int or tuple of int
        Fine cells per coarse cell, ``f`` or ``(fy, fx)``.
    min_valid_fraction : float, default 0.5
        Required valid share (0-1) of each coarse cell's area.
    return_valid_fraction : bool, default False
        Add ``<name>_valid_fraction`` variables (a DataArray becomes a Dataset).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        On the coarse grid, lazy if ``obj`` is.

    Raises
    ------
    GridError
        If the factor is not a positive integer, does not divide the grid shape, or
        ``min_valid_fraction`` is outside 0-1.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from soilfuse.grid import Grid
    >>> from soilfuse.io.canonical import with_grid
    >>> fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.01)
    >>> da = with_grid(xr.DataArray(np.ones(fine.shape), dims=("y", "x")), fine)
    >>> coarsen_mean(da, 10).shape
    (10, 10)
    """
    fy, fx = _factors(factor)
    if not 0.0 <= float(min_valid_fraction) <= 1.0:
        msg = f"min_valid_fraction must be between 0 and 1; got {min_valid_fraction}."
        raise GridError(msg)
    fine = Grid.from_dataset(obj)
    ny, nx = fine.shape
    if ny % fy or nx % fx:
        msg = (
            f"coarsen_mean needs the grid shape {fine.shape} to be a multiple of the factor "
            f"({fy}, {fx}); subset the data to whole coarse cells first (e.g. "
            f"obj.isel(y=slice(0, {ny - ny % fy}), x=slice(0, {nx - nx % fx}))) or use aggregate()."
        )
        raise GridError(msg)
    coarse = Grid(fine.crs, fine.transform @ Affine.scale(fx, fy), (ny // fy, nx // fx))
    area = xr.DataArray(fine.cell_area(), dims=("y", "x"))
    windows = {"y": fy, "x": fx}
    total = area.coarsen(windows).reduce(np.sum)

    def one(var: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        spatial_coords = [
            k for k in var.coords
            if k == "spatial_ref" or (k not in ("y", "x") and {"y", "x"} & set(var[k].dims))
        ]
        var = var.drop_vars(spatial_coords)
        if var.chunks is not None:
            var = var.chunk(_aligned_chunks(var, windows))
        valid = var.notnull()
        weighted = (var.fillna(0.0) * area).coarsen(windows).reduce(np.sum)
        valid_area = (valid * area).coarsen(windows).reduce(np.sum)
        fraction = valid_area / total
        keep = (valid_area > 0) & (fraction >= min_valid_fraction - FRACTION_TOL)
        dtype = output_dtype(var.dtype)
        value = (weighted / valid_area).where(keep).astype(dtype).transpose(*var.dims)
        value.attrs = dict(var.attrs)
        value.name = var.name
        fraction = fraction.astype(dtype).transpose(*var.dims)
        fraction.attrs = {"long_name": f"valid fraction of the source data of {var.name}", "units": "1"}
        fraction.name = f"{var.name}_valid_fraction"
        return value, fraction

    if isinstance(obj, xr.DataArray):
        value, fraction = one(obj)
        if not return_valid_fraction:
            return with_grid(value, coarse)
        name = str(obj.name) if obj.name is not None else "data"
        return with_grid(
            xr.Dataset({name: value.rename(name), f"{name}_valid_fraction": fraction}), coarse
        )
    out: dict[Hashable, xr.DataArray] = {}
    for name, var in obj.data_vars.items():
        spatial = {"y", "x"} & set(var.dims)
        if spatial == {"y", "x"}:
            out[name], fraction = one(var)
            if return_valid_fraction:
                out[f"{name}_valid_fraction"] = fraction
        elif not spatial:
            out[name] = var
        else:
            logger.info("dropping %r: it has only one of the y, x dims", name)
    coords = {k: v for k, v in obj.coords.items() if k not in ("y", "x") and not ({"y", "x"} & set(v.dims))}
    return with_grid(xr.Dataset(out, coords=coords, attrs=obj.attrs), coarse)


def _factors(factor: int | tuple[int, int]) -> tuple[int, int]:
    values: tuple[Any, ...] = (factor, factor) if isinstance(factor, int | np.integer) else tuple(factor)
    if len(values) != 2 or not all(isinstance(v, int | np.integer) and v >= 1 for v in values):
        msg = f"factor must be a positive integer or a pair (fy, fx) of them; got {factor!r}."
        raise GridError(msg)
    return int(values[0]), int(values[1])


def _aligned_chunks(var: xr.DataArray, windows: dict[str, int]) -> dict[str, int]:
    """Spatial chunk sizes rounded to whole windows, so each block coarsens on its own."""
    sizes = dict(var.chunksizes)
    return {dim: max(f, (max(sizes[dim]) // f) * f) for dim, f in windows.items()}
