"""Helpers shared by the product readers: paths, units, depth layers, daily means, output.

Nothing here knows a particular product. The readers in this subpackage use these
helpers to turn a product's own file layout into soilfuse's canonical layout
(``docs/conventions.md``): canonical names and units, dims ``(time, [depth,] y, x)``,
a ``spatial_ref`` CRS, CF attributes and, on request, Dask chunks.

The daily aggregation relies on xarray's ``resample`` (with flox, when installed,
for fast grouped reductions on Dask arrays); the only hand-written arithmetic is the
coverage threshold (:func:`required_steps`).
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import Region
from soilfuse.exceptions import ConfigError, DataError, UnitsError, UnsupportedFileError
from soilfuse.grid import Grid
from soilfuse.io.canonical import canonicalize, with_grid
from soilfuse.io.cf import depth_coords
from soilfuse.variables import check_declared_units, normalise_units, unit_alias

__all__ = [
    "Chunks",
    "PathsLike",
    "as_paths",
    "assign_depth_bounds",
    "check_coverage",
    "check_declared_keys",
    "check_units",
    "chunk",
    "daily_mean",
    "date_from_filename",
    "drop_non_dim_coords",
    "finalize",
    "floor_to_day",
    "infer_step",
    "open_netcdf",
    "required_steps",
    "stack_layers",
    "subset_region",
    "to_canonical",
    "to_canonical_grid",
    "unit_key",
]

logger = logging.getLogger(__name__)

#: One file, a folder, a glob pattern, or a sequence of files.
PathsLike: TypeAlias = "str | os.PathLike[str] | Sequence[str | os.PathLike[str]]"

#: Dask chunks as accepted by :meth:`xarray.Dataset.chunk`, or ``None`` for numpy.
Chunks: TypeAlias = "Mapping[str, int] | int | str | None"

# Unit spellings found in product files that soilfuse.variables does not list. Each is
# mapped to one spelling; spellings that variables.unit_alias knows are passed to it.
_PRODUCT_UNITS: Mapping[str, str] = {
    "j m-2": "J m-2", "j m**-2": "J m-2", "j m^-2": "J m-2", "j/m2": "J m-2", "j/m^2": "J m-2",
    "(0 - 1)": "1", "0 - 1": "1", "(0-1)": "1", "0-1": "1",
    "kg m-2": "kg m-2", "kg m**-2": "kg m-2", "kg m^-2": "kg m-2", "kg/m2": "kg m-2",
    "kg/m^2": "kg m-2", "mm of water": "kg m-2",
    "m of water equivalent": "m", "m of water": "m",
    "ghz": "GHz", "gigahertz": "GHz",
}


# ---------------------------------------------------------------------------- kernels
def required_steps(steps_per_day: int, min_coverage: float) -> int:
    """Smallest number of valid steps a day needs to reach ``min_coverage`` (at least 1)."""
    return max(1, math.ceil(min_coverage * steps_per_day - 1e-9))


# ---------------------------------------------------------------------------- paths
def as_paths(paths: PathsLike, *, suffixes: Iterable[str] = ()) -> list[Path]:
    """Expand a file, folder, glob pattern or sequence of them into a sorted list of files.

    Parameters
    ----------
    paths : str, path or sequence of them
        Files, folders (all files inside whose suffix is in ``suffixes``) or glob patterns.
    suffixes : iterable of str
        Lower-case file suffixes (``".nc"``) kept when a folder is given.

    Returns
    -------
    list of pathlib.Path
        Files in sorted order, without duplicates.

    Raises
    ------
    DataError
        If a path does not exist, a pattern matches nothing, or nothing is left.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    wanted = tuple(s.lower() for s in suffixes)
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.extend(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in wanted)
        elif path.is_file():
            found.append(path)
        elif any(c in str(item) for c in "*?["):
            matches = sorted(glob.glob(str(item)))
            if not matches:
                msg = f"The pattern {str(item)!r} matches no file; check the folder and the name."
                raise DataError(msg)
            found.extend(Path(m) for m in matches)
        else:
            msg = f"Input file {str(item)!r} does not exist; check the path."
            raise DataError(msg)
    unique = sorted(set(found))
    if not unique:
        msg = f"No input file found in {paths!r} (looked for suffixes {list(wanted)})."
        raise DataError(msg)
    return unique


def date_from_filename(path: str | os.PathLike[str]) -> pd.Timestamp | None:
    """The date encoded in a file name, or ``None``.

    Recognises ``YYYYMMDDhhmmss`` (CCI, C3S, LPRM), ``YYYYMMDD`` and ``AYYYYDDD``
    (day of year, GLDAS) stamps; the first one that parses to a valid date wins.
    Only the calendar day is returned (time of day is dropped).
    """
    name = Path(path).name
    for match in re.finditer(r"(?<!\d)(\d{14}|\d{8})(?!\d)", name):
        stamp = match.group(1)[:8]
        try:
            return pd.Timestamp(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}")
        except ValueError:
            continue
    doy_match = re.search(r"\.A(\d{4})(\d{3})(?!\d)", name)
    if doy_match:
        year, doy = int(doy_match.group(1)), int(doy_match.group(2))
        if 1 <= doy <= 366:
            return pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=doy - 1)
    return None


def open_netcdf(path: Path) -> xr.Dataset:
    """Open a NetCDF (3 or 4) / HDF5 file lazily, without Dask.

    Raises
    ------
    UnsupportedFileError
        If no installed backend can read the file.
    """
    try:
        return xr.open_dataset(path, decode_timedelta=False)
    except (OSError, ValueError) as err:
        msg = f"Cannot open {str(path)!r} as NetCDF/HDF5 ({err}); is it a NetCDF file?"
        raise UnsupportedFileError(msg) from err


# ---------------------------------------------------------------------------- units
def unit_key(units: str | None) -> str:
    """One spelling per unit: product spellings first, then :func:`soilfuse.variables.unit_alias`.

    Raises
    ------
    UnitsError
        If the unit is not known.
    """
    key = (units or "").strip().lower()
    if key in _PRODUCT_UNITS:
        return _PRODUCT_UNITS[key]
    return unit_alias(units)


def check_units(
    da: xr.DataArray, name: str, declared: Mapping[str, str] | None, *aliases: str
) -> xr.DataArray:
    """Compare the units a file gives with those the caller declared; return a normalised copy.

    Parameters
    ----------
    da : xarray.DataArray
        A variable as read from the file.
    name : str
        The product's own name of the variable (used in messages and as a key).
    declared : mapping of str to str, optional
        Units declared by the caller, keyed by the product name or any of ``aliases``.
    *aliases : str
        Other keys (e.g. the canonical name) under which the units may be declared.

    Returns
    -------
    xarray.DataArray
        A shallow copy whose ``units`` attribute is the normalised spelling (see
        :func:`unit_key`) and ``source_units`` the file's own spelling; a file
        without units takes the declared ones.

    Raises
    ------
    UnitsError
        If the declared units differ from the file's (the message names both), or the
        variable has no units and none were declared.
    """
    wanted = None
    for key in (name, *aliases):
        if declared and key in declared:
            wanted = declared[key]
            break
    found = da.attrs.get("units")
    out = da.copy(deep=False)
    out.attrs = dict(da.attrs)
    if found is None or str(found).strip() == "":
        if wanted is None:
            msg = (
                f"Variable {name!r} has no 'units' attribute; declare them, e.g. "
                f"units={{{name!r}: '...'}}."
            )
            raise UnitsError(msg)
        out.attrs["units"] = unit_key(wanted)
        return out
    if wanted is not None:
        if unit_key(str(found)) != unit_key(wanted):
            msg = (
                f"Variable {name!r} is declared as {wanted!r} but the file says {found!r}; "
                f"fix the declaration or convert the file."
            )
            raise UnitsError(msg)
        if str(found).strip().lower() not in _PRODUCT_UNITS:
            check_declared_units(da, wanted, name=name)
    out.attrs["source_units"] = str(found)
    out.attrs["units"] = unit_key(str(found))
    return out


def to_canonical(
    da: xr.DataArray, canonical: str, source_name: str, **extra: Any
) -> xr.DataArray:
    """Convert to the canonical unit and keep only CF attributes plus provenance.

    The result carries the canonical ``units``, ``long_name``, ``standard_name`` and
    valid range, ``source_name`` (the product's own name), ``source_units`` (the
    units found in the file) and any ``extra`` attributes.

    Raises
    ------
    UnitsError
        If the units cannot be converted to the canonical unit.
    """
    source_units = da.attrs.get("source_units", da.attrs.get("units"))
    out = normalise_units(da, canonical)
    keep = ("units", "long_name", "standard_name", "valid_min", "valid_max")
    attrs: dict[str, Any] = {k: out.attrs[k] for k in keep if k in out.attrs}
    attrs["source_name"] = source_name
    if source_units is not None:
        attrs["source_units"] = str(source_units)
    attrs.update(extra)
    out.attrs = attrs
    return out


def check_declared_keys(declared: Mapping[str, str] | None, known: Iterable[str]) -> None:
    """Raise if units were declared for variables the reader does not read.

    Raises
    ------
    ConfigError
        Naming the unknown keys and the variables that can take a declaration.
    """
    if not declared:
        return
    known_set = set(known)
    unknown = sorted(set(declared) - known_set)
    if unknown:
        msg = (
            f"Units were declared for {unknown}, which this reader does not read; "
            f"declare units for one of {sorted(known_set)}."
        )
        raise ConfigError(msg)


# ---------------------------------------------------------------------------- coordinates
def stack_layers(
    layers: Sequence[xr.DataArray], tops: Sequence[float], bottoms: Sequence[float]
) -> xr.DataArray:
    """Stack per-layer arrays along a new ``depth`` dim (midpoints, cm), sorted by depth.

    The result has ``depth`` and ``layer`` coordinates; the dataset-level
    ``depth_bnds`` is added by :func:`assign_depth_bounds` once all layered variables
    are merged.
    """
    order = np.argsort(np.asarray(tops, dtype="float64"), kind="stable")
    coords = depth_coords([tops[i] for i in order], [bottoms[i] for i in order])
    stacked = xr.concat(
        [layers[i] for i in order], dim="depth", coords="minimal", compat="override",
        join="override", combine_attrs="override",
    ).assign_coords(depth=coords["depth"], layer=coords["layer"])
    dims = [d for d in ("time", "depth", "y", "x") if d in stacked.dims]
    return stacked.transpose(*dims, ...)


def assign_depth_bounds(ds: xr.Dataset, bounds: Iterable[tuple[float, float]]) -> xr.Dataset:
    """Set ``depth``, ``depth_bnds`` and ``layer`` of a merged dataset from layer bounds (cm).

    ``bounds`` lists ``(top, bottom)`` of every layer used by any variable; the
    ``depth`` dim is ordered by midpoint.
    """
    pairs = sorted(set(bounds), key=lambda tb: (tb[0] + tb[1]) / 2.0)
    if "depth" not in ds.dims or not pairs:
        return ds
    coords = depth_coords([t for t, _ in pairs], [b for _, b in pairs])
    out = ds.drop_vars(["layer"], errors="ignore").reindex(depth=coords["depth"].values)
    return out.assign_coords(coords)


def subset_region(ds: xr.Dataset, region: Region | None) -> xr.Dataset:
    """Cells of a canonical dataset that intersect ``region`` = (west, east, south, north), degrees.

    Only indexes: a lazily opened file stays lazy and only the window is read later.

    Raises
    ------
    GridError
        If the region is malformed or does not intersect the data.
    """
    if region is None:
        return ds
    grid = Grid.from_dataset(ds)
    rows, cols = grid.window(region)
    sub = ds.isel(y=rows, x=cols)
    return with_grid(sub, grid.slice(rows, cols))


def to_canonical_grid(ds: xr.Dataset, region: Region | None) -> xr.Dataset:
    """:func:`~soilfuse.io.canonical.canonicalize` then :func:`subset_region`, both lazy."""
    return subset_region(canonicalize(ds), region)


# ---------------------------------------------------------------------------- time
def infer_step(times: Any) -> pd.Timedelta | None:
    """The most common spacing of sorted unique ``times``; ``None`` for a single time."""
    index = pd.DatetimeIndex(np.unique(np.asarray(times, dtype="datetime64[ns]")))
    if index.size < 2:
        return None
    diffs = pd.Series(np.diff(index.asi8))
    return pd.Timedelta(int(diffs.mode().iloc[0]), unit="ns")


def daily_mean(
    ds: xr.Dataset,
    *,
    steps_per_day: int,
    min_coverage: float,
    closed: Literal["left", "right"] = "left",
) -> xr.Dataset:
    """UTC daily means of sub-daily data, NaN where a day has too few valid steps.

    A day ``d`` gathers the steps with time in ``[d, d+1)`` (``closed="left"``, for
    instantaneous values) or in ``(d, d+1]`` (``closed="right"``, for amounts that
    accumulate over the period ending at the time stamp). Each cell's mean needs at
    least ``ceil(min_coverage * steps_per_day)`` valid (non-NaN) steps, otherwise it is
    NaN. Days with fewer time stamps than that in the input are dropped, so gaps
    between files do not become rows of NaN. Lazy for Dask inputs.

    Parameters
    ----------
    ds : xarray.Dataset
        Variables with a ``time`` dim (variables without one are dropped).
    steps_per_day : int
        Expected number of time steps in a day (24 for hourly data).
    min_coverage : float
        Fraction of ``steps_per_day`` that must be valid, in (0, 1].
    closed : {"left", "right"}
        Which side of the day interval includes its boundary.

    Returns
    -------
    xarray.Dataset
        One step per kept UTC day, stamped at 00:00 of the day.

    Raises
    ------
    ConfigError
        If ``min_coverage`` is not in (0, 1].
    """
    check_coverage(min_coverage)
    need = required_steps(steps_per_day, min_coverage)
    timed = ds[[v for v in ds.data_vars if "time" in ds[v].dims]]
    times = pd.DatetimeIndex(timed["time"].values)
    stamps = pd.Series(1, index=times).resample("1D", closed=closed, label="left").count()
    keep = stamps.index[stamps.to_numpy() >= need]
    partial = int(((stamps.to_numpy() > 0) & (stamps.to_numpy() < need)).sum())
    if partial:
        log = logger.warning if keep.size == 0 else logger.info
        log("daily_mean: %d day(s) with fewer than %d of %d steps dropped (min_coverage=%g)",
            partial, need, steps_per_day, min_coverage)
    resampled = timed.resample(time="1D", closed=closed, label="left")
    mean = resampled.mean(skipna=True, keep_attrs=True)
    count = resampled.count(keep_attrs=False)
    out = mean.where(count >= need)
    for name in out.data_vars:
        out[name].attrs = dict(timed[name].attrs)
    out = out.sel(time=keep.to_numpy().astype("datetime64[ns]"))
    static = {c: ds[c] for c in ds.coords if "time" not in ds[c].dims and c not in out.coords}
    out = out.assign_coords(static) if static else out
    return out.assign_coords(time=out["time"].values.astype("datetime64[ns]"))


def check_coverage(min_coverage: float) -> None:
    """Raise :class:`~soilfuse.exceptions.ConfigError` unless ``0 < min_coverage <= 1``."""
    if not 0.0 < min_coverage <= 1.0:
        msg = f"min_coverage must be a fraction in (0, 1]; got {min_coverage!r}."
        raise ConfigError(msg)


def floor_to_day(ds: xr.Dataset) -> xr.Dataset:
    """Stamp every time step at 00:00 UTC of its day (for data that are daily already)."""
    days = pd.DatetimeIndex(ds["time"].values).floor("D")
    return ds.assign_coords(time=days.to_numpy().astype("datetime64[ns]"))


# ---------------------------------------------------------------------------- output
def chunk(ds: xr.Dataset, chunks: Chunks) -> xr.Dataset:
    """Chunk the data variables with Dask (only dims they have); ``None`` leaves ``ds`` as is.

    Non-index coordinates (``layer``, ``depth_bnds``, ``spatial_ref``) stay in memory.
    """
    if chunks is None:
        return ds
    spec: Any = chunks
    if isinstance(chunks, Mapping):
        spec = {k: v for k, v in chunks.items() if k in ds.dims}
    out = ds.chunk(spec)
    small = {name: ds[name].compute() for name in ds.coords if name not in ds.dims}
    return out.assign_coords(small) if small else out


def finalize(
    ds: xr.Dataset,
    *,
    chunks: Chunks,
    product: str,
    files: Sequence[Path],
    history: str,
    extra_attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Order dims, stamp time as ``datetime64[ns]``, set CF/provenance attributes, chunk.

    Parameters
    ----------
    ds : xarray.Dataset
        A canonical dataset (``y``/``x`` dims and ``spatial_ref`` already set).
    chunks : mapping, int, str or None
        Dask chunks; ``None`` loads the values into memory.
    product : str
        Product name for the ``source`` attribute.
    files : sequence of Path
        Input files, recorded in ``source_files``.
    history : str
        What the reader did, appended to ``history``.
    extra_attrs : mapping, optional
        More global attributes.
    """
    out = ds
    if "time" in out.coords:
        out = out.assign_coords(time=out["time"].values.astype("datetime64[ns]"))
        out["time"].attrs = {"standard_name": "time", "long_name": "time", "axis": "T"}
    order = [d for d in ("time", "depth", "y", "x") if d in out.dims]
    for name in out.data_vars:
        var = out[name]
        dims: list[Hashable] = [d for d in order if d in var.dims]
        dims += [d for d in var.dims if d not in dims]
        out[name] = var.transpose(*dims)
        out[name].attrs.pop("_FillValue", None)
        out[name].attrs.pop("missing_value", None)
        out[name].encoding.pop("coordinates", None)
        if {"y", "x"} <= set(var.dims):
            out[name].attrs["grid_mapping"] = "spatial_ref"
    names = [p.name for p in files]
    listed = names if len(names) <= 20 else [*names[:10], "...", *names[-10:]]
    out.attrs = {
        "Conventions": "CF-1.10",
        "source": product,
        "source_files": ", ".join(listed),
        "source_file_count": len(names),
        "history": history,
        **dict(extra_attrs or {}),
    }
    out = chunk(out, chunks) if chunks is not None else out.load()
    return out


def drop_non_dim_coords(ds: xr.Dataset, keep: Iterable[Hashable] = ()) -> xr.Dataset:
    """Drop coordinates that are not dimensions (scalar ``number``, ``expver``, ``step``...)."""
    keep_set = set(keep)
    extra = [c for c in ds.coords if c not in ds.dims and c not in keep_set]
    return ds.drop_vars(extra)
