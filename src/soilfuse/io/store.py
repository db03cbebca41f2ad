"""Safe writing: atomic replacement of files and stores, resumable Zarr region writes.

Atomic writes
    Every full write of soilfuse (:func:`soilfuse.io.gridded.write_zarr` with
    ``mode="w"``, :func:`~soilfuse.io.gridded.write_netcdf`,
    :func:`~soilfuse.io.geotiff.write_geotiff`, :func:`init_zarr`) goes through
    :func:`atomic_path`: it writes to a hidden sibling ``.<name>.tmp-<id>`` and renames
    it onto the target only when complete. An interrupted or failed write leaves no
    product that looks complete (the previous version, if any, stays in place) and
    the temporary is removed.

Resumable production (regions)
    :func:`init_zarr` creates a Zarr v3 store from a template — metadata, attributes
    and coordinates only (``compute=False``) — and a **sidecar**
    ``<name>.regions.json`` beside the store (beside, because Zarr warns about foreign
    files inside a store)::

        {"format": "soilfuse-regions/1",
         "sizes":  {"time": 365, "y": 4000, "x": 5000},
         "chunks": {"time": 32, "y": 512, "x": 512},
         "done":   ["time=0:32,y=0:4000,x=0:5000", ...]}

    ``write_zarr(block, path, region=...)`` (:func:`write_region`) writes one block
    and only after the write has returned appends the region to ``done`` (atomic
    replace of the sidecar). A region interrupted midway is therefore not recorded
    and is written again on resume. :func:`pending_regions` lists the regions whose
    chunks are not all covered by recorded ones, so a resumed run skips finished
    chunks; :func:`is_complete` is True once every chunk is covered (or for a store
    without sidecar, which was written in one piece). Regions must start on store
    chunk boundaries. Record regions from one driver process — the data themselves
    may be computed by any Dask scheduler; two drivers would race on the sidecar.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr, tempfile, pathlib
>>> from soilfuse.grid import Grid
>>> from soilfuse.io.canonical import with_grid
>>> from soilfuse.io.gridded import write_zarr
>>> grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.25)
>>> t = pd.date_range("2020-01-01", periods=6)
>>> truth = with_grid(xr.Dataset({"sm": (("time", "y", "x"), np.full((6, 4, 4), 0.3, "f4"))},
...                              coords={"time": t}), grid)
>>> path = init_zarr(xr.zeros_like(truth.chunk()), pathlib.Path(tempfile.mkdtemp()) / "p.zarr",
...                  chunks={"time": 2})
>>> todo = pending_regions(path)
>>> len(todo), is_complete(path)
(3, False)
>>> for region in todo:
...     _ = write_zarr(truth.isel(region), path, region=region)
>>> is_complete(path), len(completed_regions(path))
(True, 3)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from soilfuse.exceptions import GridError, SoilfuseWarning, UnsupportedFileError
from soilfuse.io import cf

__all__ = [
    "atomic_path",
    "completed_regions",
    "init_zarr",
    "is_complete",
    "pending_regions",
    "write_region",
]

logger = logging.getLogger(__name__)

_SIDECAR_FORMAT = "soilfuse-regions/1"


# ====================================================================== atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden sibling temporary path; move it onto ``path`` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        Final file or directory (store). Its parent is created if needed.

    Yields
    ------
    pathlib.Path
        ``<parent>/.<name>.tmp-<id>``, to be written by the caller.

    Notes
    -----
    On any exception in the block the temporary is removed and ``path`` is left as
    it was. A directory replaces an existing one by two renames (old aside, new in,
    old removed), so ``path`` is never a half-written store.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = p.with_name(f".{p.name}.tmp-{token}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if p.is_dir() and tmp.is_dir():
        old = p.with_name(f".{p.name}.old-{token}")
        p.rename(old)
        tmp.rename(p)
        _remove(old)
    else:
        if p.is_dir():
            _remove(p)
        os.replace(tmp, p)


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


# ====================================================================== regions
def init_zarr(
    template: xr.Dataset,
    path: str | os.PathLike[str],
    chunks: Mapping[Any, int] | None = None,
    *,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Create an empty Zarr v3 store shaped like ``template``, to be filled by regions.

    Metadata, attributes (CF + ACDD, as :func:`soilfuse.io.gridded.write_zarr`) and
    coordinates are written; data chunks are not (they read as ``NaN`` until
    written). The sidecar ``<name>.regions.json`` starts with no region done.

    Parameters
    ----------
    template : xarray.Dataset
        Canonical dataset with the final coordinates, variables, dtypes and
        attributes; its data are never computed (e.g. ``xr.zeros_like`` on Dask).
    path : path-like
        The store to create (replaced atomically if it exists).
    chunks : mapping of dim to int, optional
        On-disk chunk lengths (default ``time`` 32, ``y``/``x`` 512, others whole).
    attrs : mapping, optional
        Global attributes overriding the template's and the computed ACDD ones.

    Returns
    -------
    pathlib.Path
        The store path.
    """
    p = Path(path)
    prepared, encoding = cf.prepare_dataset(template, fmt="zarr", chunks=chunks, attrs=attrs)
    disk = cf.resolve_chunks({str(k): int(v) for k, v in prepared.sizes.items()}, chunks)
    lazy = prepared.copy()
    for name in prepared.data_vars:
        lazy[name] = prepared[name].chunk({d: disk[str(d)] for d in prepared[name].dims})
    dims = _data_dims(prepared)
    meta = {
        "format": _SIDECAR_FORMAT,
        "sizes": {d: int(prepared.sizes[d]) for d in dims},
        "chunks": {d: disk[d] for d in dims},
        "done": [],
    }
    with atomic_path(p) as tmp:
        lazy.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=encoding,
                     compute=False)
        # The sidecar is written before the store appears, so the store never looks complete.
        _write_json(_sidecar(p), meta)
    logger.info("initialised Zarr store %s with chunks %s", p, meta["chunks"])
    return p


def write_region(ds: xr.Dataset, path: str | os.PathLike[str], region: Mapping[Any, slice]) -> None:
    """Write the data variables of ``ds`` into ``region`` of an existing store and record it.

    Used by ``write_zarr(ds, path, region=region)``; see the module notes.

    Raises
    ------
    FileNotFoundError
        If the store does not exist.
    GridError
        If a region dim is unknown, a slice has a step, lengths differ from the
        data, the data's index coordinates differ from the store's in that range,
        or a slice does not start on a store chunk boundary.
    """
    p = Path(path)
    if not p.exists():
        msg = f"Cannot write a region into {str(p)!r}: the store does not exist; create it with init_zarr."
        raise FileNotFoundError(msg)
    store = xr.open_zarr(p, consolidated=False, chunks=None)
    norm = _normalise_region(region, store)
    block = ds[list(ds.data_vars)]
    block = block.drop_vars(list(block.coords))
    for dim, sl in norm.items():
        if block.sizes.get(dim, sl.stop - sl.start) != sl.stop - sl.start:
            msg = (
                f"Region {dim}={sl.start}:{sl.stop} has length {sl.stop - sl.start} but the data "
                f"have {block.sizes[dim]}; make the region match the block."
            )
            raise GridError(msg)
        if dim in ds.indexes and dim in store.indexes and not np.array_equal(
            np.asarray(ds.indexes[dim]), np.asarray(store.indexes[dim][sl])
        ):
            msg = (
                f"The block's {dim!r} coordinates do not match the store at {dim}="
                f"{sl.start}:{sl.stop}; the region is misplaced."
            )
            raise GridError(msg)
    disk = _store_chunks(store, block)
    for dim, sl in norm.items():
        n = disk.get(dim)
        if n and sl.start % n:
            msg = (
                f"Region {dim}={sl.start}:{sl.stop} does not start on a chunk boundary of the "
                f"store (chunk length {n}); use regions from pending_regions({str(p)!r})."
            )
            raise GridError(msg)
    full = {str(d): norm.get(str(d), slice(0, int(s))) for d, s in store.sizes.items()}
    for name in block.data_vars:
        block[name].encoding = {}
    if any(block[v].chunks is not None for v in block.data_vars):
        block = block.chunk({d: disk[str(d)] for d in block.dims if str(d) in disk})
    block.to_zarr(p, mode="r+", region={str(d): full[str(d)] for d in block.dims},
                  consolidated=False, zarr_format=3)
    meta = _read_sidecar(p)
    if meta is not None:
        key = _region_key({d: full[d] for d in meta["sizes"]})
        if key not in meta["done"]:
            meta["done"].append(key)
            _write_json(_sidecar(p), meta)
    logger.debug("wrote region %s into %s", norm, p)


def record_append(path: str | os.PathLike[str], append_dim: str, before: int, added: int) -> None:
    """Extend the sidecar (if any) after ``added`` steps were appended along ``append_dim``."""
    p = Path(path)
    meta = _read_sidecar(p)
    if meta is None or append_dim not in meta["sizes"]:
        return
    meta["sizes"][append_dim] = before + added
    key = {d: slice(0, n) for d, n in meta["sizes"].items()}
    key[append_dim] = slice(before, before + added)
    meta["done"].append(_region_key(key))
    _write_json(_sidecar(p), meta)


def forget_regions(path: str | os.PathLike[str]) -> None:
    """Remove the sidecar of a store that was just written in one piece."""
    _sidecar(Path(path)).unlink(missing_ok=True)


def completed_regions(path: str | os.PathLike[str]) -> list[dict[str, slice]]:
    """Regions recorded as written in the ``<name>.regions.json`` sidecar of a store.

    Returns
    -------
    list of dict of str to slice
        In the order they were written, every dim given; empty without sidecar.
    """
    meta = _read_sidecar(Path(path))
    if meta is None:
        return []
    return [_parse_key(key) for key in meta["done"]]


def pending_regions(
    path: str | os.PathLike[str], chunks: Mapping[Any, int] | None = None
) -> list[dict[str, slice]]:
    """Regions of a store made by :func:`init_zarr` that are not written yet.

    Parameters
    ----------
    path : path-like
        The store.
    chunks : mapping of dim to int, optional
        Region length per dim, each a multiple of the store chunk (the last region
        of a dim may be shorter); dims not given are whole. Default: the store
        chunks, i.e. one region per chunk.

    Returns
    -------
    list of dict of str to slice
        Regions not yet fully covered by recorded ones, in C order of the dims;
        empty when the store is complete or has no sidecar.

    Raises
    ------
    GridError
        If a region length is not a multiple of the store chunk.
    """
    meta = _read_sidecar(Path(path))
    if meta is None:
        return []
    sizes, disk = meta["sizes"], meta["chunks"]
    lengths = {d: int((chunks or disk).get(d, sizes[d])) for d in sizes}
    for d, n in lengths.items():
        if n % disk[d] and n < sizes[d]:
            msg = (
                f"Region length {n} along {d!r} is not a multiple of the store chunk {disk[d]}; "
                f"use a multiple of it."
            )
            raise GridError(msg)
    done = _done_mask(meta)
    dims = list(sizes)
    out = []
    for starts in product(*(range(0, sizes[d], lengths[d]) for d in dims)):
        region = {d: slice(s, min(s + lengths[d], sizes[d])) for d, s in zip(dims, starts, strict=True)}
        blocks = tuple(slice(region[d].start // disk[d], -(-region[d].stop // disk[d])) for d in dims)
        if not done[blocks].all():
            out.append(region)
    return out


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True if the store exists and, if made by :func:`init_zarr`, all its chunks are written."""
    p = Path(path)
    if not p.exists():
        return False
    meta = _read_sidecar(p)
    return meta is None or bool(_done_mask(meta).all())


def warn_if_incomplete(path: str | os.PathLike[str]) -> None:
    """Warn (:class:`~soilfuse.exceptions.SoilfuseWarning`) if a store still has chunks to write."""
    p = Path(path)
    meta = _read_sidecar(p)
    if meta is None:
        return
    mask = _done_mask(meta)
    if not mask.all():
        msg = (
            f"Zarr store {str(p)!r} is incomplete: {int(mask.sum())} of {mask.size} chunks are "
            f"written (see {_sidecar(p).name}); missing chunks read as NaN. Resume the run "
            f"to finish it."
        )
        warnings.warn(msg, SoilfuseWarning, stacklevel=3)


# ---------------------------------------------------------------------- helpers
def _normalise_region(region: Mapping[Any, slice], store: xr.Dataset) -> dict[str, slice]:
    norm: dict[str, slice] = {}
    for dim, sl in region.items():
        if str(dim) not in store.sizes:
            msg = f"Region dim {dim!r} is not in the store; its dims are {tuple(store.sizes)}."
            raise GridError(msg)
        start, stop, step = sl.indices(store.sizes[dim])
        if step != 1:
            msg = f"Region slices must have step 1; got {sl} for {dim!r}."
            raise GridError(msg)
        norm[str(dim)] = slice(start, stop)
    return norm


def _store_chunks(store: xr.Dataset, block: xr.Dataset) -> dict[str, int]:
    """On-disk chunk length per dim of the store variables that ``block`` writes."""
    out: dict[str, int] = {}
    for name in block.data_vars:
        if name in store.data_vars:
            shape = store[name].encoding.get("chunks") or ()
            out.update(zip(map(str, store[name].dims), map(int, shape), strict=False))
    return out


def _sidecar(p: Path) -> Path:
    return p.with_name(p.name + ".regions.json")


def _write_json(p: Path, obj: Any) -> None:
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, p)


def _read_sidecar(p: Path) -> dict[str, Any] | None:
    side = _sidecar(p)
    if not side.exists():
        return None
    meta: dict[str, Any] = json.loads(side.read_text())
    if meta.get("format") != _SIDECAR_FORMAT:
        msg = f"{str(side)!r} is not a soilfuse region sidecar (format {meta.get('format')!r}); move it away."
        raise UnsupportedFileError(msg)
    return meta


def _data_dims(ds: xr.Dataset) -> list[str]:
    dims: list[str] = []
    for name in ds.data_vars:
        dims.extend(str(d) for d in ds[name].dims if str(d) not in dims)
    return dims


def _region_key(region: Mapping[str, slice]) -> str:
    return ",".join(f"{d}={region[d].start}:{region[d].stop}" for d in region)


def _parse_key(key: str) -> dict[str, slice]:
    out = {}
    for part in key.split(","):
        dim, rng = part.split("=")
        start, stop = rng.split(":")
        out[dim] = slice(int(start), int(stop))
    return out


def _done_mask(meta: Mapping[str, Any]) -> np.ndarray:
    """Boolean array over store chunks: True where a recorded region covered the chunk.

    Regions start on chunk edges; a region covers a chunk when it reaches the chunk's
    end, or the end of the dim for the last, partial chunk.
    """
    sizes, disk = meta["sizes"], meta["chunks"]
    mask = np.zeros(tuple(-(-sizes[d] // disk[d]) for d in disk), dtype=bool)
    for key in meta["done"]:
        region = _parse_key(key)
        covered = []
        for d in disk:
            stop = region[d].stop
            last = -(-stop // disk[d]) if stop == sizes[d] else stop // disk[d]
            covered.append(slice(region[d].start // disk[d], last))
        mask[tuple(covered)] = True
    return mask
