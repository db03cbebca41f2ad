"""Apply fitted models over a covariate datacube, chunk by chunk and lazily.

A model sees a table: every ``(time, y, x)`` cell of a chunk becomes one row whose
columns are the covariates (plus ``lon``/``lat`` and any static maps). The result of
each chunk is reshaped back to the grid, so a prediction is an ordinary lazy
:class:`xarray.Dataset` built with :func:`xarray.map_blocks` and an explicit template
(as dask-ml's ``ParallelPostFit`` does): nothing is computed until it is written.

Memory per task is one chunk's table (``rows × features × 8`` bytes) plus the model,
so it does not grow with the domain.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr
>>> from soilfuse.grid import crs_of
>>> from soilfuse.io.canonical import with_grid
>>> grid = Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.25)
>>> t2m = xr.DataArray(np.full((3, 4, 4), 280.0), dims=("time", "y", "x"),
...                    coords={"time": pd.date_range("2020-01-01", periods=3)})
>>> cube = with_grid(xr.Dataset({"t2m": t2m}), grid).chunk({"time": 2})
>>> out = predict_cube(cube, lambda df: {"st": df["t2m"].to_numpy() + 1.0},
...                    outputs={"st": {"units": "K"}})
>>> float(out["st"].max().compute())
281.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError
from soilfuse.grid import crs_of

__all__ = ["cube_to_frame", "predict_cube"]

logger = logging.getLogger(__name__)

#: ``fn(table) -> {output name: array}``; arrays are ``(rows,)`` or ``(rows, n_depth)``.
PredictFn = Callable[[pd.DataFrame], Mapping[str, FloatArray]]


def cube_to_frame(block: xr.Dataset, *, add_lonlat: bool = True) -> pd.DataFrame:
    """Flatten a ``(time, y, x)`` block (static ``(y, x)`` variables broadcast) to rows.

    Rows are in C order of ``(time, y, x)``; columns are the data variables, plus
    ``lon``/``lat`` (degrees) of the cell centres and ``doy`` (day of year) when the
    block has a time dim.
    """
    sizes = block.sizes
    nt = int(sizes.get("time", 1))
    ny, nx = int(sizes["y"]), int(sizes["x"])
    cols: dict[str, FloatArray] = {}
    for name, da in block.data_vars.items():
        dims = tuple(d for d in ("time", "y", "x") if d in da.dims)
        if set(da.dims) - set(dims):
            msg = f"Variable {name!r} has dims {da.dims}; a covariate cube holds only time, y, x dims."
            raise DataError(msg)
        arr = np.asarray(da.transpose(*dims).values, dtype="float64")
        if "time" not in dims:
            arr = np.broadcast_to(arr, (nt, ny, nx))
        cols[str(name)] = arr.reshape(-1)
    if add_lonlat:
        lon, lat = _lonlat(block)
        cols["lon"] = np.broadcast_to(lon, (nt, ny, nx)).reshape(-1)
        cols["lat"] = np.broadcast_to(lat, (nt, ny, nx)).reshape(-1)
    if "time" in block.dims:
        doy = pd.DatetimeIndex(block["time"].values).day_of_year.to_numpy(dtype="float64")
        cols["doy"] = np.repeat(doy, ny * nx)
    return pd.DataFrame(cols)


def _lonlat(block: xr.Dataset) -> tuple[FloatArray, FloatArray]:
    """Cell-centre longitude/latitude of a block (works for blocks one cell wide)."""
    xx, yy = np.meshgrid(block["x"].values, block["y"].values)
    crs = crs_of(block)
    if crs.is_geographic:
        return xx, yy
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return np.asarray(lon), np.asarray(lat)


def predict_cube(
    cube: xr.Dataset,
    fn: PredictFn,
    *,
    outputs: Mapping[str, Mapping[str, Any]],
    depth: Mapping[str, xr.DataArray] | None = None,
    required: Sequence[str] | None = None,
    dtype: str = "float32",
) -> xr.Dataset:
    """Lazily apply ``fn`` to every chunk of ``cube``.

    Parameters
    ----------
    cube : xarray.Dataset
        Covariates with dims ``(time, y, x)`` (static ones ``(y, x)``), Dask-chunked
        along any of them, on one grid.
    fn : callable
        ``fn(table) -> {name: values}`` where ``table`` is :func:`cube_to_frame` of a
        chunk (only its rows with all ``required`` columns finite) and ``values`` are
        ``(rows,)`` for 2-D outputs or ``(rows, n_depth)`` for layered outputs.
    outputs : mapping
        Output name → attributes (``units``, ``long_name``…).
    depth : mapping, optional
        Depth coordinates (``depth``, ``depth_bnds``, ``layer``) from
        :func:`soilfuse.io.cf.depth_coords`; when given, every output is layered.
    required : sequence of str, optional
        Columns that must be finite for a row to be predicted (default: all data
        variables); other rows get NaN.
    dtype : str
        Output dtype.

    Returns
    -------
    xarray.Dataset
        Lazy outputs with dims ``(time, [depth,] y, x)`` chunked like ``cube``.
    """
    if not {"time", "y", "x"} <= set(cube.dims):
        msg = f"predict_cube needs dims time, y, x; got {tuple(cube.dims)}."
        raise DataError(msg)
    cube = cube.unify_chunks() if cube.chunks else cube.chunk()
    # scalar/1-D coordinates (spatial_ref…) in memory, so output blocks depend only on their input block
    cube = cube.assign_coords({k: v.load() for k, v in cube.coords.items() if k not in cube.dims})
    need = list(required) if required is not None else [str(v) for v in cube.data_vars]
    template = _template(cube, outputs, depth, dtype)

    def block_fn(block: xr.Dataset) -> xr.Dataset:
        table = cube_to_frame(block)
        ok = np.isfinite(table[need].to_numpy()).all(axis=1) if need else np.ones(len(table), bool)
        shape = (block.sizes["time"], block.sizes["y"], block.sizes["x"])
        result = fn(table[ok]) if ok.any() else {}
        # only index coords: a scalar coordinate returned by every block (spatial_ref)
        # would make each output block depend on all of them and defeat graph culling
        out = xr.Dataset(coords={k: v for k, v in block.coords.items() if k in ("time", "y", "x")})
        for name, attrs in outputs.items():
            if depth is None:
                full = np.full(len(table), np.nan, dtype=dtype)
                if name in result:
                    full[ok] = result[name]
                out[name] = (("time", "y", "x"), full.reshape(shape), dict(attrs))
            else:
                nd = depth["depth"].size
                full = np.full((len(table), nd), np.nan, dtype=dtype)
                if name in result:
                    full[ok] = np.asarray(result[name]).reshape(-1, nd)
                arr = full.reshape(*shape, nd).transpose(0, 3, 1, 2)
                out[name] = (("time", "depth", "y", "x"), arr, dict(attrs))
        if depth is not None:
            out = out.assign_coords(depth)
        return out

    result = xr.map_blocks(block_fn, cube, template=template)
    # map_blocks turns every template coordinate into block outputs; put the in-memory
    # non-index coords back so that computing one block does not pull in others
    static = {k: cube.coords[k] for k in result.coords if k not in result.dims and k in cube.coords}
    result = result.assign_coords(static)
    return result.assign_coords(depth) if depth is not None else result


def _template(
    cube: xr.Dataset, outputs: Mapping[str, Mapping[str, Any]], depth: Mapping[str, xr.DataArray] | None, dtype: str
) -> xr.Dataset:
    import dask.array as da

    chunks = cube.chunksizes
    coords = {k: v for k, v in cube.coords.items() if k in ("time", "y", "x", "spatial_ref")}
    tmpl = xr.Dataset(coords=coords)
    base = (cube.sizes["time"], cube.sizes["y"], cube.sizes["x"])
    base_chunks = (chunks["time"], chunks["y"], chunks["x"])
    for name, attrs in outputs.items():
        if depth is None:
            arr = da.empty(base, chunks=base_chunks, dtype=dtype)
            tmpl[name] = (("time", "y", "x"), arr, dict(attrs))
        else:
            nd = depth["depth"].size
            arr = da.empty((base[0], nd, base[1], base[2]), chunks=(base_chunks[0], (nd,), *base_chunks[1:]),
                           dtype=dtype)
            tmpl[name] = (("time", "depth", "y", "x"), arr, dict(attrs))
    if depth is not None:
        tmpl = tmpl.assign_coords(depth)
    for name in outputs:
        tmpl[name].attrs["grid_mapping"] = "spatial_ref"
    return tmpl
