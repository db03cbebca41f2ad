"""GeoTIFF and other GDAL rasters: read into the canonical layout, write round-trippable files.

:func:`open_raster` opens any raster GDAL reads (GeoTIFF/COG, ENVI ``.hdr``, ESRI
ASCII grid, …) through rioxarray and interprets its bands:

* band descriptions that are all ISO dates (``2020-01-01``) become a ``time`` dim;
* band descriptions that are all layer labels (``0-5cm``, ``5cm``) become a
  ``depth`` dim with ``depth_bnds`` and ``layer`` (:func:`soilfuse.io.cf.depth_coords`);
* a single band becomes a 2-D ``(y, x)`` variable;
* several bands named by distinct identifiers become separate variables;
* anything else keeps a ``band`` dim.

Nodata becomes ``NaN`` and each band's scale factor and offset are applied. The
variable is named by the ``variable`` argument, else the file's ``variable`` tag,
else a single band's identifier-like description, else the file stem. Units come
from the band units or the ``units`` tag. Coordinates and CRS follow
:func:`soilfuse.io.gridded.open_gridded`; a CRS that is WGS 84 up to axis order
(``OGC:CRS84``, ESRI ``GCS_WGS_1984``) is reported as ``EPSG:4326``.

:func:`write_geotiff` writes a 2-D or 3-D DataArray whose third dim (``time``,
``depth`` or any other) becomes bands described by ``YYYY-MM-DD`` dates or layer
labels, with exact CRS and transform, optional integer packing (``scale_factor``,
``add_offset``, ``nodata``), units and attributes in tags (attributes in full in the
``SOILFUSE`` metadata domain), so that :func:`open_raster` gives the data back.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr, tempfile, pathlib
>>> from soilfuse.grid import Grid
>>> from soilfuse.io.canonical import with_grid
>>> grid = Grid.latlon((10.0, 11.0, 45.0, 46.0), 0.1)
>>> t = pd.date_range("2021-08-01", periods=3)
>>> lst = with_grid(xr.DataArray(np.full((3, 10, 10), 300.0), dims=("time", "y", "x"),
...                 coords={"time": t}, name="lst_day", attrs={"units": "K"}), grid)
>>> path = write_geotiff(lst, pathlib.Path(tempfile.mkdtemp()) / "lst.tif",
...                      dtype="uint16", scale_factor=0.02, nodata=0)
>>> back = open_raster(path)
>>> float(back["lst_day"][0, 0, 0]), back["lst_day"].attrs["units"], back.sizes["time"]
(300.0, 'K', 3)
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from pyproj import CRS

from soilfuse.exceptions import (
    DataError,
    GridError,
    MissingVariableError,
    SoilfuseError,
    UnsupportedFileError,
)
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.io.gridded import Chunks, finalize
from soilfuse.io.store import atomic_path

__all__ = ["open_raster", "write_geotiff"]

logger = logging.getLogger(__name__)

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?$")
#: Metadata domain holding a variable's attributes as JSON values.
TAG_DOMAIN = "SOILFUSE"
# Default-domain tags copied to attributes when the file was not written by soilfuse.
_CF_TAGS = ("units", "long_name", "standard_name", "valid_min", "valid_max", "comment",
            "source", "references", "flag_values", "flag_meanings")
_NUMERIC_TAGS = ("valid_min", "valid_max")
_NODATA_DEFAULT = {"int8": -128, "uint8": 255, "int16": -32768, "uint16": 65535,
                   "int32": -2147483648, "uint32": 4294967295}
_WGS84 = CRS.from_epsg(4326)


# ====================================================================== read
def open_raster(
    path: str | os.PathLike[str],
    *,
    chunks: Chunks = "auto",
    variable: str | None = None,
) -> xr.Dataset:
    """Open a GDAL raster as a canonical dataset (bands → ``time``, ``depth``, variables or ``band``).

    Parameters
    ----------
    path : path-like
        GeoTIFF/COG or any single-file raster GDAL opens (ENVI with its ``.hdr``,
        ESRI ASCII grid with ``.prj``…).
    chunks : "auto", mapping of dim to int, or None
        As in :func:`soilfuse.io.gridded.open_gridded`; dims are the canonical ones
        (``time``/``depth``/``band``, ``y``, ``x``). With ``None``, a raster that
        needs decoding (nodata or scale/offset) is read into memory.
    variable : str, optional
        Name of the variable; by default the ``variable`` tag, a single band's
        description if it is an identifier, else the file stem.

    Returns
    -------
    xarray.Dataset
        Floating data with nodata as ``NaN`` and scale/offset applied (float32 for
        8/16-bit and float32 files, float64 otherwise); integer files without nodata
        or scaling keep their integer dtype.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsupportedFileError
        If GDAL cannot open it.
    """
    import rasterio
    import rioxarray

    p = Path(path)
    if not p.exists():
        msg = f"No such raster file: {str(p)!r}."
        raise FileNotFoundError(msg)
    try:
        with rasterio.open(p) as src:
            info = _band_info(src)
    except rasterio.errors.RasterioIOError as err:
        msg = f"GDAL cannot open {str(p)!r} as a raster ({err}); check the file and its sidecars."
        raise UnsupportedFileError(msg) from err
    with warnings.catch_warnings():
        # rioxarray's own use of `Affine * Affine` (deprecated in affine 3) is not ours to
        # fix, and per-band scales/offsets, which it declines to apply, are applied by _decode.
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module="rioxarray")
        warnings.filterwarnings("ignore", message="(Scales|Offsets) differ across bands")
        raw = rioxarray.open_rasterio(p, chunks=_rio_chunks(chunks, info), cache=chunks is None,
                                      mask_and_scale=False)
    if not isinstance(raw, xr.DataArray):
        msg = f"{str(p)!r} holds several subdatasets; open one of them (GDAL subdataset name)."
        raise UnsupportedFileError(msg)
    data = _decode(raw, info)
    data.attrs = info["attrs"]
    name = variable or info["name"] or p.name.split(".")[0]
    ds = _structure(data, info["descriptions"], name=name, named_bands=variable is None)
    ds = _normalise_crs(ds)
    logger.debug("opened raster %s: %s", p, dict(ds.sizes))
    # Already chunked by rioxarray (so that decoding stays lazy): finalize must not rechunk.
    return finalize(ds, chunks=None)


def _rio_chunks(chunks: Chunks, info: Mapping[str, Any]) -> dict[str, int] | None:
    """Canonical-dim chunks as rioxarray's ``band``/``y``/``x`` chunks ("auto": from the blocks)."""
    if chunks is None:
        return None
    if chunks == "auto":
        from dask.array.core import normalize_chunks

        by, bx = info["block"]
        norm = normalize_chunks("auto", info["shape"], dtype=info["dtype"], previous_chunks=(1, by, bx))
        return {"band": norm[0][0], "y": norm[1][0], "x": norm[2][0]}
    if not isinstance(chunks, Mapping):
        msg = f"chunks must be 'auto', a mapping of dim to length, or None; got {chunks!r}."
        raise SoilfuseError(msg)
    return {("band" if d in ("time", "depth") else d): (-1 if v is None else v)
            for d, v in chunks.items() if d in ("time", "depth", "band", "y", "x")}


def _band_info(src: Any) -> dict[str, Any]:
    tags = src.tags()
    own = {k: _json_value(v) for k, v in src.tags(ns=TAG_DOMAIN).items()}
    attrs: dict[str, Any] = {}
    for key in _CF_TAGS:
        if key in tags:
            attrs[key] = _number(tags[key]) if key in _NUMERIC_TAGS else tags[key]
    units = next((u for u in src.units if u), None)
    if units:
        attrs["units"] = units
    attrs.update(own)
    attrs.pop("variable", None)
    descriptions = [d or "" for d in src.descriptions]
    single = descriptions[0] if src.count == 1 and descriptions[0].isidentifier() else None
    name = own.get("variable") or tags.get("variable") or single
    return {
        "attrs": attrs,
        "descriptions": descriptions,
        "name": name,
        "scales": np.array([1.0 if s is None else s for s in src.scales], dtype="float64"),
        "offsets": np.array([0.0 if o is None else o for o in src.offsets], dtype="float64"),
        "nodata": src.nodatavals,
        "dtype": np.dtype(src.dtypes[0]),
        "block": src.block_shapes[0],
        "shape": (src.count, src.height, src.width),
    }


def _decode(raw: xr.DataArray, info: Mapping[str, Any]) -> xr.DataArray:
    """Nodata → NaN and ``value * scale + offset`` per band, lazily."""
    dtype: np.dtype[Any] = info["dtype"]
    scales, offsets = info["scales"], info["offsets"]
    nodata = [v for v in info["nodata"] if v is not None]
    scaled = bool(np.any(scales != 1.0) or np.any(offsets != 0.0))
    if not nodata and not scaled and dtype.kind in "iub":
        return raw
    if raw.chunks is None:
        raw = raw.load()  # numpy-backed: read once, not once per decoding step
    ftype = "float32" if dtype.itemsize <= 2 or dtype == np.float32 else "float64"
    out = raw.astype(ftype)
    if nodata:
        nd = xr.DataArray(
            np.array([np.nan if v is None else v for v in info["nodata"]], dtype="float64"), dims="band"
        )
        out = out.where(raw != nd)  # NaN nodata compares unequal: NaN stays NaN
    if scaled:
        s = xr.DataArray(scales.astype(ftype), dims="band")
        o = xr.DataArray(offsets.astype(ftype), dims="band")
        out = out * s + o
    return out.astype(ftype)


def _structure(data: xr.DataArray, descriptions: list[str], *, name: str, named_bands: bool) -> xr.Dataset:
    """Turn the ``band`` dim into ``time``, ``depth``, separate variables or keep it."""
    data = data.drop_vars("band")
    count = data.sizes["band"]
    if descriptions and all(_DATE_RE.match(d) for d in descriptions):
        times = pd.to_datetime(descriptions, format="ISO8601", utc=True).tz_localize(None).as_unit("ns")
        out = data.rename(band="time").assign_coords(time=np.asarray(times, dtype="datetime64[ns]"))
        return out.to_dataset(name=name)
    if descriptions and all(cf.is_layer_label(d) for d in descriptions):
        try:
            coords = cf.depth_coords_from_labels(descriptions)
        except DataError:
            coords = None
        if coords is not None:
            out = data.rename(band="depth").assign_coords(depth=coords["depth"])
            return out.to_dataset(name=name).assign_coords(
                layer=coords["layer"], depth_bnds=coords["depth_bnds"]
            )
    if count == 1:
        return data.isel(band=0, drop=True).to_dataset(name=name)
    if named_bands and all(d.isidentifier() for d in descriptions) and len(set(descriptions)) == count:
        return xr.Dataset(
            {d: data.isel(band=i, drop=True) for i, d in enumerate(descriptions)}
        )
    return data.assign_coords(band=np.arange(1, count + 1)).to_dataset(name=name)


def _normalise_crs(ds: xr.Dataset) -> xr.Dataset:
    wkt = ds["spatial_ref"].attrs.get("crs_wkt") if "spatial_ref" in ds.coords else None
    if wkt is None:
        return ds
    crs = CRS.from_user_input(wkt)
    if crs.equals(_WGS84) or not crs.equals(_WGS84, ignore_axis_order=True):
        return ds
    ds = ds.copy()
    ds["spatial_ref"].attrs.update({"crs_wkt": _WGS84.to_wkt(), "spatial_ref": _WGS84.to_wkt()})
    return ds


# ====================================================================== write
def write_geotiff(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    nodata: float | None = None,
    dtype: str | np.dtype[Any] | None = None,
    scale_factor: float | None = None,
    add_offset: float | None = None,
    compress: Literal["deflate", "lzw", "zstd", "none"] | None = "deflate",
) -> Path:
    """Write a 2-D ``(y, x)`` or 3-D ``(band-dim, y, x)`` DataArray as a GeoTIFF, atomically.

    Parameters
    ----------
    da : xarray.DataArray
        Data on a regular grid with a CRS (``spatial_ref`` coordinate). A third dim
        becomes bands: ``time`` → descriptions ``YYYY-MM-DD`` (ISO date-times when
        not at midnight), ``depth`` → layer labels (from ``layer``, ``depth_bnds`` or
        point depths), any other dim → its coordinate values. A 2-D array's band is
        described by its name. Dask arrays are computed and written a few chunks at
        a time (as windows of the file), numpy arrays in strips of at most 32 MiB, so
        memory does not grow with the raster.
    path : path-like
        Output file (replaced if it exists).
    nodata : float, optional
        Stored value of missing data. Default: ``NaN`` for float output; for integer
        output from floating data, the dtype's minimum (signed) or maximum
        (unsigned), e.g. −32768 for int16, 255 for uint8.
    dtype : str or numpy.dtype, optional
        Stored dtype. Default: ``int16`` when ``scale_factor`` or ``add_offset`` is
        given, else the data's dtype (bool → uint8, float16 → float32).
    scale_factor, add_offset : float, optional
        Packing: ``stored = round((value - add_offset) / scale_factor)``; readers
        compute ``stored * scale_factor + add_offset``. Stored in the band metadata.
    compress : {"deflate", "lzw", "zstd", "none"} or None
        GeoTIFF compression (with a horizontal predictor).

    Returns
    -------
    pathlib.Path
        The file path.

    Raises
    ------
    GridError
        If ``da`` lacks ``y``/``x`` dims, a CRS, or has more than three dims.
    DataError
        If packed values do not fit ``dtype`` or collide with ``nodata``.
    """
    import rasterio
    from rasterio.windows import Window

    p = Path(path)
    if da.ndim not in (2, 3) or not {"y", "x"} <= set(da.dims):
        msg = f"write_geotiff needs dims (y, x) or (band-dim, y, x); got {da.dims}. Select or stack dims first."
        raise GridError(msg)
    da = da.transpose(..., "y", "x")
    grid = _exact_grid(da)
    name = str(da.name) if da.name is not None else p.name.split(".")[0]
    descriptions = _band_descriptions(da, name)
    scale = 1.0 if scale_factor is None else float(scale_factor)
    offset = 0.0 if add_offset is None else float(add_offset)
    packing = scale_factor is not None or add_offset is not None
    out_dtype = np.dtype(dtype) if dtype is not None else _default_dtype(da.dtype, packing)
    if nodata is None and out_dtype.kind == "f":
        nodata = float("nan")
    elif nodata is None and out_dtype.kind in "iu" and (da.dtype.kind == "f" or packing):
        nodata = _NODATA_DEFAULT.get(out_dtype.name)
    count = 1 if da.ndim == 2 else da.shape[0]
    ny, nx = grid.shape
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": nx, "height": ny, "count": count, "dtype": out_dtype.name,
        "crs": rasterio.crs.CRS.from_wkt(grid.crs.to_wkt()), "transform": grid.transform,
        "nodata": nodata, "BIGTIFF": "IF_SAFER",
    }
    if compress and compress != "none":
        profile.update(compress=compress, predictor=3 if out_dtype.kind == "f" else 2)
    if ny >= 256 and nx >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    attrs = _defaults(name)
    attrs.update({k: v for k, v in cf.strip_encoding_attrs(da.attrs).items() if k != "grid_mapping"})
    attrs["variable"] = name
    stack = da if da.ndim == 3 else da.expand_dims("band")
    if count > 1:
        profile["interleave"] = "band"  # a window of some bands never rewrites the others
    source = _blocks_to_write(stack.data, ny, nx)
    as_float = packing or out_dtype.kind == "f"
    with atomic_path(p) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for key, values in _computed_blocks(source):
            bands, rows, cols = key
            packed = _pack(np.asarray(values, dtype="float64" if as_float else None), out_dtype, scale,
                           offset, nodata, name)
            dst.write(packed, indexes=list(range(bands.start + 1, bands.stop + 1)),
                      window=Window.from_slices(rows, cols))
        for i, desc in enumerate(descriptions, start=1):
            dst.set_band_description(i, desc)
            if "units" in attrs:
                dst.set_band_unit(i, str(attrs["units"]))
        if packing:
            dst.scales = (scale,) * count
            dst.offsets = (offset,) * count
        dst.update_tags(AREA_OR_POINT="Area", **{k: str(attrs[k]) for k in (*_CF_TAGS, "variable")
                                                  if k in attrs})
        dst.update_tags(ns=TAG_DOMAIN, **{k: json.dumps(_plain(v)) for k, v in attrs.items()})
    logger.info("wrote GeoTIFF %s (%d bands, %s)", p, count, out_dtype.name)
    return p


#: Largest block (bytes as float64) that numpy input is cut into for writing.
_WRITE_BLOCK_BYTES = 32 * 2**20
#: Blocks computed together before they are written in order.
_BLOCKS_AT_ONCE = 4


def _blocks_to_write(data: Any, ny: int, nx: int) -> dsa.Array:
    """``(band, y, x)`` data as a Dask array whose blocks are the windows to write.

    Dask input keeps its own chunks (each is computed once); numpy input is cut into
    strips of whole 256-row GeoTIFF blocks holding at most :data:`_WRITE_BLOCK_BYTES`.
    """
    if isinstance(data, dsa.Array):
        return data
    rows = min(ny, max(256, (_WRITE_BLOCK_BYTES // max(1, nx * 8)) // 256 * 256))
    bands = max(1, _WRITE_BLOCK_BYTES // max(1, rows * nx * 8))
    return dsa.from_array(np.asarray(data), chunks=(bands, rows, nx))


def _computed_blocks(source: dsa.Array) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
    """Each block of ``source`` with its index slices, in C order, :data:`_BLOCKS_AT_ONCE` computed together.

    Writing in a fixed order keeps the file's bytes reproducible (GDAL lays blocks out in
    the order they are flushed); computing a few blocks at once keeps the workers busy
    while memory holds only those blocks.
    """
    edges = [np.cumsum((0, *c)) for c in source.chunks]
    indices = list(np.ndindex(*source.numblocks))
    for start in range(0, len(indices), _BLOCKS_AT_ONCE):
        batch = indices[start:start + _BLOCKS_AT_ONCE]
        values = dask.compute(*(source.blocks[idx] for idx in batch))
        for idx, block in zip(batch, values, strict=True):
            yield tuple(slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, idx, strict=True)), block


def _exact_grid(da: xr.DataArray) -> Grid:
    """Grid of ``da``, with the exact ``GeoTransform`` of ``spatial_ref`` when it agrees.

    Coordinates only give the transform to rounding error (``mean(diff(x))``); the
    ``GeoTransform`` attribute written by :func:`soilfuse.grid.grid_mapping_attrs`
    (and GDAL) keeps the original numbers, so a grid read from a file and written
    again keeps a bit-identical transform.
    """
    grid = Grid.from_dataset(da)
    text = da["spatial_ref"].attrs.get("GeoTransform") if "spatial_ref" in da.coords else None
    if not text:
        return grid
    try:
        c, a, b, f, d, e = (float(v) for v in str(text).split())
        exact = Grid(grid.crs, Affine(a, b, c, d, e, f), grid.shape)
    except (ValueError, GridError):
        return grid
    return exact if exact == grid else grid


def _defaults(name: str) -> dict[str, Any]:
    try:
        return cf.variable_attrs(name)
    except MissingVariableError:
        return {}


def _band_descriptions(da: xr.DataArray, name: str) -> list[str]:
    if da.ndim == 2:
        return [name]
    dim: Hashable = da.dims[0]
    if dim == "time":
        times = pd.DatetimeIndex(np.asarray(da["time"].values, dtype="datetime64[ns]"))
        midnight = bool((times == times.normalize()).all())
        return [t.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S") for t in times]
    if dim == "depth":
        if "layer" in da.coords:
            return [str(v) for v in da["layer"].values]
        if "depth_bnds" in da.coords:
            return [cf.layer_label(t, b) for t, b in np.asarray(da["depth_bnds"].values)]
        return [cf.layer_label(d, d) for d in np.asarray(da["depth"].values, dtype="float64")]
    if dim in da.coords:
        return [str(v) for v in da[dim].values]
    return [""] * da.shape[0]


def _default_dtype(src: np.dtype[Any], packing: bool) -> np.dtype[Any]:
    if packing:
        return np.dtype("int16")
    if src.kind == "b":
        return np.dtype("uint8")
    if src.kind == "f" and src.itemsize < 4:
        return np.dtype("float32")
    if src.kind not in "iuf":
        msg = f"Cannot write data of dtype {src} to GeoTIFF; cast it to a number first."
        raise DataError(msg)
    return src


def _pack(values: np.ndarray, dtype: np.dtype[Any], scale: float, offset: float,
          nodata: float | None, name: str) -> np.ndarray:
    """Numpy kernel: scale/offset packing, NaN → nodata, range and collision checks."""
    if dtype.kind == "f":
        out = (values - offset) / scale if (scale != 1.0 or offset != 0.0) else values
        if nodata is not None and not np.isnan(nodata):
            out = np.where(np.isnan(out), nodata, out)
        return out.astype(dtype)
    missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    stored = np.rint((values - offset) / scale) if values.dtype.kind == "f" else values
    valid = stored[~missing]
    if missing.any() and nodata is None:
        msg = (f"{name!r} has missing values but integer output {dtype} has no nodata; "
               f"pass nodata= (e.g. {_NODATA_DEFAULT.get(dtype.name)}).")
        raise DataError(msg)
    if valid.size:
        info = np.iinfo(dtype)
        lo, hi = float(valid.min()), float(valid.max())
        if lo < info.min or hi > info.max:
            msg = (
                f"{name!r} packs to stored values {lo:g}…{hi:g}, outside {dtype} "
                f"({info.min}…{info.max}); use a larger scale_factor, an add_offset or a wider dtype."
            )
            raise DataError(msg)
        if nodata is not None and np.any(valid == nodata):
            msg = (
                f"Some valid values of {name!r} pack to the nodata value {nodata:g} and would read "
                f"back as missing; choose another nodata, scale_factor or add_offset."
            )
            raise DataError(msg)
    filled = np.where(missing, nodata if nodata is not None else 0, stored)
    return filled.astype(dtype)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def raster_grid(path: str | os.PathLike[str]) -> Grid:
    """The :class:`~soilfuse.grid.Grid` of a raster file, read from its header only."""
    import rasterio

    with rasterio.open(path) as src:
        crs = CRS.from_wkt(src.crs.to_wkt())
        if not crs.equals(_WGS84) and crs.equals(_WGS84, ignore_axis_order=True):
            crs = _WGS84
        return Grid(crs, src.transform, (src.height, src.width))

