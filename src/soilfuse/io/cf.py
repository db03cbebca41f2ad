"""CF-1.10 and ACDD-1.3 metadata: global attributes, variable attributes, encodings, depths.

Everything soilfuse writes (Zarr products, NetCDF exports, GeoTIFF tags) takes its
metadata from here, so that all files describe themselves the same way:

* :func:`acdd_attrs` computes the ACDD-1.3 discovery attributes of a dataset (extent
  in longitude/latitude even for projected grids, resolution, time coverage,
  creation date) plus ``Conventions = "CF-1.10, ACDD-1.3"``.
* :func:`variable_attrs` gives the CF attributes (``units``, ``long_name``,
  ``standard_name``, ``valid_min``/``valid_max``) of a canonical variable from
  :data:`soilfuse.variables.VARIABLES`; :func:`annotate` fills them in on a dataset
  without overwriting what is already there.
* :func:`encoding_for` chooses the on-disk dtype, ``_FillValue`` and chunks of every
  variable for Zarr or NetCDF, with chunk sizes that divide the array where possible
  (HDF5 pads partial chunks); :func:`prepare_dataset` combines all of this into the
  dataset and encoding that every soilfuse writer hands to xarray.
* :func:`depth_coords`, :func:`layer_label` and :func:`parse_layer` build and read the
  layered-variable coordinates of ``docs/conventions.md``: ``depth`` (layer midpoint,
  cm, positive down), ``depth_bnds`` ``(depth, bnds)`` and ``layer`` labels such as
  ``"0-5cm"`` or ``"5cm"`` for point sensors.

Usage
-----
>>> import numpy as np
>>> coords = depth_coords([0, 5, 10], [5, 15, 30])
>>> coords["depth"].values.tolist()
[2.5, 10.0, 20.0]
>>> coords["layer"].values.tolist()
['0-5cm', '5-15cm', '10-30cm']
>>> parse_layer("10-20cm")
(10.0, 20.0)
>>> variable_attrs("sm")["units"]
'm3 m-3'
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from soilfuse.exceptions import DataError, GridError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.variables import VARIABLES

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CHUNKS",
    "acdd_attrs",
    "annotate",
    "choose_chunk",
    "depth_coords",
    "depth_coords_from_labels",
    "encoding_for",
    "is_layer_label",
    "layer_label",
    "parse_layer",
    "prepare_dataset",
    "resolve_chunks",
    "sanitize_attrs",
    "strip_encoding_attrs",
    "time_coverage_attrs",
    "utc_now",
    "variable_attrs",
]

#: Value of the ``Conventions`` global attribute of every file soilfuse writes.
CONVENTIONS = "CF-1.10, ACDD-1.3"

#: Default on-disk chunk sizes of products (``docs/conventions.md``); dims not listed
#: (e.g. ``depth``) are stored whole.
DEFAULT_CHUNKS: Mapping[str, int] = {"time": 32, "y": 512, "x": 512}

_LAYER_RE = re.compile(
    r"^\s*(?P<top>\d+(?:\.\d+)?)\s*(?:-\s*(?P<bottom>\d+(?:\.\d+)?)\s*)?cm\s*$", re.IGNORECASE
)

_DEFAULT_LICENSE = (
    "Derived product: terms of use follow the licences of its input data; "
    "state them with license=..."
)

# Global attributes recomputed on every write; values found in the input are replaced.
_MEASURED = ("Conventions", "date_created", "date_modified", "history", "title", "summary",
             "source", "spatial_resolution")

# Attributes that describe the on-disk encoding, never copied between files.
_ENCODING_ATTRS = ("_FillValue", "missing_value", "scale_factor", "add_offset", "dtype", "chunks")


# ---------------------------------------------------------------------- depths
def layer_label(top: float, bottom: float) -> str:
    """Label of a soil layer, ``"0-5cm"``, or of a point depth, ``"5cm"`` (``top == bottom``).

    Parameters
    ----------
    top, bottom : float
        Upper and lower boundary of the layer in cm, positive down.

    Returns
    -------
    str
        Whole numbers are written without decimals (``"0-5cm"``), others with
        the shortest exact form (``"2.5cm"``).

    Raises
    ------
    DataError
        If ``bottom < top`` or either is negative or not finite.
    """
    t, b = float(top), float(bottom)
    if not (math.isfinite(t) and math.isfinite(b)) or t < 0 or b < t:
        msg = (
            f"A layer needs 0 <= top <= bottom in cm (positive down); got top={top}, "
            f"bottom={bottom}. Swap them or give depths in cm below the surface."
        )
        raise DataError(msg)
    if t == b:
        return f"{_fmt_cm(t)}cm"
    return f"{_fmt_cm(t)}-{_fmt_cm(b)}cm"


def parse_layer(label: str) -> tuple[float, float]:
    """Top and bottom (cm) of a layer label such as ``"0-5cm"``, or ``(5, 5)`` for ``"5cm"``.

    Raises
    ------
    DataError
        If ``label`` is not of the form ``"<top>-<bottom>cm"`` or ``"<depth>cm"``.
    """
    match = _LAYER_RE.match(str(label))
    if match is None:
        msg = (
            f"{label!r} is not a layer label; expected '<top>-<bottom>cm' (e.g. '0-5cm') "
            f"or '<depth>cm' (e.g. '5cm') with depths in cm."
        )
        raise DataError(msg)
    top = float(match["top"])
    bottom = float(match["bottom"]) if match["bottom"] is not None else top
    if bottom < top:
        msg = f"Layer label {label!r} has its bottom above its top; write it as top-bottom."
        raise DataError(msg)
    return top, bottom


def is_layer_label(label: object) -> bool:
    """True if ``label`` is a string :func:`parse_layer` accepts."""
    return isinstance(label, str) and _LAYER_RE.match(label) is not None


def depth_coords(tops: Sequence[float], bottoms: Sequence[float]) -> dict[str, xr.DataArray]:
    """Coordinates of a layered variable: ``depth`` midpoints, ``depth_bnds`` and ``layer``.

    Parameters
    ----------
    tops, bottoms : sequence of float
        Upper and lower boundary of each layer in cm, positive down. Point sensors
        have ``top == bottom``.

    Returns
    -------
    dict of str to xarray.DataArray
        ``depth`` (dim coordinate, layer midpoints in cm, CF ``positive: down`` and
        ``bounds: depth_bnds``), ``depth_bnds`` with dims ``(depth, bnds)`` holding
        ``[top, bottom]``, and ``layer`` labels along ``depth``. Pass it to
        ``ds.assign_coords(**depth_coords(...))``.

    Raises
    ------
    DataError
        If the lengths differ, a layer is inverted, or two layers share a midpoint.

    Examples
    --------
    >>> c = depth_coords([0, 0], [5, 10])
    >>> c["depth_bnds"].values.tolist()
    [[0.0, 5.0], [0.0, 10.0]]
    """
    top = np.asarray(tops, dtype="float64").ravel()
    bottom = np.asarray(bottoms, dtype="float64").ravel()
    if top.shape != bottom.shape or top.size == 0:
        msg = f"tops and bottoms must be non-empty and of equal length; got {top.size} and {bottom.size}."
        raise DataError(msg)
    labels = [layer_label(t, b) for t, b in zip(top, bottom, strict=True)]
    mid = (top + bottom) / 2.0
    if np.unique(mid).size != mid.size:
        msg = (
            f"Layers {labels} share a midpoint depth, which cannot index a 'depth' dimension; "
            f"keep them in separate variables."
        )
        raise DataError(msg)
    depth_attrs = {
        "standard_name": "depth",
        "long_name": "depth below surface of the layer midpoint",
        "units": "cm",
        "positive": "down",
        "axis": "Z",
        "bounds": "depth_bnds",
    }
    depth = xr.DataArray(mid, dims="depth", attrs=depth_attrs)
    bnds = xr.DataArray(
        np.stack([top, bottom], axis=-1),
        dims=("depth", "bnds"),
        coords={"depth": depth},
        attrs={"long_name": "top and bottom of the layer", "units": "cm"},
    )
    layer = xr.DataArray(
        np.array(labels, dtype=object), dims="depth", coords={"depth": depth},
        attrs={"long_name": "soil layer"},
    )
    return {"depth": depth, "depth_bnds": bnds, "layer": layer}


def depth_coords_from_labels(labels: Sequence[str]) -> dict[str, xr.DataArray]:
    """:func:`depth_coords` from layer labels such as ``["0-5cm", "5-15cm"]``."""
    parsed = [parse_layer(lab) for lab in labels]
    return depth_coords([p[0] for p in parsed], [p[1] for p in parsed])


# ---------------------------------------------------------------------- variables
def variable_attrs(name: str) -> dict[str, Any]:
    """CF attributes of a canonical variable (``sm_…``/``st_…`` prefixes allowed).

    Parameters
    ----------
    name : str
        A name in :data:`soilfuse.variables.VARIABLES`, or one starting with such a
        name and an underscore (``"sm_0_5cm"`` takes the attributes of ``"sm"``).

    Returns
    -------
    dict
        ``units``, ``long_name`` and, where defined, ``standard_name``,
        ``valid_min``, ``valid_max``.

    Raises
    ------
    MissingVariableError
        If ``name`` is not a canonical variable.
    """
    if name in VARIABLES:
        return VARIABLES[name].attrs()
    base = name.split("_")[0]
    if base in VARIABLES:
        return VARIABLES[base].attrs()
    msg = f"{name!r} is not a canonical variable; known: {sorted(VARIABLES)}."
    raise MissingVariableError(msg)


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Fill in CF attributes of canonical variables and ``grid_mapping`` links.

    Existing attributes win: a ``units`` already on a variable is kept (it is the
    reader's job to convert units, see :func:`soilfuse.variables.normalise_units`).
    Variables that are not canonical keep their attributes unchanged.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset to annotate; not modified.

    Returns
    -------
    xarray.Dataset
        A shallow copy with updated attributes (data are not copied or computed).
    """
    out = ds.copy(deep=False)
    has_crs = "spatial_ref" in out.variables
    for name in out.data_vars:
        var = out[name]
        attrs = dict(var.attrs)
        try:
            defaults = variable_attrs(str(name))
        except MissingVariableError:
            defaults = {}
        for key, value in defaults.items():
            attrs.setdefault(key, value)
        if has_crs and {"y", "x"} <= set(var.dims):
            attrs["grid_mapping"] = "spatial_ref"
        out[name].attrs = attrs
    if "time" in out.coords:
        out["time"].attrs.setdefault("standard_name", "time")
        out["time"].attrs.setdefault("axis", "T")
    return out


# ---------------------------------------------------------------------- ACDD
def acdd_attrs(
    ds: xr.Dataset,
    *,
    title: str,
    summary: str,
    source: str | None = None,
    history: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """ACDD-1.3 and CF-1.10 global attributes describing ``ds``.

    Extent and resolution come from the dataset's grid (``x``/``y`` and its CRS);
    projected grids have their outer cell edges transformed to longitude/latitude
    (densified, so curved edges are covered). Time coverage comes from ``time``.
    Nothing is computed on Dask arrays: only coordinates are read.

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset in the canonical layout (``y``, ``x`` and a CRS; ``time`` optional).
    title, summary : str
        ACDD ``title`` (one line) and ``summary`` (a paragraph).
    source : str, optional
        CF ``source``: the method or inputs that produced the data.
    history : str, optional
        CF ``history`` lines; a line ``"<UTC time> written by soilfuse <version>"``
        is appended.
    **extra
        Further attributes, overriding the computed ones (e.g. ``license``,
        ``keywords``, ``product_version``, ``institution``, ``references``).

    Returns
    -------
    dict
        Includes ``Conventions``, ``title``, ``summary``, ``geospatial_lat_min``,
        ``geospatial_lat_max``, ``geospatial_lon_min``, ``geospatial_lon_max``
        (degrees), ``geospatial_lat_resolution``/``geospatial_lon_resolution`` (with
        units, e.g. ``"0.01 degree"`` or ``"36032.22 m"``), ``geospatial_bounds``
        (WKT polygon), ``geospatial_bounds_crs``, ``time_coverage_start``/``end``
        (ISO 8601), ``time_coverage_resolution`` (ISO 8601 duration),
        ``date_created`` (UTC, ISO 8601), ``product_version``, ``creator_name``,
        ``keywords``, ``license``, ``source``, ``history``.

    Raises
    ------
    GridError
        If ``ds`` has no regular ``x``/``y`` grid with a CRS.
    """
    from soilfuse import __version__

    now_iso = utc_now()
    attrs: dict[str, Any] = {
        "Conventions": CONVENTIONS,
        "title": title,
        "summary": summary,
        "creator_name": "soilfuse",
        "creator_type": "group",
        "publisher_name": "soilfuse",
        "product_version": __version__,
        "keywords": ", ".join(_keywords(ds)),
        "keywords_vocabulary": "CF Standard Name Table",
        "standard_name_vocabulary": "CF Standard Name Table v84",
        "license": _DEFAULT_LICENSE,
        "date_created": now_iso,
        "date_modified": now_iso,
        "processing_level": "L4",
        "cdm_data_type": "Grid",
    }
    attrs.update(_geospatial_attrs(ds))
    attrs.update(time_coverage_attrs(ds))
    if source is not None:
        attrs["source"] = source
    line = f"{now_iso} written by soilfuse {__version__}"
    attrs["history"] = f"{history.rstrip()}\n{line}" if history else line
    attrs.update(extra)
    return attrs


def utc_now() -> str:
    """The current UTC time as ISO 8601 to the second, e.g. ``"2024-05-01T12:00:00Z"``."""
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def _keywords(ds: xr.Dataset) -> list[str]:
    words: list[str] = []
    for name in ds.data_vars:
        std = ds[name].attrs.get("standard_name")
        if std is None and str(name) in VARIABLES:
            std = VARIABLES[str(name)].standard_name
        if std and std not in words:
            words.append(str(std))
    return words


def _geospatial_attrs(ds: xr.Dataset) -> dict[str, Any]:
    try:
        grid = Grid.from_dataset(ds)
    except GridError as err:
        msg = (
            "Cannot compute the geospatial ACDD attributes: the dataset has no regular "
            f"x/y grid with a CRS ({err}). Canonicalise it with soilfuse.io.canonicalize first."
        )
        raise GridError(msg) from err
    west, east, south, north = grid.bounds
    dx, dy = grid.resolution
    if grid.is_geographic:
        lon_min, lon_max, lat_min, lat_max = west, east, south, north
        res_lon, res_lat = f"{dx:.10g} degree", f"{dy:.10g} degree"
    else:
        to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
        lon_min, lat_min, lon_max, lat_max = to_ll.transform_bounds(
            west, south, east, north, densify_pts=21
        )
        unit = "m" if grid.crs.axis_info and grid.crs.axis_info[0].unit_name in ("metre", "meter") else "unit"
        res_lon, res_lat = f"{dx:.10g} {unit}", f"{dy:.10g} {unit}"
    lat_min, lat_max = max(-90.0, float(lat_min)), min(90.0, float(lat_max))
    lon_min, lon_max = float(lon_min), float(lon_max)
    polygon = (
        f"POLYGON(({lat_min:.6f} {lon_min:.6f}, {lat_min:.6f} {lon_max:.6f}, "
        f"{lat_max:.6f} {lon_max:.6f}, {lat_max:.6f} {lon_min:.6f}, {lat_min:.6f} {lon_min:.6f}))"
    )
    return {
        "geospatial_lat_min": lat_min,
        "geospatial_lat_max": lat_max,
        "geospatial_lon_min": lon_min,
        "geospatial_lon_max": lon_max,
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_units": "degrees_east",
        "geospatial_lat_resolution": res_lat,
        "geospatial_lon_resolution": res_lon,
        "geospatial_bounds": polygon,
        "geospatial_bounds_crs": "EPSG:4326",
        "spatial_resolution": res_lon,
    }


def time_coverage_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """ACDD ``time_coverage_*`` attributes from the ``time`` coordinate (empty without one)."""
    if "time" not in ds.coords or ds.sizes.get("time", 0) == 0:
        return {}
    times = pd.DatetimeIndex(np.asarray(ds["time"].values, dtype="datetime64[ns]"))
    out: dict[str, Any] = {
        "time_coverage_start": _iso(times.min()),
        "time_coverage_end": _iso(times.max()),
    }
    if times.size > 1:
        step = pd.Series(times).diff().dropna().median()
        out["time_coverage_resolution"] = _iso_duration(pd.Timedelta(step))
        out["time_coverage_duration"] = _iso_duration(times.max() - times.min())
    return out


def _iso(t: pd.Timestamp) -> str:
    if t == t.normalize():
        return t.strftime("%Y-%m-%dT00:00:00Z")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_duration(td: pd.Timedelta) -> str:
    """ISO 8601 duration: ``P1D``, ``PT1H``, ``P1M`` for calendar months (28-31 days)."""
    days = td.days
    seconds = td.seconds
    if seconds == 0 and 28 <= days <= 31:
        return "P1M"
    if seconds == 0 and 365 <= days <= 366:
        return "P1Y"
    out = f"P{days}D" if days else "P"
    if seconds:
        h, rem = divmod(seconds, 3600)
        m, s = divmod(rem, 60)
        out += "T" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s else "")
    return out if out != "P" else "PT0S"


# ---------------------------------------------------------------------- encodings
def choose_chunk(size: int, target: int) -> int:
    """An on-disk chunk length near ``target`` that divides ``size``, or pads it least.

    HDF5 stores a partial last chunk padded to full size, so the default NetCDF
    chunks are chosen with this function (Zarr stores partial chunks as they are and
    keeps the exact defaults). Among lengths in ``[target/4, 3*target]`` the divisor
    of ``size`` closest to ``target`` is chosen (closest by ratio, so 73 beats 10 for
    a target of 32); when there is none, the length that leaves the smallest padding
    (ties: the one closest to ``target``).

    Parameters
    ----------
    size : int
        Length of the dimension.
    target : int
        Wanted chunk length.

    Returns
    -------
    int
        ``size`` itself when ``size <= target``.

    Examples
    --------
    >>> choose_chunk(365, 32), choose_chunk(366, 32), choose_chunk(30, 32)
    (73, 61, 30)
    >>> choose_chunk(1000, 512), choose_chunk(367, 32)
    (500, 23)
    """
    size, target = int(size), max(1, int(target))
    if size <= target:
        return max(size, 1)
    lo, hi = max(1, target // 4), min(size, 3 * target)
    candidates = np.arange(lo, hi + 1)
    padding = (-size) % candidates
    distance = np.abs(np.log(candidates / target))
    order = np.lexsort((distance, padding))
    return int(candidates[order[0]])


def encoding_for(
    ds: xr.Dataset,
    *,
    fmt: Literal["zarr", "netcdf"],
    chunks: Mapping[Any, int] | None = None,
    compression: Literal["zlib"] | None = None,
) -> dict[Hashable, dict[str, Any]]:
    """On-disk encoding of every variable of ``ds``: dtype, ``_FillValue`` and chunks.

    * Floating data keep their precision (``float16`` is widened to ``float32``)
      and store ``NaN`` as ``_FillValue``; integer and boolean data have no fill
      value, so they read back as integers.
    * Coordinates never get a fill value (CF). ``time`` is stored as integer days,
      hours or seconds since 1970-01-01, whichever represents it exactly.
    * Chunks along each dim come from ``chunks`` (missing dims:
      :data:`DEFAULT_CHUNKS`, else the whole dim), adjusted with
      :func:`choose_chunk` for NetCDF so that HDF5 pads little.
    * Zarr uses its default codec (zstd); NetCDF is uncompressed unless
      ``compression="zlib"`` (level 4 + shuffle; about 10 times slower to write).

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset about to be written.
    fmt : {"zarr", "netcdf"}
        Target format.
    chunks : mapping of dim name to int, optional
        Chunk length per dim; ``-1`` means the whole dim.
    compression : {"zlib"}, optional
        NetCDF only.

    Returns
    -------
    dict
        ``{variable name: encoding dict}`` for ``to_zarr``/``to_netcdf``.

    Raises
    ------
    DataError
        If ``compression`` is unknown or a chunk length is not a positive integer.
    """
    if compression not in (None, "zlib"):
        msg = f"compression must be None or 'zlib'; got {compression!r}."
        raise DataError(msg)
    sizes = {str(k): int(v) for k, v in ds.sizes.items()}
    disk_chunks = resolve_chunks(sizes, chunks, divide=fmt == "netcdf")
    enc: dict[Hashable, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        e: dict[str, Any] = {}
        is_coord = name in ds.coords
        kind = var.dtype.kind
        if kind == "M":
            e.update(_time_encoding(var))
        elif kind == "f":
            if var.dtype.itemsize < 4:
                e["dtype"] = "float32"
            e["_FillValue"] = None if is_coord else np.nan
        elif kind in "iub":
            e["_FillValue"] = None
        if var.ndim > 0 and kind not in "OUSM":
            chunk_shape = tuple(min(disk_chunks[str(d)], sizes[str(d)]) for d in var.dims)
            if fmt == "zarr":
                e["chunks"] = chunk_shape
            else:
                e["chunksizes"] = chunk_shape
                if compression == "zlib":
                    e.update({"zlib": True, "complevel": 4, "shuffle": True})
        enc[name] = e
    return enc


def resolve_chunks(
    sizes: Mapping[str, int], chunks: Mapping[Any, int] | None, *, divide: bool = False
) -> dict[str, int]:
    """Chunk length per dim: ``chunks``, else :data:`DEFAULT_CHUNKS`, else the whole dim.

    With ``divide=True`` the defaults are adjusted by :func:`choose_chunk`; explicit
    lengths are always kept. ``-1`` or ``None`` mean the whole dim.

    Raises
    ------
    DataError
        If a chunk length is zero or negative (other than ``-1``).
    """
    given = {str(k): v for k, v in (chunks or {}).items()}
    out: dict[str, int] = {}
    for dim, size in sizes.items():
        if dim in given:
            value = given[dim]
            if value is None or value == -1:
                out[dim] = max(size, 1)
                continue
            if not isinstance(value, int | np.integer) or value <= 0:
                msg = f"Chunk length for {dim!r} must be a positive integer or -1; got {value!r}."
                raise DataError(msg)
            out[dim] = min(int(value), max(size, 1))
        elif dim in DEFAULT_CHUNKS:
            target = DEFAULT_CHUNKS[dim]
            out[dim] = choose_chunk(size, target) if divide else min(target, max(size, 1))
        else:
            out[dim] = max(size, 1)
    return out


def _time_encoding(var: xr.Variable) -> dict[str, Any]:
    values = np.asarray(var.values, dtype="datetime64[ns]").ravel()
    values = values[~np.isnat(values)]
    ns = values.astype("int64")
    for unit, per in (("days", 86_400 * 10**9), ("hours", 3_600 * 10**9), ("minutes", 60 * 10**9),
                      ("seconds", 10**9)):
        if np.all(ns % per == 0):
            return {"units": f"{unit} since 1970-01-01", "calendar": "proleptic_gregorian",
                    "dtype": "int64"}
    return {"units": "microseconds since 1970-01-01", "calendar": "proleptic_gregorian",
            "dtype": "int64"}


def strip_encoding_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` without on-disk encoding keys (``_FillValue``, ``scale_factor``…)."""
    return {k: v for k, v in attrs.items() if k not in _ENCODING_ATTRS}


# ---------------------------------------------------------------------- writing
def prepare_dataset(
    ds: xr.Dataset,
    *,
    fmt: Literal["zarr", "netcdf"],
    chunks: Mapping[Any, int] | None = None,
    attrs: Mapping[str, Any] | None = None,
    compression: Literal["zlib"] | None = None,
) -> tuple[xr.Dataset, dict[Hashable, dict[str, Any]]]:
    """Copy of ``ds`` ready to write, and its encoding (used by every soilfuse writer).

    Variables are :func:`annotate`-d; stale encodings and encoding attributes are
    dropped; attribute values are made storable (:func:`sanitize_attrs`); global
    attributes are ``ds.attrs`` with the measured ACDD ones recomputed
    (:func:`acdd_attrs`: extent, time coverage, dates, history) and ``attrs`` on
    top. Small non-index coordinates are loaded (a Dask-backed string coordinate
    would be loaded anyway to pick its on-disk type); for Zarr, Dask-backed data
    are rechunked to the on-disk chunks so no two tasks write the same chunk.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset; not modified.
    fmt : {"zarr", "netcdf"}
        Target format.
    chunks : mapping of dim to int, optional
        On-disk chunk lengths (see :func:`encoding_for`).
    attrs : mapping, optional
        Global attributes that override all others.
    compression : {"zlib"}, optional
        NetCDF compression (see :func:`encoding_for`).

    Returns
    -------
    (xarray.Dataset, dict)
        The dataset and the ``encoding`` argument for ``to_zarr``/``to_netcdf``.
    """
    out = annotate(ds)
    small = {n: out[n].compute() for n in out.coords if n not in out.dims and out[n].chunks}
    out = out.assign_coords(small)
    for name in out.variables:
        out[name].encoding = {}
        out[name].attrs = sanitize_attrs(strip_encoding_attrs(out[name].attrs))
    base = dict(ds.attrs)
    editorial = {k: v for k, v in base.items()
                 if k not in _MEASURED and not k.startswith(("geospatial_", "time_coverage_"))}
    global_attrs = acdd_attrs(
        out,
        title=str(base.get("title", "soilfuse gridded dataset")),
        summary=str(base.get("summary", "Variables: " + ", ".join(map(str, ds.data_vars)) + ".")),
        source=base.get("source"),
        history=base.get("history"),
        **editorial,
    )
    global_attrs.update(attrs or {})
    out.attrs = sanitize_attrs(global_attrs)
    encoding = encoding_for(out, fmt=fmt, chunks=chunks, compression=compression)
    if fmt == "zarr" and any(out[v].chunks is not None for v in out.data_vars):
        disk = resolve_chunks({str(k): int(v) for k, v in out.sizes.items()}, chunks)
        for name in out.data_vars:
            out[name] = out[name].chunk({d: disk[str(d)] for d in out[name].dims})
    return out, encoding


def sanitize_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute values both NetCDF and Zarr can store: str, numbers, numeric lists.

    ``None`` values are dropped, booleans become 0/1, lists of strings are joined
    with ``", "`` and other objects are stored as JSON text.
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool | np.bool_):
            out[key] = int(value)
        elif isinstance(value, str | int | float | np.number):
            out[key] = value.item() if isinstance(value, np.generic) else value
        elif isinstance(value, list | tuple | np.ndarray):
            arr = np.asarray(value)
            out[key] = arr.tolist() if arr.dtype.kind in "iuf" else ", ".join(map(str, arr.ravel()))
        else:
            out[key] = json.dumps(value, default=str)
    return out


def _fmt_cm(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
