"""Bring any gridded dataset to soilfuse's canonical layout.

Canonical means (see ``docs/conventions.md``): spatial dims named ``y``/``x`` holding
cell centres, ``y`` decreasing, longitudes in −180…180, time dim named ``time``, and a
``spatial_ref`` coordinate with the CRS referenced by every data variable's
``grid_mapping`` attribute.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from soilfuse.exceptions import GridError
from soilfuse.grid import Grid, crs_of, grid_mapping_attrs

__all__ = ["canonicalize", "with_grid"]

_X_NAMES = ("x", "lon", "longitude", "Longitude", "LON", "nav_lon")
_Y_NAMES = ("y", "lat", "latitude", "Latitude", "LAT", "nav_lat")
_T_NAMES = ("time", "valid_time", "Time", "t")


def with_grid(ds: xr.Dataset | xr.DataArray, grid: Grid) -> Any:
    """Attach ``grid``'s coordinates and CRS to ``ds`` (dims ``y``, ``x`` must match its shape).

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        Data with ``y`` and ``x`` dims of lengths ``grid.shape``.
    grid : Grid
        The grid the data lie on.

    Returns
    -------
    Same type as ``ds``, with ``x``, ``y``, ``spatial_ref`` coordinates and
    ``grid_mapping`` attributes set.

    Raises
    ------
    GridError
        If the dims are missing or their sizes differ from the grid's shape.
    """
    sizes = dict(ds.sizes)
    if sizes.get("y") != grid.shape[0] or sizes.get("x") != grid.shape[1]:
        msg = (
            f"Data of sizes y={sizes.get('y')}, x={sizes.get('x')} do not match the grid "
            f"shape {grid.shape}; regrid or subset the data first."
        )
        raise GridError(msg)
    out = ds.assign_coords(grid.coords())
    if isinstance(out, xr.Dataset):
        for name in out.data_vars:
            if {"y", "x"} <= set(out[name].dims):
                out[name].attrs["grid_mapping"] = "spatial_ref"
    else:
        out.attrs["grid_mapping"] = "spatial_ref"
    return out


def canonicalize(ds: xr.Dataset, *, crs: Any | None = None) -> xr.Dataset:
    """Rename dims to ``time``/``y``/``x``, flip ``y`` north-up, wrap longitudes, attach the CRS.

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset on a regular grid with 1-D spatial coordinates.
    crs : optional
        CRS to use when the dataset has none (latitude/longitude datasets default to
        WGS 84).

    Returns
    -------
    xarray.Dataset
        Lazy when the input is lazy; values are not copied.

    Raises
    ------
    GridError
        If no spatial dims can be found or coordinates are not regular.
    """
    rename: dict[Hashable, str] = {}
    x_name = _find(ds, _X_NAMES)
    y_name = _find(ds, _Y_NAMES)
    t_name = _find(ds, _T_NAMES)
    if x_name is None or y_name is None:
        msg = f"Cannot find spatial dims in {tuple(ds.dims)}; expected one of {_X_NAMES} and {_Y_NAMES}."
        raise GridError(msg)
    geographic = x_name in _X_NAMES[1:] or ds[x_name].attrs.get("units", "").startswith("degree")
    for old, new in ((x_name, "x"), (y_name, "y"), (t_name, "time")):
        if old is not None and old != new:
            rename[old] = new
    out = ds.rename(rename) if rename else ds
    if geographic:
        x = out["x"].values
        if np.nanmax(x) > 180.0:
            out = out.assign_coords(x=((out["x"] + 180.0) % 360.0) - 180.0).sortby("x")
    if out.sizes["y"] > 1 and float(out["y"][0]) < float(out["y"][-1]):
        out = out.isel(y=slice(None, None, -1))
    if crs is None:
        try:
            crs = crs_of(out)
        except GridError:
            if not geographic:
                raise
            crs = "EPSG:4326"
    grid = Grid.from_coords(out["x"].values, out["y"].values, crs)
    keep_attrs = {k: dict(out[k].attrs) for k in ("x", "y")}
    out = with_grid(out.drop_vars([v for v in ("crs",) if v in out.variables and v != "spatial_ref"]), grid)
    for k in ("x", "y"):
        extra = {a: v for a, v in keep_attrs[k].items() if a not in out[k].attrs}
        out[k].attrs.update({a: v for a, v in extra.items() if a not in ("_FillValue",)})
    out["spatial_ref"].attrs.update(grid_mapping_attrs(grid))
    return out


def _find(ds: xr.Dataset, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in ds.dims:
            return name
    return None
