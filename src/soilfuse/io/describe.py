"""Describe any input file soilfuse reads: the engine behind ``soilfuse info FILE``.

:func:`describe` returns a plain, JSON-serialisable ``dict`` for one file or Zarr
store; :func:`format_description` turns it into a short human-readable text.

What is reported, by kind (``info["kind"]``):

``netcdf`` / ``zarr`` / ``grib``
    dims and sizes, variables with dims, dtype, units and NaN fraction, CRS, extent
    (west, east, south, north in degrees; cell edges of regular grids, the
    coordinates themselves for point lists), every time coordinate with its span and
    count, and the number of points of point lists (e.g. SMAP subsets, whose date
    comes from the file name).
``raster`` (GeoTIFF, ENVI, ESRI ASCII grid) and ``hdf4-eos`` (MODIS tiles)
    the same, from GDAL or the HDF-EOS structure metadata.
``ismn`` (``.stm``), ``ismn-static`` (``*_static_variables.csv``), ``zip``
    station id, location, depths, variable, sensor, time span, record count and
    flag counts; a zip lists its members and describes the ISMN files inside.
``station-table`` (soilfuse station CSV/Parquet, or a folder of them)
    stations, variables, depths, time span, records and flag counts.
``table`` (other CSV/Parquet), ``xml``, ``sidecar`` (``.hdr``, ``.prj``,
``.aux.xml``, ``.tfw``, ``.ovr`` beside a raster; cfgrib ``.idx`` beside a GRIB
file), ``text``
    columns, rows, time span and NaN fractions; root element and named stations,
    extent and period of ISO 19139 metadata; which file a sidecar belongs to (with
    that raster's description); line count.

The table-like kinds are handled in :mod:`soilfuse.io._describe_tables`.

NaN fractions are computed chunk-wise (Dask over on-disk chunks, raster blocks,
CSV chunks or Parquet row groups), so large files are never loaded at once; pass
``nan_fraction=False`` to skip them. Unknown formats raise
:class:`~soilfuse.exceptions.UnsupportedFileError`.

Usage
-----
>>> from soilfuse.io.describe import describe, format_description
>>> info = describe("smap_l3/western_australia_9km_2020-01/Western-Australia_2020-01-29.nc")  # doctest: +SKIP
>>> info["points"], info["time"]["start"]  # doctest: +SKIP
(0, '2020-01-29')
>>> print(format_description(info))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer
from xarray.coding.variables import SerializationWarning

from soilfuse.exceptions import DataError, GridError, UnsupportedFileError
from soilfuse.grid import crs_of
from soilfuse.io._describe_tables import TABLE_HANDLERS, extent_dict, iso, station_line
from soilfuse.io.products.dem import SIDECAR_SUFFIXES, sidecar_raster

__all__ = ["SUPPORTED_KINDS", "describe", "format_description"]

logger = logging.getLogger(__name__)

#: What :func:`describe` understands, for error messages and ``soilfuse info --help``.
SUPPORTED_KINDS = (
    "NetCDF/HDF5 (.nc, .nc4, .h5)", "Zarr store", "GRIB (.grb, .grib, .grib2)",
    "GDAL raster (GeoTIFF, ENVI + .hdr, ESRI ASCII grid)", "MODIS HDF4-EOS (.hdf)",
    "ISMN (.stm, *_static_variables.csv, .zip)", "station tables (CSV/Parquet)",
    "time-series or other tables (CSV/Parquet)", "XML metadata",
    "sidecars (.hdr, .prj, .aux.xml, .tfw, .ovr, cfgrib .idx)",
    "text (.md, .txt)",
)

_MAGIC = {b"\x89HDF": "netcdf", b"CDF\x01": "netcdf", b"CDF\x02": "netcdf", b"\x0e\x03\x13\x01": "hdf4",
          b"GRIB": "grib", b"PK\x03\x04": "zip", b"PAR1": "parquet", b"II*\x00": "raster",
          b"MM\x00*": "raster"}
_TEXT_SUFFIXES = (".md", ".txt", ".rst")
_GRIB_INDEX = re.compile(r"^(.+\.(?:grb|grib|grb2|grib2))\.[0-9a-f]+\.idx$", re.IGNORECASE)
_LON_NAMES = ("lon", "longitude", "Longitude", "LON", "nav_lon", "x")
_LAT_NAMES = ("lat", "latitude", "Latitude", "LAT", "nav_lat", "y")
_MAX_LINES = 20  # station series listed by format_description
#: Variables up to this size (bytes) are read whole for their NaN fraction; larger
#: ones are reduced chunk by chunk with Dask (a 1440 x 720 float64 grid is 8.3 MB).
_IN_MEMORY_BYTES = 32_000_000
# HDF4 number-type codes (hntdefs.h) as numpy dtype names.
_HDF4_TYPES = {4: "char", 5: "float32", 6: "float64", 20: "int8", 21: "uint8", 22: "int16",
               23: "uint16", 24: "int32", 25: "uint32"}



# ====================================================================== entry points
def describe(path: str | os.PathLike[str], *, nan_fraction: bool = True) -> dict[str, Any]:
    """Describe one file or Zarr store.

    Parameters
    ----------
    path : str or path-like
        Any file of a supported kind (:data:`SUPPORTED_KINDS`) or a Zarr store /
        station-table folder.
    nan_fraction : bool
        Compute the fraction of missing values per variable or column (chunk-wise).

    Returns
    -------
    dict
        Always ``path``, ``name``, ``kind``, ``format`` and ``size_bytes``; then the
        keys that apply: ``dims``, ``variables`` (list of dicts with ``name``,
        ``dims``, ``dtype``, ``units``, ``nan_fraction``), ``crs``, ``extent``
        (``west``, ``east``, ``south``, ``north`` in degrees, and ``extent_of``),
        ``time`` (``start``, ``end``, ``count``, ``coord``) and ``times`` (every time
        coordinate), ``points``, ``stations`` (ISMN/station summaries), ``members``
        (zip), ``columns``/``rows`` (tables), ``sidecar_of`` and ``raster``
        (sidecars), ``notes``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsupportedFileError
        If the format is not one soilfuse reads (the message lists the kinds).
    """
    p = Path(path)
    if not p.exists():
        msg = f"No such file or store: {str(p)!r}."
        raise FileNotFoundError(msg)
    info: dict[str, Any] = {"path": str(p), "name": p.name, "size_bytes": _size(p), "notes": []}
    kind = _detect(p)
    logger.debug("describing %s as %s", p, kind)
    handler = _HANDLERS[kind]
    handler(p, info, nan_fraction)
    return info


def format_description(info: Mapping[str, Any]) -> str:
    """Human-readable text of a :func:`describe` result (one fact per line).

    Parameters
    ----------
    info : mapping
        The dict :func:`describe` returned.

    Returns
    -------
    str
    """
    lines = [f"{info['name']}: {info.get('kind')} ({info.get('format', '?')}, {_human(info.get('size_bytes', 0))})"]
    if info.get("sidecar_of"):
        lines.append(f"  sidecar of: {info['sidecar_of']}")
    if info.get("dims"):
        lines.append("  dims: " + ", ".join(f"{k}={v}" for k, v in info["dims"].items()))
    if "points" in info:
        lines.append(f"  points: {info['points']}")
    if info.get("crs"):
        lines.append(f"  crs: {info['crs']}")
    if info.get("extent"):
        e = info["extent"]
        lines.append(f"  extent: west {e['west']:.5g}, east {e['east']:.5g}, south {e['south']:.5g}, "
                     f"north {e['north']:.5g} (degrees, {e.get('extent_of', 'cell edges')})")
    for name, span in (info.get("times") or {}).items():
        what = "values" if name == "records" else "steps"
        count = "" if span.get("count") is None else f" ({span['count']} {what})"
        lines.append(f"  time {name}: {span['start']} .. {span['end']}{count}")
    if info.get("rows") is not None:
        lines.append(f"  rows: {info['rows']}")
    for var in info.get("variables") or []:
        nan = var.get("nan_fraction")
        nan_txt = "" if nan is None else f", NaN {100 * nan:.1f}%"
        units = f" [{var['units']}]" if var.get("units") else ""
        dims = f" ({', '.join(var['dims'])})" if var.get("dims") else ""
        lines.append(f"  - {var['name']}{dims} {var.get('dtype', '')}{units}{nan_txt}")
    stations = info.get("stations") or []
    lines += ["  station " + station_line(st) for st in stations[:_MAX_LINES]]
    if len(stations) > _MAX_LINES:
        lines.append(f"  ... and {len(stations) - _MAX_LINES} more station series")
    for member in info.get("members") or []:
        lines.append(f"  member {member['name']} ({_human(member['size_bytes'])})"
                     + (f": {station_line(member['station'])}" if member.get("station") else ""))
    for key, value in (info.get("attributes") or {}).items():
        lines.append(f"  {key}: {value}")
    if info.get("raster"):
        nested = format_description(info["raster"]).splitlines()
        lines += ["  raster:"] + ["  " + line for line in nested]
    lines += [f"  note: {n}" for n in info.get("notes") or []]
    return "\n".join(lines)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _size(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


# ====================================================================== detection
def _detect(p: Path) -> str:
    if p.is_dir():
        markers = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")
        if p.suffix == ".zarr" or any((p / m).exists() for m in markers):
            return "zarr"
        if any(p.glob("observations.*")) or any(p.glob("stations.*")):
            return "station-folder"
        _unsupported(p, "a folder that is neither a Zarr store nor a station-table folder")
    lower = p.name.lower()
    if lower.endswith(SIDECAR_SUFFIXES):
        return "sidecar"
    if _GRIB_INDEX.match(p.name):
        return "grib-index"
    with p.open("rb") as fh:
        head = fh.read(8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    if lower.endswith(".stm"):
        return "ismn"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".xml") or head.lstrip().startswith(b"<"):
        return "xml"
    if lower.endswith(_TEXT_SUFFIXES):
        return "text"
    if lower.endswith((".grb", ".grib", ".grib2")):
        return "grib"
    import rasterio

    try:
        with rasterio.open(p):
            return "raster"
    except rasterio.errors.RasterioIOError:
        _unsupported(p, f"first bytes {head!r}")
    return "unsupported"


def _unsupported(p: Path, what: str) -> None:
    msg = (f"Cannot describe {p.name!r} ({what}); supported kinds: {', '.join(SUPPORTED_KINDS)}.")
    raise UnsupportedFileError(msg)


# ====================================================================== gridded datasets
def _netcdf(p: Path, info: dict[str, Any], nan: bool) -> None:
    with p.open("rb") as fh:
        head = fh.read(4)
    engines = ("netcdf4", "h5netcdf") if head.startswith(b"\x89HDF") else ("netcdf4", "scipy")
    ds = None
    for engine in engines:
        try:
            with warnings.catch_warnings():
                # odd time units ("days since 1970-01-01 00:00:00 UTC") decode to cftime
                # objects with a warning; describe reports them all the same
                warnings.simplefilter("ignore", SerializationWarning)
                warnings.simplefilter("ignore", UserWarning)
                ds = xr.open_dataset(p, engine=engine, chunks=None, decode_timedelta=False)
            info["format"] = "netCDF4/HDF5" if head.startswith(b"\x89HDF") else "netCDF3"
            break
        except (OSError, ValueError, TypeError, KeyError) as err:
            logger.debug("engine %s failed on %s: %s", engine, p, err)
    if ds is None:
        _unsupported(p, "NetCDF/HDF5 that neither netCDF4 nor h5netcdf opens")
        return
    with ds:
        info["kind"] = "netcdf"
        _dataset(ds, info, nan)
        if not info.get("times"):
            _time_from_name(p, info, point_list=_is_point_list(ds))


def _zarr(p: Path, info: dict[str, Any], nan: bool) -> None:
    from soilfuse.io.store import is_complete

    ds = xr.open_dataset(p, engine="zarr", consolidated=False, chunks={})
    with ds:
        info.update(kind="zarr", format="Zarr store")
        _dataset(ds, info, nan)
    if not is_complete(p):
        info["notes"].append("the store is not complete: some regions are still to be written")


def _grib(p: Path, info: dict[str, Any], nan: bool) -> None:
    import cfgrib
    import eccodes

    with p.open("rb") as fh:
        messages = eccodes.codes_count_in_file(fh)
    groups = cfgrib.open_datasets(str(p), backend_kwargs={"indexpath": ""})
    info.update(kind="grib", format=f"GRIB, {messages} messages")
    merged: dict[str, Any] = {"notes": []}
    for ds in groups:
        part: dict[str, Any] = {"notes": []}
        _dataset(ds.chunk(), part, nan)
        for key in ("variables",):
            merged.setdefault(key, []).extend(part.get(key, []))
        for key in ("dims", "times"):
            merged.setdefault(key, {}).update(part.get(key) or {})
        for key in ("crs", "extent", "time"):
            merged.setdefault(key, part.get(key))
    merged.pop("notes")
    info.update(merged)
    info["notes"].append(f"cfgrib reads the {messages} GRIB messages as {len(groups)} dataset(s)")


def _dataset(ds: xr.Dataset, info: dict[str, Any], nan: bool) -> None:
    info["dims"] = {str(k): int(v) for k, v in ds.sizes.items()}
    names = [n for n in ds.data_vars]
    fractions = _nan_fractions(ds, names) if nan else {}
    info["variables"] = [
        {"name": str(n), "dims": [str(d) for d in ds[n].dims], "dtype": str(ds[n].dtype),
         "units": str(ds[n].attrs.get("units", "")) or None,
         "long_name": ds[n].attrs.get("long_name"), "nan_fraction": fractions.get(str(n))}
        for n in names
    ]
    times = _time_spans(ds)
    info["times"] = times
    if times:
        coord, span = max(times.items(), key=lambda kv: kv[1]["count"])
        info["time"] = {**span, "coord": coord}
    info["crs"], info["extent"] = _crs_andextent_dict(ds, info)


def _nan_fractions(ds: xr.Dataset, names: list[Hashable]) -> dict[str, float]:
    """Fraction of NaN/NaT per variable.

    Variables up to :data:`_IN_MEMORY_BYTES` are read one at a time (cheaper than a
    Dask graph for the many small files); larger or Dask-backed ones are reduced
    chunk by chunk, all in one Dask pass.
    """
    out: dict[str, float] = {str(n): 0.0 for n in names if ds[n].dtype.kind in "iub"}
    lazy = {}
    for n in names:
        var = ds[n]
        if var.dtype.kind not in "fcmM" or not var.size:
            continue
        if var.chunks is None and var.nbytes <= _IN_MEMORY_BYTES:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
                out[str(n)] = float(var.isnull().mean())
        else:
            lazy[str(n)] = (var if var.chunks is not None else var.chunk("auto")).isnull().mean()
    with warnings.catch_warnings():
        # decoding time stamps that hold NaN fills (e.g. CCI 't0') casts NaN to int
        warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        values = dask.compute(*lazy.values()) if lazy else ()
    out.update({k: float(v) for k, v in zip(lazy, values, strict=True)})
    return out


def _time_spans(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    spans = {}
    for name in list(ds.coords) + list(ds.data_vars):
        var = ds[name]
        if var.dtype.kind == "O" and var.ndim == 1 and str(name) in ds.dims and var.size:
            first = var.values[0]
            if hasattr(first, "calendar") and hasattr(first, "isoformat"):  # cftime objects
                var = var.copy(data=pd.to_datetime([v.isoformat() for v in var.values]).to_numpy())
        if var.dtype.kind == "M" and var.ndim == 1 and str(name) in ds.dims:
            values = pd.DatetimeIndex(np.asarray(var.values)).dropna()
            if len(values):
                spans[str(name)] = {"start": iso(values.min()), "end": iso(values.max()),
                                    "count": int(var.size)}
        elif var.dtype.kind == "M" and var.ndim == 0:
            stamp = pd.Timestamp(var.values)
            if not pd.isna(stamp):
                spans[str(name)] = {"start": iso(stamp), "end": iso(stamp), "count": 1}
    return spans


def _coord_name(ds: xr.Dataset, axis: str) -> str | None:
    """Name of the longitude (``axis="lon"``) or latitude variable, or None."""
    std = "longitude" if axis == "lon" else "latitude"
    units = re.compile(r"^degrees?_?e(ast)?$" if axis == "lon" else r"^degrees?_?n(orth)?$", re.I)
    for name in ds.variables:
        attrs = ds[name].attrs
        if attrs.get("standard_name") == std or units.match(str(attrs.get("units", "")).strip()):
            return str(name)
    for name in _LON_NAMES if axis == "lon" else _LAT_NAMES:
        if name in ds.variables and name not in ("x", "y"):
            return name
    return None


def _is_point_list(ds: xr.Dataset) -> bool:
    lon, lat = _coord_name(ds, "lon"), _coord_name(ds, "lat")
    if lon is None or lat is None:
        return False
    return ds[lon].ndim == 1 and ds[lon].dims == ds[lat].dims and ds[lon].dims[0] not in (lon, lat)


def _crs_andextent_dict(ds: xr.Dataset, info: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    lon, lat = _coord_name(ds, "lon"), _coord_name(ds, "lat")
    try:
        crs: CRS | None = crs_of(ds)
    except GridError:
        crs = None
    if lon is not None and lat is not None:
        lon_v = np.asarray(ds[lon].values, dtype="float64")
        lat_v = np.asarray(ds[lat].values, dtype="float64")
        point_list = _is_point_list(ds)
        if point_list:
            info["points"] = int(lon_v.size)
        crs_text = _crs_text(crs) if crs is not None else "EPSG:4326 (assumed from latitude/longitude)"
        if lon_v.size == 0 or not np.isfinite(lon_v).any():
            return crs_text, None
        lon_v = np.where(lon_v > 180.0, lon_v - 360.0, lon_v)
        if not point_list and ds[lon].ndim == 1 and ds[lat].ndim == 1 and lon_v.size > 1 and lat_v.size > 1:
            hx = abs(float(np.median(np.diff(np.sort(lon_v))))) / 2
            hy = abs(float(np.median(np.diff(np.sort(lat_v))))) / 2
            return crs_text, extent_dict(lon_v.min() - hx, lon_v.max() + hx, lat_v.min() - hy,
                                     lat_v.max() + hy, "cell edges")
        return crs_text, extent_dict(np.nanmin(lon_v), np.nanmax(lon_v), np.nanmin(lat_v),
                                 np.nanmax(lat_v), "points")
    if crs is not None and "x" in ds.dims and "y" in ds.dims:
        x = np.asarray(ds["x"].values, dtype="float64")
        y = np.asarray(ds["y"].values, dtype="float64")
        hx = abs(float(x[1] - x[0])) / 2 if x.size > 1 else 0.0
        hy = abs(float(y[1] - y[0])) / 2 if y.size > 1 else 0.0
        return _crs_text(crs), _projected_extent(
            crs, (x.min() - hx, x.max() + hx, y.min() - hy, y.max() + hy))
    return (_crs_text(crs) if crs is not None else None), None


def _crs_text(crs: CRS) -> str:
    """``EPSG:<code>`` when there is one, else a short description (never PROJ JSON)."""
    wgs84 = CRS.from_epsg(4326)
    if crs.equals(wgs84, ignore_axis_order=True):
        return "EPSG:4326"
    epsg = crs.to_epsg(min_confidence=90)
    if epsg is not None:
        return f"EPSG:{epsg}"
    ell = crs.ellipsoid
    shape = "unknown ellipsoid"
    if ell is not None:
        flat = ell.inverse_flattening
        shape = (f"sphere R={ell.semi_major_metre:.9g} m" if not flat
                 else f"ellipsoid a={ell.semi_major_metre:.9g} m, 1/f={flat:.9g}")
    if crs.is_projected and crs.coordinate_operation is not None:
        kind = crs.coordinate_operation.method_name
    else:
        kind = "geographic lon/lat" if crs.is_geographic else crs.type_name
    named = crs.name if crs.name.lower() not in ("unnamed", "undefined", "unknown") else None
    return f"{named + ': ' if named else ''}{kind} on {shape}"


def _projected_extent(crs: CRS, bounds: tuple[float, float, float, float]) -> dict[str, Any]:
    west, east, south, north = bounds
    if crs.is_geographic:
        return extent_dict(west, east, south, north, "cell edges")
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon0, lat0, lon1, lat1 = to_ll.transform_bounds(west, south, east, north, densify_pts=51)
    return extent_dict(lon0, lon1, lat0, lat1, "cell edges, from projected bounds")


def _time_from_name(p: Path, info: dict[str, Any], *, point_list: bool) -> None:
    """Time span from the file name of files without a time variable (SMAP lists, LPRM)."""
    from soilfuse.io.products._common import date_from_filename
    from soilfuse.io.products.smap import smap_file_dates

    if point_list:
        try:
            start, end = smap_file_dates(p)
        except DataError:
            return
    else:
        stamp = date_from_filename(p)
        if stamp is None:
            return
        start = end = stamp
    span = {"start": iso(start), "end": iso(end), "count": int((end - start).days) + 1}
    info["times"] = {"file name": span}
    info["time"] = {**span, "coord": "file name"}
    info["notes"].append("no time variable: the date(s) come from the file name")


# ====================================================================== rasters and HDF4
def _raster(p: Path, info: dict[str, Any], nan: bool) -> None:
    import rasterio
    from rasterio.windows import Window

    from soilfuse.io.products.modis import modis_date

    with rasterio.open(p) as src:
        crs = _raster_crs(src)
        info.update(kind="raster", format=f"GDAL {src.driver}",
                    dims={"band": src.count, "y": src.height, "x": src.width})
        b = src.bounds
        info["crs"] = _crs_text(crs) if crs is not None else None
        if crs is not None:
            info["extent"] = _projected_extent(crs, (b.left, b.right, b.bottom, b.top))
        info["attributes"] = {"resolution": f"{src.res[0]:.6g} x {src.res[1]:.6g}",
                              "nodata": src.nodata}
        rows_per = max(1, int(4_000_000 // max(1, src.width)))
        variables = []
        for band in range(1, src.count + 1):
            missing = 0
            if nan:
                for r0 in range(0, src.height, rows_per):
                    window = Window(0, r0, src.width, min(rows_per, src.height - r0))
                    block = src.read(band, window=window, masked=True)
                    missing += int(np.ma.getmaskarray(block).sum())
                    if block.dtype.kind == "f":
                        missing += int(np.isnan(block.filled(0)).sum())
            desc = src.descriptions[band - 1] or f"band {band}"
            variables.append({"name": desc, "dims": ["y", "x"], "dtype": src.dtypes[band - 1],
                              "units": src.units[band - 1] or None,
                              "scale": src.scales[band - 1], "offset": src.offsets[band - 1],
                              "nan_fraction": missing / (src.width * src.height) if nan else None})
        info["variables"] = variables
        descriptions = [d or "" for d in src.descriptions]
    dates = pd.to_datetime(pd.Series(descriptions), errors="coerce", format="ISO8601")
    if descriptions and dates.notna().all():
        info["times"] = {"band descriptions": {"start": iso(dates.min()), "end": iso(dates.max()),
                                               "count": len(dates)}}
    else:
        try:
            stamp = modis_date(p)
            info["times"] = {"file name": {"start": iso(stamp), "end": iso(stamp), "count": 1}}
        except DataError:
            info["times"] = {}
    if info["times"]:
        coord, span = next(iter(info["times"].items()))
        info["time"] = {**span, "coord": coord}


def _raster_crs(src: Any) -> CRS | None:
    if src.crs is None:
        return None
    crs = CRS.from_wkt(src.crs.to_wkt())
    wgs84 = CRS.from_epsg(4326)
    if not crs.equals(wgs84) and crs.equals(wgs84, ignore_axis_order=True):
        return wgs84  # OGC:CRS84 and ESRI GCS_WGS_1984 are WGS 84 lon/lat
    return crs


def _hdf4(p: Path, info: dict[str, Any], nan: bool) -> None:
    from pyhdf.SD import SD, SDC

    from soilfuse.io.products.modis import (
        MODIS_SINUSOIDAL,
        modis_date,
        parse_struct_metadata,
        read_modis,
    )

    sd = SD(str(p), SDC.READ)
    try:
        attrs = sd.attributes()
        datasets = {name: (dims, shape, sd.select(name).attributes(), _HDF4_TYPES.get(code, str(code)))
                    for name, (dims, shape, code, _i) in sd.datasets().items()}
    finally:
        sd.end()
    info.update(kind="hdf4-eos" if "StructMetadata.0" in attrs else "hdf4",
                format=f"HDF4{'-EOS' if 'StructMetadata.0' in attrs else ''}, {len(datasets)} SDS")
    info["variables"] = [
        {"name": name, "dims": [d.split(":")[0] for d in dims], "dtype": dtype,
         "shape": list(shape) if isinstance(shape, (list, tuple)) else [shape],
         "units": str(a.get("units", "")) or None, "scale_factor": a.get("scale_factor")}
        for name, (dims, shape, a, dtype) in datasets.items()
    ]
    if "StructMetadata.0" not in attrs:
        info["notes"].append("plain HDF4 (no HDF-EOS grid); only the SDS list is shown")
        return
    grids = parse_struct_metadata(attrs["StructMetadata.0"])
    finest = min(grids.values(), key=lambda g: g.resolution[0])
    info["dims"] = {"y": finest.shape[0], "x": finest.shape[1]}
    info["grids"] = {name: {"shape": list(g.shape), "resolution_m": g.resolution[0]} for name, g in grids.items()}
    info["crs"] = f"MODIS sinusoidal ({MODIS_SINUSOIDAL})"
    info["extent"] = _projected_extent(finest.crs, finest.bounds)
    start = end = modis_date(p)
    core = str(attrs.get("CoreMetadata.0", ""))
    found = re.findall(r"(?<!END_)OBJECT\s*=\s*RANGE(BEGINNING|ENDING)DATE\s+NUM_VAL\s*=\s*\d+\s+"
                       r"VALUE\s*=\s*\"([\d-]+)\"", core)
    for which, value in found:
        if which == "ENDING":
            end = pd.Timestamp(value)
        else:
            start = pd.Timestamp(value)
    span = {"start": iso(start), "end": iso(end), "count": 1}
    info["times"] = {"file name / CoreMetadata": span}
    info["time"] = {**span, "coord": "file name / CoreMetadata"}
    if nan:
        try:
            ds = read_modis(p, qc="any", chunks={"y": 1200, "x": 1200})
        except (DataError, GridError) as err:
            info["notes"].append(f"canonical layers not read: {err}")
            return
        fractions = _nan_fractions(ds, list(ds.data_vars))
        info["canonical_layers"] = {str(n): {"units": ds[n].attrs.get("units"),
                                             "source_name": ds[n].attrs.get("source_name"),
                                             "nan_fraction": fractions.get(str(n))} for n in ds.data_vars}
        for name, layer in info["canonical_layers"].items():
            for var in info["variables"]:
                if var["name"] == layer["source_name"]:
                    var["nan_fraction"] = layer["nan_fraction"]
                    var["canonical"] = name


# ====================================================================== sidecars, xml, text
def _sidecar(p: Path, info: dict[str, Any], nan: bool) -> None:
    raster = sidecar_raster(p)
    info.update(kind="sidecar", format=_sidecar_format(p))
    if raster is None:
        info["notes"].append("the raster this sidecar belongs to is not beside it")
    else:
        info["sidecar_of"] = raster.name
        info["raster"] = describe(raster, nan_fraction=nan)
    lower = p.name.lower()
    if lower.endswith(".prj"):
        info["crs"] = CRS.from_wkt(p.read_text(errors="replace").strip()).name
    elif lower.endswith(".hdr"):
        text = p.read_text(errors="replace")
        fields = dict(re.findall(r"^\s*(samples|lines|bands|data type|map info)\s*=\s*(.+)$", text, re.M))
        info["attributes"] = {k: v.strip() for k, v in fields.items()}


def _sidecar_format(p: Path) -> str:
    lower = p.name.lower()
    return {".aux.xml": "GDAL PAM auxiliary XML", ".hdr": "ENVI header", ".prj": "ESRI projection (WKT)",
            ".tfw": "world file", ".ovr": "GDAL overviews"}[next(s for s in SIDECAR_SUFFIXES if lower.endswith(s))]


def _grib_index(p: Path, info: dict[str, Any], nan: bool) -> None:
    match = _GRIB_INDEX.match(p.name)
    grib = p.with_name(match.group(1)) if match else None
    info.update(kind="sidecar", format="cfgrib index of a GRIB file")
    if grib is not None and grib.is_file():
        info["sidecar_of"] = grib.name
    else:
        info["notes"].append("the GRIB file this index belongs to is not beside it")
    info["notes"].append("written by cfgrib when it opens a GRIB file; safe to delete")


def _xml(p: Path, info: dict[str, Any], nan: bool) -> None:
    root = ET.parse(p).getroot()
    tag = root.tag.split("}")[-1]
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else None
    info.update(kind="xml", format="XML", attributes={"root element": tag, "namespace": namespace})
    stations = sorted({(el.text or "").strip() for el in root.iter()
                       if "station" in el.tag.split("}")[-1].lower() and (el.text or "").strip()})
    info["attributes"]["station names"] = ", ".join(stations) if stations else "none named"
    values = {el.tag.split("}")[-1]: (el.text or "").strip() for el in root.iter()}
    box = [el for el in root.iter() if el.tag.endswith("EX_GeographicBoundingBox")]
    if box:
        nums = {child.tag.split("}")[-1]: float("".join(child.itertext()).strip())
                for child in box[0] if "".join(child.itertext()).strip()}
        info["extent"] = extent_dict(nums["westBoundLongitude"], nums["eastBoundLongitude"],
                                 nums["southBoundLatitude"], nums["northBoundLatitude"], "metadata bounding box")
    if values.get("beginPosition"):
        span = {"start": values["beginPosition"], "end": values.get("endPosition", ""), "count": None}
        info["times"] = {"TimePeriod": span}
        info["time"] = {**span, "coord": "TimePeriod"}


def _text(p: Path, info: dict[str, Any], nan: bool) -> None:
    text = p.read_text(errors="replace")
    first = next((line.strip("# ").strip() for line in text.splitlines() if line.strip()), "")
    info.update(kind="text", format="text", attributes={"lines": text.count("\n") + 1, "title": first})


_HANDLERS = {
    "netcdf": _netcdf, "zarr": _zarr, "grib": _grib, "raster": _raster, "hdf4": _hdf4,
    "sidecar": _sidecar, "grib-index": _grib_index, "xml": _xml, "text": _text, **TABLE_HANDLERS,
}
