"""Open and write gridded files: NetCDF/HDF5, Zarr and (through :mod:`.geotiff`) rasters.

:func:`open_gridded` opens any of them into soilfuse's canonical layout (dims
``(time, [depth,] y, x)``, ``y`` north-up, CRS on ``spatial_ref``, fill values as
``NaN``, CF time decoded to ``datetime64[ns]``), lazily on Dask unless
``chunks=None``. :func:`write_zarr` (Zarr v3, zstd) and :func:`write_netcdf`
(NetCDF4/HDF5) write CF-1.10 + ACDD-1.3 files from which :func:`open_gridded` gives
back the same :class:`~soilfuse.grid.Grid`, values, units and attributes.

Full writes are atomic (temporary sibling, then rename) and region writes into a
store made by :func:`init_zarr` are recorded for resuming; both are described in
:mod:`soilfuse.io.store`, whose :func:`init_zarr`, :func:`pending_regions`,
:func:`completed_regions` and :func:`is_complete` are re-exported here.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr, tempfile, pathlib
>>> from soilfuse.grid import Grid
>>> from soilfuse.io.canonical import with_grid
>>> grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.25)
>>> t = pd.date_range("2020-01-01", periods=4)
>>> ds = with_grid(xr.Dataset({"sm": (("time", "y", "x"), np.full((4, 4, 4), 0.2, "f4"))},
...                           coords={"time": t}), grid)
>>> out = write_zarr(ds, pathlib.Path(tempfile.mkdtemp()) / "sm.zarr", chunks={"time": 2})
>>> back = open_gridded(out)
>>> Grid.from_dataset(back) == grid, back["sm"].attrs["units"], back["sm"].chunks[0]
(True, 'm3 m-3', (4,))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from soilfuse.exceptions import MissingVariableError, SoilfuseError, UnsupportedFileError
from soilfuse.io import cf
from soilfuse.io.canonical import canonicalize
from soilfuse.io.store import (
    atomic_path,
    completed_regions,
    forget_regions,
    init_zarr,
    is_complete,
    pending_regions,
    record_append,
    warn_if_incomplete,
    write_region,
)

__all__ = [
    "NETCDF_SUFFIXES",
    "ZARR_SUFFIXES",
    "completed_regions",
    "init_zarr",
    "is_complete",
    "open_gridded",
    "pending_regions",
    "write_netcdf",
    "write_zarr",
]

logger = logging.getLogger(__name__)

#: File suffixes opened as NetCDF/HDF5 (other files are sniffed, then tried with GDAL).
NETCDF_SUFFIXES = (".nc", ".nc4", ".nc3", ".cdf", ".netcdf", ".h5", ".hdf5", ".he5")
#: Suffixes of Zarr stores (any directory holding ``zarr.json`` or ``.zgroup`` also is one).
ZARR_SUFFIXES = (".zarr",)

#: Dask chunks accepted by the readers: "auto", lengths per canonical dim, or None.
Chunks = Literal["auto"] | Mapping[Any, int] | None

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NC3_MAGIC = b"CDF"


# ====================================================================== open
def open_gridded(
    path: str | os.PathLike[str],
    *,
    chunks: Chunks = "auto",
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """Open a NetCDF/HDF5 file, a Zarr store or a GDAL raster in the canonical layout.

    Parameters
    ----------
    path : path-like
        ``.nc``/``.nc4``/``.h5``/``.hdf5`` (netCDF4/HDF5 or netCDF3; the engine is
        chosen from the file's magic bytes, falling back from ``netcdf4`` to
        ``h5netcdf`` for HDF5 files without netCDF dimension scales), a Zarr v2 or v3
        store (directory or ``.zarr``), or any raster GDAL reads (GeoTIFF, ENVI,
        ESRI ASCII grid…; see :func:`soilfuse.io.geotiff.open_raster`).
    chunks : "auto", mapping of dim to int, or None
        Dask chunks. ``"auto"`` follows the on-disk chunks scaled to Dask's target
        size; a mapping gives lengths per canonical dim (``time``, ``depth``, ``y``,
        ``x``; ``-1`` for whole); ``None`` returns lazily indexed numpy-backed
        variables (loaded on first access) instead of Dask arrays.
    variables : sequence of str, optional
        Data variables to keep (others are not read); all by default.

    Returns
    -------
    xarray.Dataset
        Dims ordered ``(time, depth, …, y, x)`` where present, ``y`` decreasing,
        longitudes in −180…180, ``spatial_ref`` with the CRS, ``grid_mapping`` on
        every gridded variable, fill values as ``NaN``, ``time`` as
        ``datetime64[ns]``. Nothing is computed: opening reads metadata and
        coordinates only.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsupportedFileError
        If no reader can open the file.
    MissingVariableError
        If a requested variable is not in the file.
    GridError
        If the file has no regular 1-D ``x``/``y`` (or lon/lat) grid.
    SoilfuseError
        If ``chunks`` is neither ``"auto"``, a mapping nor ``None``.

    Warns
    -----
    SoilfuseWarning
        When a Zarr store made by :func:`init_zarr` still has regions to write.
    """
    p = Path(path)
    if not p.exists():
        msg = f"No such file or store: {str(p)!r}."
        raise FileNotFoundError(msg)
    kind = _detect_format(p)
    logger.debug("opening %s as %s", p, kind)
    if kind == "raster":
        from soilfuse.io.geotiff import open_raster

        ds = open_raster(p, chunks=chunks)
        return _select(ds, variables, p)
    if kind == "zarr":
        warn_if_incomplete(p)
        ds = xr.open_dataset(p, engine="zarr", consolidated=False, chunks=None)
    else:
        ds = _open_netcdf(p, kind)
    ds = _select(ds, variables, p)
    return finalize(ds, chunks=chunks)


def finalize(ds: xr.Dataset, *, chunks: Chunks = "auto") -> xr.Dataset:
    """Canonicalise an opened (not yet chunked) dataset, load small coords, chunk data.

    Shared by :func:`open_gridded` and :func:`soilfuse.io.geotiff.open_raster`:
    canonical dims and CRS (:func:`~soilfuse.io.canonical.canonicalize`), dims
    ordered ``(time, depth, …, y, x)``, ``time`` as ``datetime64[ns]``, string
    coordinates as Python ``str`` objects, non-index coordinates loaded into memory
    (read from the file, not through Dask), and data variables chunked with Dask
    unless ``chunks is None``.
    """
    ds = canonicalize(ds)
    ds = _canonical_order(ds)
    if "time" in ds.coords and ds["time"].dtype.kind == "M" and ds["time"].dtype != "datetime64[ns]":
        ds = ds.assign_coords(time=ds["time"].copy(data=ds["time"].values.astype("datetime64[ns]")))
    for name in list(ds.coords):
        if name in ds.dims:
            continue
        coord = ds[name].load()
        if coord.dtype.kind in "TUS":
            coord = coord.copy(data=np.array([str(v) for v in coord.values.ravel()], dtype=object)
                               .reshape(coord.shape))
        ds = ds.assign_coords({name: coord})
    if chunks is None:
        return ds
    dask_chunks = _dask_chunks(ds, chunks)
    out = ds.copy(deep=False)
    for name in ds.data_vars:
        out[name] = ds[name].chunk({d: c for d, c in dask_chunks.items() if d in ds[name].dims})
    return out


def _detect_format(p: Path) -> Literal["zarr", "hdf5", "netcdf3", "raster"]:
    if p.is_dir():
        markers = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")
        if p.suffix in ZARR_SUFFIXES or any((p / m).exists() for m in markers):
            return "zarr"
        msg = (
            f"{str(p)!r} is a directory but not a Zarr store (no zarr.json or .zgroup); "
            f"pass the file inside it instead."
        )
        raise UnsupportedFileError(msg)
    with p.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(_NC3_MAGIC):
        return "netcdf3"
    if p.suffix.lower() in NETCDF_SUFFIXES:
        msg = (
            f"{str(p)!r} has a NetCDF/HDF5 suffix but is neither netCDF3 nor HDF5 "
            f"(first bytes {head!r}); HDF4 files (e.g. MODIS .hdf) need a product reader."
        )
        raise UnsupportedFileError(msg)
    return "raster"


def _open_netcdf(p: Path, kind: str) -> xr.Dataset:
    engines: tuple[tuple[str, dict[str, Any]], ...]
    if kind == "hdf5":
        engines = (("netcdf4", {}), ("h5netcdf", {"phony_dims": "sort"}))
    else:
        engines = (("netcdf4", {}), ("scipy", {}))
    errors: list[str] = []
    for engine, kwargs in engines:
        try:
            return xr.open_dataset(p, engine=engine, chunks=None, **kwargs)
        except (OSError, ValueError, ImportError, KeyError, TypeError) as err:
            logger.debug("engine %s failed on %s: %s", engine, p, err)
            errors.append(f"{engine}: {err}")
    msg = f"Cannot open {str(p)!r} as NetCDF/HDF5 ({'; '.join(errors)})."
    raise UnsupportedFileError(msg)


def _select(ds: xr.Dataset, variables: Sequence[str] | None, p: Path) -> xr.Dataset:
    if variables is None:
        return ds
    names = [variables] if isinstance(variables, str) else list(variables)
    missing = [v for v in names if v not in ds.data_vars]
    if missing:
        msg = (
            f"Variables {missing} are not in {str(p)!r}; it holds {sorted(map(str, ds.data_vars))}. "
            f"Fix the variable names (they are case-sensitive)."
        )
        raise MissingVariableError(msg)
    keep = [v for v in ds.data_vars if v in names or v in ("crs", "spatial_ref")]
    return ds[keep]


def _canonical_order(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy(deep=False)
    for name in out.data_vars:
        dims = out[name].dims
        first = [d for d in ("time", "depth") if d in dims]
        last = [d for d in ("y", "x") if d in dims]
        rest = [d for d in dims if d not in first and d not in last]
        order = (*first, *rest, *last)
        if order != dims:
            out[name] = out[name].transpose(*order)
    return out


def _dask_chunks(ds: xr.Dataset, chunks: Chunks) -> dict[Hashable, Any]:
    if isinstance(chunks, Mapping):
        return {d: (-1 if v is None else v) for d, v in chunks.items() if d in ds.dims}
    if chunks != "auto":
        msg = f"chunks must be 'auto', a mapping of dim to length, or None; got {chunks!r}."
        raise SoilfuseError(msg)
    from dask.array.core import normalize_chunks

    out: dict[Hashable, Any] = {}
    for name in sorted(ds.data_vars, key=lambda n: -ds[n].ndim):
        var = ds[name]
        if var.ndim == 0 or all(d in out for d in var.dims):
            continue
        disk = var.encoding.get("preferred_chunks") or {}
        previous = tuple(int(disk.get(d, s)) for d, s in zip(var.dims, var.shape, strict=True))
        norm = normalize_chunks("auto", var.shape, dtype=var.dtype, previous_chunks=previous)
        for d, c in zip(var.dims, norm, strict=True):
            out.setdefault(d, c[0] if c else 1)
    return out


# ====================================================================== write: Zarr
def write_zarr(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    chunks: Mapping[Any, int] | None = None,
    mode: Literal["w", "w-", "a", "r+"] = "w",
    region: Mapping[Any, slice] | None = None,
    append_dim: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``ds`` as a Zarr v3 store with CF-1.10 + ACDD-1.3 metadata.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset (``y``/``x`` with a CRS). Dask-backed data are written chunk
        by chunk; they are rechunked to the store's chunks first so no two tasks
        write the same chunk.
    path : path-like
        The store (a directory, conventionally ``*.zarr``).
    chunks : mapping of dim to int, optional
        On-disk chunk lengths; defaults: ``time`` 32, ``y``/``x`` 512, other dims
        whole (:data:`soilfuse.io.cf.DEFAULT_CHUNKS`). Ignored for ``region`` and
        ``append_dim`` writes, which use the existing store's chunks.
    mode : {"w", "w-", "a", "r+"}
        ``"w"`` replaces ``path`` atomically (write beside, then rename);
        ``"w-"`` is the same but fails if ``path`` exists; ``"a"`` adds variables
        to an existing store or, with ``append_dim``, appends along that dim;
        ``"r+"`` writes ``region`` into an existing store. With ``region`` given,
        ``"w"`` is taken as ``"r+"``; with ``append_dim``, as ``"a"``.
    region : mapping of dim to slice, optional
        Write ``ds`` into this index range of an existing store (e.g. one made by
        :func:`init_zarr`). Only data variables are written; the dataset's index
        coordinates must equal the store's in that range, and each slice must start
        on a store chunk boundary. When the write has completed the region is
        recorded in the ``<name>.regions.json`` sidecar (see :func:`pending_regions`).
    append_dim : str, optional
        Append ``ds`` along this dim (usually ``"time"``).
    attrs : mapping, optional
        Global attributes overriding those of ``ds`` and the computed ACDD ones
        (e.g. ``title``, ``summary``, ``license``, ``product_version``).

    Returns
    -------
    pathlib.Path
        The store path.

    Raises
    ------
    FileExistsError
        If ``mode="w-"`` and ``path`` exists.
    GridError
        If a region is misaligned with the store chunks or its coordinates differ.
    FileNotFoundError
        If a region or append write targets a missing store.
    SoilfuseError
        If ``mode="r+"`` is given without ``region``.
    """
    p = Path(path)
    if region is not None:
        write_region(ds, p, region)
        return p
    if append_dim is not None or mode == "a":
        _append(ds, p, append_dim=append_dim, attrs=attrs)
        return p
    if mode == "r+":
        msg = "mode='r+' needs a region=; use mode='a' to add variables or 'w' to replace the store."
        raise SoilfuseError(msg)
    if mode == "w-" and p.exists():
        msg = f"{str(p)!r} exists; remove it or write with mode='w' to replace it."
        raise FileExistsError(msg)
    prepared, encoding = cf.prepare_dataset(ds, fmt="zarr", chunks=chunks, attrs=attrs)
    with atomic_path(p) as tmp:
        prepared.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    forget_regions(p)
    logger.info("wrote Zarr store %s", p)
    return p


def _append(ds: xr.Dataset, p: Path, *, append_dim: str | None, attrs: Mapping[str, Any] | None) -> None:
    if not p.exists():
        msg = f"Cannot append to {str(p)!r}: the store does not exist; write it with mode='w' first."
        raise FileNotFoundError(msg)
    prepared = cf.annotate(ds)
    for name in prepared.variables:
        prepared[name].encoding = {}
    if append_dim is not None:
        static = [n for n in prepared.variables if append_dim not in prepared[n].dims]
        before = int(xr.open_zarr(p, consolidated=False, chunks=None).sizes[append_dim])
        prepared = prepared.drop_vars(static)
        prepared.to_zarr(p, mode="a", append_dim=append_dim, consolidated=False, zarr_format=3)
        record_append(p, append_dim, before, int(prepared.sizes[append_dim]))
    else:
        prepared.to_zarr(p, mode="a", consolidated=False, zarr_format=3)
    import zarr

    store = xr.open_zarr(p, consolidated=False, chunks=None)
    update = {**cf.time_coverage_attrs(store), "date_modified": cf.utc_now(), **(attrs or {})}
    zarr.open_group(p, mode="r+").attrs.update(cf.sanitize_attrs(update))


# ====================================================================== write: NetCDF
def write_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    engine: Literal["h5netcdf", "netcdf4"] = "h5netcdf",
    compression: Literal["zlib"] | None = None,
    chunks: Mapping[Any, int] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``ds`` as a NetCDF4/HDF5 file with CF-1.10 + ACDD-1.3 metadata, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset; Dask-backed data are computed chunk by chunk while
        writing.
    path : path-like
        Output file (``.nc``); replaced if it exists.
    engine : {"h5netcdf", "netcdf4"}
        Writing library.
    compression : {"zlib"}, optional
        ``None`` (default) writes uncompressed chunks (fast); ``"zlib"`` uses
        deflate level 4 with shuffle (smaller, about 10 times slower to write).
    chunks : mapping of dim to int, optional
        HDF5 chunk lengths. By default ``time``/``y``/``x`` get lengths near 32/512/
        512 that divide the dim where possible (HDF5 pads partial chunks; see
        :func:`soilfuse.io.cf.choose_chunk`), other dims are whole.
    attrs : mapping, optional
        Global attributes overriding those of ``ds`` and the computed ACDD ones.

    Returns
    -------
    pathlib.Path
        The file path.

    Raises
    ------
    SoilfuseError
        If ``engine`` is unknown.
    DataError
        If ``compression`` is unknown or a chunk length is not positive.
    """
    p = Path(path)
    if engine not in ("h5netcdf", "netcdf4"):
        msg = f"engine must be 'h5netcdf' or 'netcdf4'; got {engine!r}."
        raise SoilfuseError(msg)
    prepared, encoding = cf.prepare_dataset(ds, fmt="netcdf", chunks=chunks, attrs=attrs,
                                            compression=compression)
    with atomic_path(p) as tmp:
        prepared.to_netcdf(tmp, engine=engine, format="NETCDF4", encoding=encoding)
    logger.info("wrote NetCDF file %s", p)
    return p
