"""Digital elevation models as the canonical static ``elevation`` map.

:func:`read_dem` opens any single-band elevation raster GDAL reads, through
:func:`soilfuse.io.geotiff.open_raster`:

* GeoTIFF (SRTM tiles, HydroSHEDS-style ``dem.tif``),
* ENVI raw rasters described by a ``.hdr`` beside them (e.g. ``himalaya.tif`` with
  ``himalaya.tif.hdr``; the ``.tif`` suffix does not make it a GeoTIFF),
* ESRI ASCII grids (``*_grd`` from GMTED2010) with a ``.prj`` sidecar.

Nodata becomes NaN, band scale/offset are applied, and a WGS 84 CRS written with
longitude-first axis order (``OGC:CRS84``, ESRI ``GCS_WGS_1984``) is reported as
EPSG:4326 with ``x`` = longitude and ``y`` = latitude. Elevation files rarely state
units; they are taken as metres unless the raster says otherwise (feet or other
units raise, centimetres and kilometres are converted).

Usage
-----
>>> from soilfuse.io.products.dem import read_dem
>>> dem = read_dem("dem/fort_worth_3arcsec/dem.tif")  # doctest: +SKIP
>>> dem["elevation"].dims, dem["elevation"].attrs["units"]  # doctest: +SKIP
(('y', 'x'), 'm')
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Literal, cast

import xarray as xr

from soilfuse.exceptions import DataError, UnsupportedFileError
from soilfuse.io.products._common import Chunks, finalize, to_canonical

__all__ = ["SIDECAR_SUFFIXES", "raster_chunks", "read_dem", "sidecar_raster"]

logger = logging.getLogger(__name__)

#: File suffixes of GDAL sidecars (see :func:`sidecar_raster`).
SIDECAR_SUFFIXES = (".aux.xml", ".hdr", ".prj", ".tfw", ".ovr")


def read_dem(
    path: str | os.PathLike[str],
    *,
    chunks: Chunks = None,
    units: str = "m",
) -> xr.Dataset:
    """Read an elevation raster as ``elevation (y, x)`` in metres.

    Parameters
    ----------
    path : str or path-like
        GeoTIFF, ENVI raw raster (with its ``.hdr``) or ESRI ASCII grid. A sidecar
        path (``.hdr``, ``.prj``, ``.aux.xml``) is resolved to its raster.
    chunks : mapping, int or "auto", optional
        Dask chunks of ``y``/``x``; ``None`` loads the values into memory.
    units : str
        Units of the stored values when the raster does not state any (metres).

    Returns
    -------
    xarray.Dataset
        ``elevation`` (float32, m), NaN where the raster has nodata, on the file's
        grid with its CRS on ``spatial_ref``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    UnsupportedFileError
        If GDAL cannot open the file.
    DataError
        If the raster has more than one band.
    UnitsError
        If the stated units cannot be converted to metres.
    """
    from soilfuse.io.geotiff import open_raster

    p = _raster_of(Path(path))
    opened = open_raster(p, chunks=raster_chunks(chunks), variable="elevation")
    da = opened["elevation"]
    if "band" in da.dims or "time" in da.dims or "depth" in da.dims:
        extra = [d for d in da.dims if d not in ("y", "x")]
        msg = (
            f"{p.name} has {da.sizes[extra[0]]} bands along {extra[0]!r}; a DEM must be a "
            f"single-band raster. Select the elevation band and write it to its own file."
        )
        raise DataError(msg)
    if "units" not in da.attrs or not str(da.attrs["units"]).strip():
        da.attrs["units"] = units
    elevation = to_canonical(da.astype("float32"), "elevation", p.name)
    ds = opened.assign(elevation=elevation)
    return finalize(
        ds, chunks=chunks, product="digital elevation model", files=[p],
        history=f"read_dem: {p.name} read with GDAL, nodata as NaN, units {da.attrs['units']!r}",
    )


def raster_chunks(chunks: Chunks) -> dict[Hashable, int] | Literal["auto"] | None:
    """Chunks of the product readers in the form :func:`~soilfuse.io.geotiff.open_raster` takes.

    A mapping is passed on, an integer applies to ``y`` and ``x``, any string means
    ``"auto"`` and ``None`` stays ``None``.
    """
    if chunks is None:
        return None
    if isinstance(chunks, Mapping):
        return {cast(Hashable, k): int(v) for k, v in chunks.items()}
    if isinstance(chunks, int):
        return {"y": chunks, "x": chunks}
    return "auto"


def sidecar_raster(path: str | os.PathLike[str]) -> Path | None:
    """The raster a GDAL sidecar file belongs to, or None when it is not beside it.

    Sidecars are ``<raster>.aux.xml``, ``<raster>.hdr`` (ENVI; also ``<stem>.hdr``),
    ``<raster>.prj``/``<stem>.prj``, ``<stem>.tfw`` and ``<raster>.ovr``.

    Parameters
    ----------
    path : str or path-like
        The sidecar file.

    Returns
    -------
    pathlib.Path or None

    Raises
    ------
    DataError
        If ``path`` is not a sidecar name.
    """
    p = Path(path)
    lower = p.name.lower()
    suffix = next((s for s in SIDECAR_SUFFIXES if lower.endswith(s)), None)
    if suffix is None:
        msg = f"{p.name} is not a raster sidecar (suffixes {SIDECAR_SUFFIXES})."
        raise DataError(msg)
    stem = p.with_name(p.name[: -len(suffix)])
    candidates = [stem, *sorted(p.parent.glob(glob.escape(stem.name) + ".*"))]
    for candidate in candidates:
        if candidate.is_file() and not candidate.name.lower().endswith(SIDECAR_SUFFIXES):
            return candidate
    return None


def _raster_of(p: Path) -> Path:
    """``p`` itself, or the raster it is a sidecar of."""
    if p.name.lower().endswith(SIDECAR_SUFFIXES):
        raster = sidecar_raster(p)
        if raster is None:
            msg = f"{p.name} is a sidecar file but its raster is not beside it."
            raise UnsupportedFileError(msg)
        logger.info("%s is a sidecar; reading its raster %s", p.name, raster.name)
        return raster
    if not p.exists():
        msg = f"No such DEM file: {str(p)!r}."
        raise FileNotFoundError(msg)
    return p
