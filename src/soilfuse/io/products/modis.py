"""MODIS land products: HDF4-EOS tiles and GeoTIFF exports in the canonical layout.

:func:`read_modis` reads

* **HDF4-EOS tiles** through ``pyhdf``: MOD11A1/MYD11A1 (daily 1 km LST), MOD11A2/B2
  (8-day LST), MOD13A1/A2/Q1 (16-day vegetation indices), MOD09GA (daily 500 m
  reflectance with 1 km state flags) and MOD09A1 (8-day 500 m reflectance). The grid
  comes from ``StructMetadata.0`` (``UpperLeftPointMtrs``, ``LowerRightMtrs``,
  ``XDim``, ``YDim``; the corners are cell edges) on the MODIS sinusoidal CRS
  :data:`MODIS_SINUSOIDAL`; the time from the ``AYYYYDDD`` token of the file name
  (the first day of a composite period).
* **GeoTIFF exports** (through :func:`soilfuse.io.geotiff.open_raster`): single-date
  files with ``YYYY_DOY`` (or ``AYYYYDDD`` / ``YYYY-MM-DD``) in the name, stacked
  along ``time`` (``MOD13A1_NDVI_2016_001.tif`` …), and multi-band time stacks whose
  band descriptions are ISO dates (``MOD11A1_LST_Day_1km_2020.tif``). The layer is
  recognised from the file name (:func:`layer_from_name`).

Product names map to canonical ones: ``lst_day``, ``lst_night`` (K), ``ndvi``,
``evi`` (1), ``refl_b1`` … ``refl_b7`` (1; MOD13's red/NIR/blue/MIR are bands
1/2/3/7), plus raw quality layers kept as integers: ``qc_day``, ``qc_night``
(MOD11), ``qc_vi`` and ``pixel_reliability`` (MOD13), ``qc_state`` and ``qc_refl``
(MOD09), and ``view_time_day``/``view_time_night`` (h, local solar time, MOD11).

Scaling applied per HDF4 SDS (read from its attributes)
    Values equal to ``_FillValue`` or outside ``valid_range`` (both in stored units)
    become NaN. MOD11 layers state their formula in an attribute
    (``"LST data * scale_factor"``, ``"Emis_31 data * scale_factor + add_offset"``)
    and are decoded as ``stored * scale_factor + add_offset``. Other SDSs follow the
    HDF4 calibration convention ``(stored - add_offset) * scale_factor``. MOD13 and
    MOD09GA reflectances, vegetation indices and angles store the *reciprocal*
    factor (``scale_factor = 10000`` for ×0.0001, ``100`` for degrees ×0.01): a
    ``scale_factor`` greater than 1 on an SDS whose ``units`` are ``reflectance``,
    ``NDVI``, ``EVI`` or degrees is therefore divided by, not multiplied
    (``(stored - add_offset) / scale_factor``). All offsets of the mapped layers
    are 0, so the two conventions only differ in where an offset would go.

Scaling of GeoTIFF exports
    Band scale/offset in the GDAL metadata are applied by ``open_raster``. Without
    them, ``scale_factor``/``add_offset`` tags are applied as ``stored * scale +
    offset``. Without either, integer data of a recognised layer are unpacked with
    the MODIS packing of :data:`MODIS_PACKING` (e.g. LST uint16 × 0.02 K, nodata 0;
    NDVI int16 × 0.0001, nodata −3000), its fill and valid range masked.

Quality screening
    :func:`qc_good` turns a QC layer into a boolean "good" mask with the bit
    semantics of :data:`QC_RULES`. ``read_modis(qc="good")`` (the default) masks
    data values whose QC is not good and returns the raw QC layers too;
    ``qc="any"`` returns everything unmasked with the QC layers; ``qc=None`` skips
    the QC layers.

Usage
-----
>>> from soilfuse.io.products.modis import qc_good, read_modis
>>> import numpy as np
>>> qc_good(np.array([0, 1, 2, 3, 65], dtype="uint8"), "MOD11").tolist()
[True, False, False, False, False]
>>> ds = read_modis("MOD11A1.A2021227.h11v05.061.2021228105320.hdf")  # doctest: +SKIP
>>> ds["lst_day"].dims, ds["lst_day"].attrs["units"]  # doctest: +SKIP
(('time', 'y', 'x'), 'K')
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from dask.base import tokenize

from soilfuse.exceptions import DataError, GridError, MissingVariableError, UnsupportedFileError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.products._common import Chunks, PathsLike, as_paths, finalize
from soilfuse.io.products.dem import raster_chunks
from soilfuse.variables import VARIABLES, normalise_units

__all__ = [
    "MODIS_PACKING",
    "MODIS_SINUSOIDAL",
    "QC_RULES",
    "decode_sds",
    "layer_from_name",
    "modis_date",
    "parse_struct_metadata",
    "qc_good",
    "read_modis",
]

logger = logging.getLogger(__name__)

#: PROJ string of the MODIS sinusoidal grid (sphere of radius 6,371,007.181 m).
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +nadgrids=@null +wktext +no_defs"

#: Bit semantics of :func:`qc_good` per product family (bits counted from the LSB).
QC_RULES: Mapping[str, str] = {
    "MOD11": "QC bits 0-1 (mandatory QA) == 00: LST produced, good quality",
    "MOD13": "VI Quality bits 0-1 (MODLAND QA) == 00: VI produced, good quality",
    "MOD09": (
        "state flags bits 0-1 (cloud state) == 00 clear or 11 'not set, assumed clear'; "
        "the all-ones word 0xFFFF is the fill value and not good"
    ),
}

#: MODIS integer packing of GeoTIFF exports, used when a file states no scale:
#: layer -> (stored dtype, scale, offset, fill, valid_min, valid_max) in stored units.
MODIS_PACKING: Mapping[str, tuple[str, float, float, float, float, float]] = {
    "lst_day": ("uint16", 0.02, 0.0, 0, 7500, 65535),
    "lst_night": ("uint16", 0.02, 0.0, 0, 7500, 65535),
    "ndvi": ("int16", 1e-4, 0.0, -3000, -2000, 10000),
    "evi": ("int16", 1e-4, 0.0, -3000, -2000, 10000),
    **{f"refl_b{b}": ("int16", 1e-4, 0.0, -28672, -100, 16000) for b in range(1, 8)},
    "lai": ("uint8", 0.1, 0.0, 255, 0, 100),
    "albedo": ("int16", 1e-3, 0.0, 32767, 0, 1000),
    "view_time_day": ("uint8", 0.1, 0.0, 255, 0, 240),
    "view_time_night": ("uint8", 0.1, 0.0, 255, 0, 240),
}

# Layers kept as raw integers (bit fields and ranks), and the product whose QC rule
# applies to each QC layer.
_QC_LAYERS: Mapping[str, str | None] = {
    "qc_day": "MOD11", "qc_night": "MOD11", "qc_vi": "MOD13", "qc_state": "MOD09",
    "qc_refl": None, "pixel_reliability": None,
}
# Which QC layer screens which data layer under qc="good".
_SCREENED_BY: Mapping[str, str] = {
    "lst_day": "qc_day", "view_time_day": "qc_day",
    "lst_night": "qc_night", "view_time_night": "qc_night",
    "ndvi": "qc_vi", "evi": "qc_vi",
}
_REFL_QC = ("qc_vi", "qc_state")  # MOD13 reflectances by VI quality, MOD09 by state flags

# HDF4 SDS names -> canonical names (matched case-insensitively on the whole name).
_SDS_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"LST_Day_(1km|6km|5km)", "lst_day"),
    (r"LST_Night_(1km|6km|5km)", "lst_night"),
    (r"QC_Day", "qc_day"),
    (r"QC_Night", "qc_night"),
    (r"Day_view_time", "view_time_day"),
    (r"Night_view_time", "view_time_night"),
    (r".*16 days NDVI", "ndvi"),
    (r".*16 days EVI", "evi"),
    (r".*16 days VI Quality", "qc_vi"),
    (r".*16 days red reflectance", "refl_b1"),
    (r".*16 days NIR reflectance", "refl_b2"),
    (r".*16 days blue reflectance", "refl_b3"),
    (r".*16 days MIR reflectance", "refl_b7"),
    (r".*16 days pixel reliability", "pixel_reliability"),
    (r"sur_refl_b0?([1-7])(_1)?", "refl_b{0}"),
    (r"sur_refl_state_500m|state_1km(_1)?", "qc_state"),
    (r"sur_refl_qc_500m|QC_500m(_1)?", "qc_refl"),
)

# File-name tokens of GeoTIFF exports -> canonical layer (first match wins).
_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"QC_Day", "qc_day"),
    (r"QC_Night", "qc_night"),
    (r"VI_Quality|qc_vi", "qc_vi"),
    (r"state", "qc_state"),
    (r"pixel_reliability|reliability", "pixel_reliability"),
    (r"view_time_day|day_view_time", "view_time_day"),
    (r"view_time_night|night_view_time", "view_time_night"),
    (r"LST_Day|lst_day", "lst_day"),
    (r"LST_Night|lst_night", "lst_night"),
    (r"NDVI", "ndvi"),
    (r"EVI", "evi"),
    (r"(?:sur_)?refl_b0?([1-7])", "refl_b{0}"),
    (r"Lai", "lai"),
    (r"albedo", "albedo"),
)

_RECIPROCAL_UNITS = ("reflectance", "ndvi", "evi", "degree", "degrees")
_PHYSICAL_UNITS = {"view_time_day": "h", "view_time_night": "h"}
_A_TOKEN = re.compile(r"(?<![A-Za-z0-9])A(\d{4})(\d{3})(?!\d)")
_DOY_TOKEN = re.compile(r"(?<!\d)(\d{4})_(\d{3})(?!\d)")
_ISO_TOKEN = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_HDF4_LOCK = threading.Lock()  # the HDF4 library is not thread-safe


# ====================================================================== QC
def qc_good(qc: Any, product: str) -> Any:
    """Boolean mask of good-quality pixels from a MODIS QC layer.

    Parameters
    ----------
    qc : numpy.ndarray or xarray.DataArray
        Integer QC values (float arrays are accepted; NaN is not good). Dask-backed
        DataArrays stay lazy.
    product : {"MOD11", "MOD13", "MOD09"}
        Product family; ``MYD…`` and full names such as ``"MOD11A1"`` are accepted.
        Bit semantics in :data:`QC_RULES`.

    Returns
    -------
    Same type as ``qc``, boolean.

    Raises
    ------
    DataError
        If ``product`` has no QC rule.

    Examples
    --------
    >>> state = np.array([0b00, 0b01, 0b10, 0b11, 0b1000_0000_0000_0000, 0xFFFF], dtype="uint16")
    >>> qc_good(state, "MOD09").tolist()
    [True, False, False, True, True, False]
    """
    family = _family(product)
    if isinstance(qc, xr.DataArray):
        out = xr.apply_ufunc(
            _qc_good_kernel, qc, kwargs={"family": family}, dask="parallelized",
            output_dtypes=[bool],
        )
        out.attrs = {"long_name": f"good quality according to {family} QC", "comment": QC_RULES[family]}
        return out
    return _qc_good_kernel(np.asarray(qc), family=family)


def _family(product: str) -> str:
    key = str(product).upper().replace("MYD", "MOD").replace("MCD", "MOD")[:5]
    if key not in QC_RULES:
        msg = f"No QC rule for product {product!r}; known families: {sorted(QC_RULES)}."
        raise DataError(msg)
    return key


def _qc_good_kernel(qc: np.ndarray, *, family: str) -> np.ndarray:
    """Numpy kernel of :func:`qc_good`."""
    if qc.dtype.kind == "f":
        valid = np.isfinite(qc)
        bits = np.where(valid, qc, 0).astype("int64")
    else:
        valid = np.ones(qc.shape, dtype=bool)
        bits = qc.astype("int64")
    low = bits & 0b11
    if family == "MOD09":
        good = ((low == 0b00) | (low == 0b11)) & (bits != 0xFFFF)
    else:  # MOD11 mandatory QA and MOD13 MODLAND QA: 00 is good
        good = low == 0b00
    return good & valid


# ====================================================================== grids, names
def parse_struct_metadata(text: str) -> dict[str, Grid]:
    """Grids of an HDF-EOS ``StructMetadata.0`` text, by grid name.

    Parameters
    ----------
    text : str
        The ``StructMetadata.0`` global attribute.

    Returns
    -------
    dict of str to Grid
        Each ``GridStructure`` group as a :class:`~soilfuse.grid.Grid` on
        :data:`MODIS_SINUSOIDAL`, with the upper-left and lower-right points taken
        as the outer cell edges.

    Raises
    ------
    UnsupportedFileError
        If a grid is not on the sinusoidal projection (``GCTP_SNSOID``) or lacks
        its corner points.
    """
    grids: dict[str, Grid] = {}
    for block in re.findall(r"GROUP=GRID_\d+(.*?)END_GROUP=GRID_\d+", text, flags=re.S):
        name = _field(block, r'GridName="([^"]+)"')
        proj = _field(block, r"Projection=(\w+)")
        if proj != "GCTP_SNSOID":
            msg = (
                f"MODIS grid {name!r} uses projection {proj!r}; only sinusoidal tiles "
                f"(GCTP_SNSOID) are supported. Re-project climate-modelling-grid products first."
            )
            raise UnsupportedFileError(msg)
        nx = int(_field(block, r"XDim=(\d+)"))
        ny = int(_field(block, r"YDim=(\d+)"))
        ulx, uly = (float(v) for v in _field(block, r"UpperLeftPointMtrs=\(([^)]*)\)").split(","))
        lrx, lry = (float(v) for v in _field(block, r"LowerRightMtrs=\(([^)]*)\)").split(","))
        dx, dy = (lrx - ulx) / nx, (uly - lry) / ny
        grids[name] = Grid(MODIS_SINUSOIDAL, Affine(dx, 0.0, ulx, 0.0, -dy, uly), (ny, nx))
    return grids


def _field(block: str, pattern: str) -> str:
    match = re.search(pattern, block)
    if match is None:
        msg = f"HDF-EOS StructMetadata lacks {pattern!r} in a grid definition; the file is damaged."
        raise UnsupportedFileError(msg)
    return match.group(1)


def modis_date(path: str | Path) -> pd.Timestamp:
    """Date in a MODIS file name: ``AYYYYDDD``, ``YYYY_DDD`` or ``YYYY-MM-DD``.

    Raises
    ------
    DataError
        If the name holds none of them.

    Examples
    --------
    >>> str(modis_date("MOD11A1.A2021227.h11v05.061.2021228105320.hdf").date())
    '2021-08-15'
    >>> str(modis_date("MOD13A1_NDVI_2016_033.tif").date())
    '2016-02-02'
    """
    name = Path(path).name
    for regex in (_A_TOKEN, _DOY_TOKEN):
        if (m := regex.search(name)) is not None:
            year, doy = int(m.group(1)), int(m.group(2))
            if not 1 <= doy <= 366:
                msg = f"Day of year {doy} in {name!r} is not in 1..366."
                raise DataError(msg)
            return pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=doy - 1)
    if (m := _ISO_TOKEN.search(name)) is not None:
        return pd.Timestamp(m.group(1))
    msg = f"No date in the MODIS file name {name!r}; expected 'AYYYYDDD', 'YYYY_DDD' or 'YYYY-MM-DD'."
    raise DataError(msg)


def layer_from_name(name: str) -> str | None:
    """Canonical layer of a MODIS export recognised from a file or SDS name, or None.

    Examples
    --------
    >>> layer_from_name("MOD11A1_LST_Day_1km_2020.tif"), layer_from_name("MOD09A1_sur_refl_b02_2019.tif")
    ('lst_day', 'refl_b2')
    >>> layer_from_name("MOD11A1_QC_Night_2020.tif"), layer_from_name("dem.tif")
    ('qc_night', None)
    """
    for pattern, layer in _NAME_PATTERNS:
        if (m := re.search(pattern, name, flags=re.IGNORECASE)) is not None:
            return layer.format(*m.groups())
    return None


def _sds_layer(sds_name: str) -> str | None:
    for pattern, layer in _SDS_PATTERNS:
        if (m := re.fullmatch(pattern, sds_name, flags=re.IGNORECASE)) is not None:
            return layer.format(*m.groups())
    return None


# ====================================================================== decoding
def decode_sds(
    raw: np.ndarray,
    *,
    fill: float | None,
    valid_range: tuple[float, float] | None,
    scale: float,
    offset: float,
    convention: Literal["cf", "hdf4"],
) -> np.ndarray:
    """Numpy kernel: stored MODIS integers to physical float32 values.

    Parameters
    ----------
    raw : numpy.ndarray
        Stored values.
    fill : float, optional
        Stored fill value, becomes NaN.
    valid_range : tuple of float, optional
        Stored ``(min, max)``; values outside become NaN.
    scale, offset : float
        Calibration; ``scale`` is the multiplier actually applied (reciprocals are
        resolved by the caller).
    convention : {"cf", "hdf4"}
        ``"cf"``: ``raw * scale + offset``; ``"hdf4"``: ``(raw - offset) * scale``.

    Returns
    -------
    numpy.ndarray of float32

    Examples
    --------
    >>> decode_sds(np.array([0, 15000, 7000], dtype="uint16"), fill=0, valid_range=(7500, 65535),
    ...            scale=0.02, offset=0.0, convention="cf").tolist()
    [nan, 300.0, nan]
    """
    values = raw.astype("float64")
    bad = np.zeros(raw.shape, dtype=bool)
    if fill is not None:
        bad |= values == fill
    if valid_range is not None:
        bad |= (values < valid_range[0]) | (values > valid_range[1])
    phys = values * scale + offset if convention == "cf" else (values - offset) * scale
    return np.where(bad, np.nan, phys).astype("float32")


@dataclass(frozen=True)
class _Calibration:
    fill: float | None
    valid_range: tuple[float, float] | None
    scale: float
    offset: float
    convention: Literal["cf", "hdf4"]

    def describe(self) -> str:
        form = "stored * scale + offset" if self.convention == "cf" else "(stored - offset) * scale"
        return f"{form} with scale={self.scale:g}, offset={self.offset:g}"


def _calibration(attrs: Mapping[str, Any]) -> _Calibration:
    scale = float(attrs.get("scale_factor", 1.0))
    offset = float(attrs.get("add_offset", 0.0))
    units = str(attrs.get("units", "")).strip()
    formula = any(
        isinstance(v, str) and "scale_factor" in v and "data" in v for v in attrs.values()
    )
    if scale > 1 and units.lower() in _RECIPROCAL_UNITS:
        scale = 1.0 / scale
    fill = attrs.get("_FillValue")
    vr = attrs.get("valid_range")
    return _Calibration(
        fill=float(fill) if isinstance(fill, (int, float, np.number)) else None,
        valid_range=(float(vr[0]), float(vr[1])) if isinstance(vr, (list, tuple)) and len(vr) == 2 else None,
        scale=scale, offset=offset, convention="cf" if formula else "hdf4",
    )


# ====================================================================== HDF4 access
class _SDSArray:
    """Array-like view of one HDF4 SDS for :func:`dask.array.from_array`.

    Every read opens the file, reads the requested slice and closes it again under
    the module's HDF4 lock (so Dask is given ``lock=False``); instances hold only
    the path and SDS name, so they pickle to distributed workers.
    """

    def __init__(self, path: Path, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.path = path
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        from pyhdf.SD import SD, SDC

        with _HDF4_LOCK:
            sd = SD(str(self.path), SDC.READ)
            try:
                return np.asarray(sd.select(self.name)[key])
            finally:
                sd.end()


def _hdf_catalog(path: Path) -> tuple[dict[str, Grid], list[tuple[str, str, str, dict[str, Any], np.dtype[Any]]]]:
    """Grids and mapped SDSs ``(sds name, layer, grid name, attrs, dtype)`` of a tile."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    with _HDF4_LOCK:
        try:
            sd = SD(str(path), SDC.READ)
        except HDF4Error as err:
            msg = f"Cannot open {path} as HDF4 ({err}); is it a MODIS .hdf file?"
            raise UnsupportedFileError(msg) from err
        try:
            attrs = sd.attributes()
            if "StructMetadata.0" not in attrs:
                msg = f"{path.name} is HDF4 but not HDF-EOS (no StructMetadata.0); it is not a MODIS tile."
                raise UnsupportedFileError(msg)
            grids = parse_struct_metadata(attrs["StructMetadata.0"])
            entries = []
            for name, (dims, _shape, _type, _idx) in sd.datasets().items():
                layer = _sds_layer(name)
                if layer is None or len(dims) != 2 or ":" not in dims[0]:
                    continue
                sds = sd.select(name)
                entries.append((name, layer, dims[0].split(":", 1)[1], sds.attributes(),
                                np.asarray(sds[0:1, 0:1]).dtype))
        finally:
            sd.end()
    return grids, entries


def _read_hdf(path: Path, layers: Sequence[str] | None, qc: str | None,
              chunks: Chunks) -> xr.Dataset:
    grids, entries = _hdf_catalog(path)
    wanted = _wanted([e[1] for e in entries], layers, qc, path)
    entries = [e for e in entries if e[1] in wanted]
    target = min((grids[e[2]] for e in entries), key=lambda g: g.resolution[0])
    variables: dict[str, xr.DataArray] = {}
    for sds_name, layer, grid_name, attrs, dtype in entries:
        grid = grids[grid_name]
        raw = _sds_data(path, sds_name, grid.shape, dtype, chunks)
        if grid != target:
            raw = _repeat_to(raw, grid, target, layer)
        da = xr.DataArray(raw, dims=("y", "x"))
        variables[layer] = _decoded(da, layer, attrs, sds_name)
    ds = xr.Dataset(variables)
    ds = ds.expand_dims(time=np.array([modis_date(path)], dtype="datetime64[ns]"))
    return with_grid(ds, target)


def _sds_data(path: Path, name: str, shape: tuple[int, int], dtype: np.dtype[Any],
              chunks: Chunks) -> Any:
    array = _SDSArray(path, name, shape, dtype)
    if chunks is None:
        return array[:, :]
    spec: Any
    if isinstance(chunks, Mapping):
        spec = (int(chunks.get("y", -1) or -1), int(chunks.get("x", -1) or -1))
    else:
        spec = chunks
    token = tokenize(str(path.resolve()), path.stat().st_mtime, name, spec)
    return dsa.from_array(array, chunks=spec, lock=False, name=f"modis-{name}-{token}",
                          asarray=True, meta=np.empty((0, 0), dtype=dtype))


def _repeat_to(raw: Any, grid: Grid, target: Grid, layer: str) -> Any:
    """Nearest-neighbour copy of a coarser tile layer onto the finer grid of the others.

    Used for MOD09GA, whose 1 km state flags screen the 500 m reflectances: each
    1 km cell covers exactly 2 x 2 cells of 500 m.
    """
    try:
        fy, fx = target.nesting_factor(grid)
    except GridError as err:
        msg = f"MODIS layer {layer!r} is on a grid that does not nest with the other layers ({err})."
        raise GridError(msg) from err
    return raw.repeat(fy, axis=0).repeat(fx, axis=1)


def _decoded(da: xr.DataArray, layer: str, attrs: Mapping[str, Any], sds_name: str) -> xr.DataArray:
    if layer in _QC_LAYERS:
        out = da.copy()
        out.attrs = {"long_name": str(attrs.get("long_name", sds_name)), "source_name": sds_name}
        if _QC_LAYERS[layer] is not None:
            out.attrs["qc_rule"] = QC_RULES[str(_QC_LAYERS[layer])]
        return out
    cal = _calibration(attrs)
    out = xr.apply_ufunc(
        decode_sds, da,
        kwargs={"fill": cal.fill, "valid_range": cal.valid_range, "scale": cal.scale,
                "offset": cal.offset, "convention": cal.convention},
        dask="parallelized", output_dtypes=[np.float32],
    )
    return _annotate(out, layer, {"source_name": sds_name, "scaling": cal.describe()})


def _annotate(da: xr.DataArray, layer: str, extra: Mapping[str, Any]) -> xr.DataArray:
    if layer in VARIABLES:
        da.attrs["units"] = VARIABLES[layer].units
        da = normalise_units(da, layer)
    else:
        da.attrs.update({"units": _PHYSICAL_UNITS.get(layer, "1"),
                         "long_name": layer.replace("_", " ")})
    da.attrs.update(extra)
    return da


def _wanted(available: Sequence[str], layers: Sequence[str] | None, qc: str | None,
            source: Path) -> set[str]:
    if layers is None:
        wanted = {a for a in available if a not in _QC_LAYERS}
    else:
        missing = sorted(set(layers) - set(available))
        if missing:
            msg = (
                f"{source.name} has no layer(s) {missing}; it offers {sorted(set(available))}."
            )
            raise MissingVariableError(msg)
        wanted = set(layers)
    if qc is not None:
        wanted |= {a for a in available if a in _QC_LAYERS}
    if not wanted:
        msg = f"{source.name} holds no MODIS layer soilfuse maps to a canonical name."
        raise MissingVariableError(msg)
    return wanted


# ====================================================================== GeoTIFF
def _read_tif_layer(paths: list[Path], layer: str, chunks: Chunks) -> xr.DataArray:
    from soilfuse.io.geotiff import open_raster

    as_dims = raster_chunks(chunks)
    pieces = []
    for p in paths:
        ds = open_raster(p, chunks=as_dims, variable=layer)
        da = ds[layer]
        if "time" not in da.dims:
            da = da.expand_dims(time=np.array([modis_date(p)], dtype="datetime64[ns]"))
        pieces.append(_unpack_tif(da, p, layer))
    grid = _common_grid(pieces, [p.name for p in paths])
    out = xr.concat(pieces, dim="time", join="override", coords="minimal", compat="override",
                    combine_attrs="override") if len(pieces) > 1 else pieces[0]
    out = with_grid(out, grid).sortby("time")
    if out.indexes["time"].has_duplicates:
        msg = f"MODIS {layer!r} files {[p.name for p in paths]} repeat dates; pass each date once."
        raise DataError(msg)
    return out


def _common_grid(parts: Sequence[xr.Dataset | xr.DataArray], names: Sequence[str]) -> Grid:
    """The grid all parts share (to 1e-6 of a cell); coordinates may differ by rounding."""
    grids = [Grid.from_dataset(part) for part in parts]
    if any(g != grids[0] for g in grids[1:]):
        listing = "; ".join(f"{n}: {g!r}" for n, g in zip(names, grids, strict=True))
        msg = (
            f"MODIS inputs are on different grids ({listing}); read each tile or subset "
            f"separately and mosaic or regrid them."
        )
        raise GridError(msg)
    return grids[0]


def _unpack_tif(da: xr.DataArray, path: Path, layer: str) -> xr.DataArray:
    import rasterio

    with rasterio.open(path) as src:
        band_scaled = any(s not in (None, 1.0) for s in src.scales) or any(
            o not in (None, 0.0) for o in src.offsets)
        tags = src.tags()
        stored = np.dtype(src.dtypes[0])
    if layer in _QC_LAYERS:
        da.attrs = {"long_name": layer.replace("_", " ")}
        return da
    packing = MODIS_PACKING.get(layer)
    if band_scaled:
        how = "band scale/offset from the GDAL metadata"
    elif "scale_factor" in tags or "add_offset" in tags:
        scale = float(tags.get("scale_factor", 1.0))
        offset = float(tags.get("add_offset", 0.0))
        fill = float(tags["_FillValue"]) if "_FillValue" in tags else (packing[3] if packing else None)
        da = xr.apply_ufunc(decode_sds, da, kwargs={"fill": fill, "valid_range": None, "scale": scale,
                            "offset": offset, "convention": "cf"}, dask="parallelized",
                            output_dtypes=[np.float32])
        how = f"stored * {scale:g} + {offset:g} from the file's scale_factor/add_offset tags"
    elif packing is not None and stored.kind in "iu":
        _, scale, offset, fill, vmin, vmax = packing
        da = xr.apply_ufunc(decode_sds, da, kwargs={"fill": fill, "valid_range": (vmin, vmax),
                            "scale": scale, "offset": offset, "convention": "cf"},
                            dask="parallelized", output_dtypes=[np.float32])
        how = f"MODIS packing of {layer}: stored * {scale:g}, fill {fill:g}, valid {vmin:g}..{vmax:g}"
    else:
        how = "none (values taken as physical)"
    return _annotate(da, layer, {"scaling": how})


def _read_tifs(paths: list[Path], layers: Sequence[str] | None, qc: str | None,
               chunks: Chunks) -> xr.Dataset:
    by_layer: dict[str, list[Path]] = {}
    for p in paths:
        layer = layer_from_name(p.stem)
        if layer is None:
            msg = (
                f"Cannot tell which MODIS layer {p.name!r} holds; put a layer token in its name "
                f"(e.g. LST_Day, LST_Night, NDVI, EVI, sur_refl_b01, QC_Day, state)."
            )
            raise DataError(msg)
        by_layer.setdefault(layer, []).append(p)
    wanted = _wanted(list(by_layer), layers, qc, paths[0])
    data = {layer: _read_tif_layer(by_layer[layer], layer, chunks) for layer in sorted(wanted)}
    grid = _common_grid(list(data.values()), list(data))
    aligned = [with_grid(v.drop_vars(["x", "y"]), grid).to_dataset(name=k) for k, v in data.items()]
    # layers of different composite periods (daily LST, 16-day NDVI) share the union of dates
    return xr.merge(aligned, join="outer", compat="no_conflicts", combine_attrs="override")


# ====================================================================== reader
def read_modis(
    path_or_paths: PathsLike,
    *,
    layers: Sequence[str] | None = None,
    qc: Literal["good", "any"] | None = "good",
    chunks: Chunks = None,
) -> xr.Dataset:
    """MODIS HDF4-EOS tiles or GeoTIFF exports as one canonical dataset.

    Parameters
    ----------
    path_or_paths : str, path or sequence of them
        ``.hdf`` tiles of one product and tile (several dates are stacked along
        ``time``), or ``.tif`` exports (single-date files and/or multi-band ISO-date
        stacks, one or more layers). A folder means every ``.hdf`` and ``.tif`` in
        it; glob patterns are expanded.
    layers : sequence of str, optional
        Canonical layers to return (e.g. ``["lst_day"]``); by default every mapped
        data layer. QC layers are added unless ``qc=None``.
    qc : {"good", "any"} or None
        ``"good"`` masks data whose QC is not good (see :data:`QC_RULES`; MOD09
        reflectances are screened by the state flags, MOD13 ones by VI Quality);
        ``"any"`` keeps all values; both return the raw QC layers. ``None`` neither
        screens nor returns QC layers.
    chunks : mapping, int or "auto", optional
        Dask chunks by canonical dim (``{"y": 600, "x": 600, "time": 8}``); the data
        are then read lazily, one block per task. ``None`` reads into memory.

    Returns
    -------
    xarray.Dataset
        Variables ``(time, y, x)`` on the tile's (or export's) grid, CRS on
        ``spatial_ref``: data in canonical units (float32, NaN where missing), QC
        layers as stored integers. ``time`` is the first day of the file's
        composite period at 00:00 UTC.

    Raises
    ------
    UnsupportedFileError
        If a file is neither an HDF4-EOS MODIS tile nor a GDAL raster.
    MissingVariableError
        If a requested layer is missing.
    DataError
        If a file name holds no date or layer token.
    GridError
        If files or layers do not share one grid.
    """
    if qc not in ("good", "any", None):
        msg = f"qc must be 'good', 'any' or None; got {qc!r}."
        raise DataError(msg)
    paths = as_paths(path_or_paths, suffixes=(".hdf", ".tif", ".tiff"))
    hdf = [p for p in paths if p.suffix.lower() == ".hdf"]
    tifs = [p for p in paths if p.suffix.lower() != ".hdf"]
    if hdf and tifs:
        msg = "Pass either MODIS .hdf tiles or GeoTIFF exports to one read_modis call, not both."
        raise DataError(msg)
    if hdf:
        parts = [_read_hdf(p, layers, qc, chunks) for p in hdf]
        grid = _common_grid(parts, [p.name for p in hdf])
        ds = xr.concat(parts, dim="time", data_vars="all", join="override", coords="minimal",
                       compat="override", combine_attrs="drop_conflicts")
        ds = with_grid(ds, grid).sortby("time")
    else:
        ds = _read_tifs(tifs, layers, qc, chunks)
    if qc == "good":
        ds = _screen(ds)
    kind = "HDF4-EOS tiles" if hdf else "GeoTIFF exports"
    product = sorted({p.name.split(".")[0].split("_")[0] for p in paths})
    ds = finalize(
        ds, chunks=chunks, product=f"MODIS {', '.join(product)} ({kind})", files=paths,
        history=f"read_modis: decoded {sorted(map(str, ds.data_vars))}, QC screening {qc!r}",
        extra_attrs={"qc_screening": qc if qc is not None else "none"},
    )
    ds["time"].attrs["comment"] = "first day of the MODIS composite period"
    return ds


def _screen(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    unscreened = []
    for name in ds.data_vars:
        key = str(name)
        if key in _QC_LAYERS:
            continue
        qc_name = _SCREENED_BY.get(key)
        if qc_name is None and key.startswith("refl_b"):
            qc_name = next((q for q in _REFL_QC if q in ds), None)
        if qc_name is None or qc_name not in ds:
            unscreened.append(key)
            continue
        good = qc_good(ds[qc_name], str(_QC_LAYERS[qc_name]))
        out[key] = ds[key].where(good)
        out[key].attrs = dict(ds[key].attrs, qc_screened_by=qc_name)
    if unscreened:
        logger.warning("MODIS layers %s have no QC layer among the inputs; returned unscreened.", unscreened)
    return out
