"""GLDAS Noah reader: GLDAS-2.x NetCDF and GLDAS-1 GRIB1 to canonical soil grids.

Soil moisture and soil temperature of the four Noah layers (0-10, 10-40, 40-100 and
100-200 cm) become ``sm`` (m3 m-3) and ``st`` (K) with a ``depth`` dim.

* **GLDAS-2.x NetCDF** (``GLDAS_NOAH025_3H.A20160101.0300.021.nc4``): variables
  ``SoilMoi{top}_{bottom}cm_inst`` (kg m-2, water in the layer) and
  ``SoilTMP{top}_{bottom}cm_inst`` (K); the layer is read from the name. Water
  content becomes volumetric by dividing by the water density and the layer
  thickness: ``theta = W / (1000 kg m-3 * thickness m)`` — for 0-10 cm, kg m-2 / 100.
* **GLDAS-1 GRIB1** (``GLDAS_NOAH025SUBP_3H.A2015001.0000.001.*.grb``): every
  message is read with eccodes (cfgrib merges the four layers into one because they
  share the same level keys). Parameter 85 is soil temperature (K), 86 soil moisture
  content (kg m-2). In these subset files all four layers are coded with
  ``topLevel = 0`` and ``bottomLevel`` 1-4, and code 4 is the *top* layer: the
  granule metadata (``TSoil1_0-10_cm`` has "height" 4, ``TSoil4_100-200_cm``
  "height" 1, with matching minima and maxima) and the winter profile (coldest at
  the surface) both show it. Layers coded in centimetres (``topLevel``,
  ``bottomLevel`` = 0, 10 …) are used as they are.

3-hourly to daily: the UTC daily mean of the instantaneous steps ``[d 00:00, d+1
00:00)``; a cell needs at least ``ceil(min_coverage * 8)`` valid steps (6 of 8 with
the default 0.75), otherwise NaN, and days with fewer time stamps are not returned.
The step length is the product's own (``time_increment`` attribute, or ``_3H`` in
the file name), not guessed from which files happen to be present.

Usage
-----
>>> from soilfuse.io.products import read_gldas
>>> ds = read_gldas("noah_v1_grib_2015-01-01", daily=False)  # doctest: +SKIP
>>> ds["st"].sizes["depth"]  # doctest: +SKIP
4
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import Region
from soilfuse.exceptions import (
    DataError,
    GridError,
    MissingVariableError,
    UnitsError,
    UnsupportedFileError,
)
from soilfuse.io.products._common import (
    Chunks,
    PathsLike,
    as_paths,
    assign_depth_bounds,
    check_coverage,
    check_declared_keys,
    check_units,
    chunk,
    daily_mean,
    drop_non_dim_coords,
    finalize,
    infer_step,
    open_netcdf,
    stack_layers,
    to_canonical,
    to_canonical_grid,
    unit_key,
)

__all__ = ["GLDAS_LAYERS", "read_gldas", "water_content_to_volumetric"]

logger = logging.getLogger(__name__)

#: Noah soil layers (top, bottom) in cm.
GLDAS_LAYERS: tuple[tuple[float, float], ...] = ((0, 10), (10, 40), (40, 100), (100, 200))

_WATER_DENSITY = 1000.0  # kg m-3
_NAME = re.compile(r"^(SoilMoi|SoilTMP)(\d+)_(\d+)cm_(inst|tavg)$")
_GRIB_PARAMS = {85: "st", 86: "sm"}
_PARAM_OF = {v: k for k, v in _GRIB_PARAMS.items()}
_GRIB_SUFFIXES = (".grb", ".grib", ".grb1", ".grib1")
_DEFAULT_STEP = pd.Timedelta("3h")

ArrayT = TypeVar("ArrayT", float, np.ndarray, xr.DataArray)


# ---------------------------------------------------------------------------- kernels
def water_content_to_volumetric(water: ArrayT, thickness_cm: float) -> ArrayT:
    """Layer water content (kg m-2) to volumetric soil moisture (m3 m-3).

    Parameters
    ----------
    water : float, numpy.ndarray or xarray.DataArray
        Water in the layer, kg m-2 (= mm of water).
    thickness_cm : float
        Layer thickness in cm.

    Returns
    -------
    Same type as ``water``
        ``water / (1000 kg m-3 * thickness_cm / 100 m)``.

    Examples
    --------
    >>> float(water_content_to_volumetric(25.0, 10.0))
    0.25
    """
    out: ArrayT = water / (_WATER_DENSITY * thickness_cm / 100.0)
    return out


def grib_layer(top: int, bottom: int) -> tuple[float, float]:
    """(top, bottom) in cm of a GLDAS GRIB soil layer from its level keys.

    Raises
    ------
    DataError
        If the keys are neither the 1-4 layer codes of GLDAS-1 subsets nor a Noah layer
        in cm.
    """
    if top == 0 and 1 <= bottom <= 4:
        return GLDAS_LAYERS[4 - bottom]  # code 4 is the top layer (see module docstring)
    if (float(top), float(bottom)) in GLDAS_LAYERS:
        return float(top), float(bottom)
    msg = (
        f"GRIB soil level top={top}, bottom={bottom} is not a GLDAS Noah layer "
        f"{list(GLDAS_LAYERS)} nor a layer code 1-4."
    )
    raise DataError(msg)


# ---------------------------------------------------------------------------- public API
def read_gldas(
    paths: PathsLike,
    *,
    variables: Sequence[str] | None = None,
    daily: bool = True,
    min_coverage: float = 0.75,
    region: Region | None = None,
    chunks: Chunks = None,
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Read GLDAS Noah soil moisture / temperature (NetCDF 2.x or GRIB1 1.0) files.

    Parameters
    ----------
    paths : str, path, or sequence of them
        Files, a folder or a glob pattern; steps are stacked on ``time``, sorted,
        repeated steps dropped.
    variables : sequence of str, optional
        ``"sm"``, ``"st"`` or product names (``"SoilMoi0_10cm_inst"``); all soil
        variables found when ``None``.
    daily : bool
        UTC daily means (default) or the native 3-hourly steps.
    min_coverage : float
        Fraction (0-1] of the day's 8 steps a cell needs for a daily value.
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees.
    chunks : mapping, int or str, optional
        Dask chunks of the output; ``None`` returns numpy arrays.
    units : mapping of str to str, optional
        Units the caller expects, by product name (e.g. ``{"SoilMoi0_10cm_inst":
        "kg m-2"}``) or ``"sm"`` / ``"st"``; a file whose units differ raises.

    Returns
    -------
    xarray.Dataset
        ``sm`` (m3 m-3) and/or ``st`` (K), dims ``(time, depth, y, x)`` on the Noah
        layers, with ``depth_bnds`` and ``layer`` coordinates.

    Raises
    ------
    MissingVariableError
        If no soil variable (or a requested one) is in the files.
    UnitsError
        If units differ from the declared ones or cannot be converted.
    UnsupportedFileError
        If a GRIB file cannot be read.
    """
    check_coverage(min_coverage)
    files = as_paths(paths, suffixes=(".nc", ".nc4", *_GRIB_SUFFIXES))
    records: list[_Layer] = []
    steps: list[pd.Timedelta] = []
    for path in files:
        if path.suffix.lower() in _GRIB_SUFFIXES:
            found, step = _read_grib(path, region, chunks)
        else:
            found, step = _read_netcdf(path, region, chunks, units)
        records.extend(found)
        steps.append(step)
    check_declared_keys(units, [*dict.fromkeys(r.source for r in records), "sm", "st"])
    records = _select(records, variables)
    out_vars: dict[str, xr.DataArray] = {}
    bounds: list[tuple[float, float]] = []
    for canonical in ("sm", "st"):
        mine = [r for r in records if r.canonical == canonical]
        keys = sorted({(r.top, r.bottom) for r in mine})
        if not keys:
            continue
        per_layer = [_concat_time([r.data for r in mine if (r.top, r.bottom) == k]) for k in keys]
        stacked = stack_layers(per_layer, [k[0] for k in keys], [k[1] for k in keys])
        stacked.attrs = dict(mine[0].data.attrs)
        stacked.attrs["source_name"] = " ".join(dict.fromkeys(r.source for r in mine))
        out_vars[canonical] = stacked
        bounds.extend(keys)
    ds = assign_depth_bounds(xr.Dataset(out_vars), bounds)
    step = max(steps) if steps else _DEFAULT_STEP
    if daily:
        ds = daily_mean(ds, steps_per_day=round(pd.Timedelta("1D") / step),
                        min_coverage=min_coverage, closed="left")
        for name in ds.data_vars:
            ds[name].attrs["cell_methods"] = "time: mean"
    history = (
        f"soilfuse.read_gldas: UTC daily means of {step / pd.Timedelta('1h'):g}-hourly steps "
        f"(cells need >= "
        f"{min_coverage:.0%} of the day's steps); kg m-2 -> m3 m-3 by layer thickness."
        if daily else "soilfuse.read_gldas: native steps; kg m-2 -> m3 m-3 by layer thickness."
    )
    return finalize(ds, chunks=chunks, product="GLDAS Noah", files=files, history=history,
                    extra_attrs={"time_aggregation": "daily" if daily else "native"})


# ---------------------------------------------------------------------------- NetCDF
def _read_netcdf(
    path: Path, region: Region | None, chunks: Chunks, declared: Mapping[str, str] | None
) -> tuple[list[_Layer], pd.Timedelta]:
    raw = open_netcdf(path)
    step = _netcdf_step(raw, path)
    layers = {
        str(v): (m.group(1), float(m.group(2)), float(m.group(3)))
        for v in raw.data_vars if (m := _NAME.match(str(v)))
    }
    if not layers:
        logger.info("read_gldas: %s has no soil moisture/temperature variable", path.name)
        return [], step
    ds = drop_non_dim_coords(raw[list(layers)])
    try:
        ds = chunk(to_canonical_grid(ds, region), chunks)
    except GridError as err:
        msg = f"{path.name}: {err}"
        raise GridError(msg) from err
    out = []
    for name, (kind, top, bottom) in layers.items():
        canonical = "sm" if kind == "SoilMoi" else "st"
        da = check_units(ds[name], name, declared, canonical)
        out.append(_Layer(canonical, name, top, bottom, _convert(da, canonical, name, top, bottom)))
    return out, step


def _convert(da: xr.DataArray, canonical: str, name: str, top: float, bottom: float) -> xr.DataArray:
    if canonical == "st":
        return to_canonical(da, "st", name)
    if unit_key(str(da.attrs["units"])) != "kg m-2":
        msg = (
            f"GLDAS soil moisture {name!r} is in {da.attrs['units']!r}, but layer water "
            f"content in 'kg m-2' was expected; fix the file's units or declare them."
        )
        raise UnitsError(msg)
    theta = water_content_to_volumetric(da, bottom - top)
    theta.attrs = {"units": "m3 m-3", "source_units": str(da.attrs.get("source_units", "kg m-2"))}
    return to_canonical(theta, "sm", name)


def _netcdf_step(raw: xr.Dataset, path: Path) -> pd.Timedelta:
    """The product's time step: ``time_increment`` (minutes), ``_3H`` in the name, or inferred."""
    increment = raw["time"].attrs.get("time_increment") if "time" in raw.variables else None
    if increment is not None:
        return pd.Timedelta(minutes=float(increment))
    if "_3H" in path.name.upper() or "time" not in raw.variables:
        return _DEFAULT_STEP
    return infer_step(raw["time"].values) or _DEFAULT_STEP


# ---------------------------------------------------------------------------- GRIB
@dataclass(frozen=True)
class _Layer:
    """One soil layer of one file, already in canonical units."""

    canonical: str
    source: str
    top: float
    bottom: float
    data: xr.DataArray


@dataclass(frozen=True)
class _GribField:
    """One soil message of a GLDAS GRIB1 file (header only)."""

    offset: int
    canonical: str
    top: float
    bottom: float
    time: pd.Timestamp
    units: str
    shape: tuple[int, int]
    lat: tuple[float, float]
    lon: tuple[float, float]


def _scan_grib(path: Path) -> list[_GribField]:
    import eccodes  # late: loading eccodes before pyproj crashes pyproj

    fields: list[_GribField] = []
    with path.open("rb") as fh:
        while True:
            try:
                handle = eccodes.codes_grib_new_from_file(fh, headers_only=True)
            except eccodes.GribInternalError as err:
                msg = f"Cannot read {path.name} as GRIB ({err})."
                raise UnsupportedFileError(msg) from err
            if handle is None:
                break
            try:
                param = int(eccodes.codes_get(handle, "indicatorOfParameter"))
                if param in _GRIB_PARAMS:
                    get = eccodes.codes_get
                    top, bottom = grib_layer(int(get(handle, "topLevel")),
                                             int(get(handle, "bottomLevel")))
                    date, hhmm = int(get(handle, "validityDate")), int(get(handle, "validityTime"))
                    fields.append(_GribField(
                        offset=int(get(handle, "offset")),
                        canonical=_GRIB_PARAMS[param], top=top, bottom=bottom,
                        time=pd.Timestamp(f"{date:08d}") + pd.Timedelta(
                            hours=hhmm // 100, minutes=hhmm % 100),
                        units=str(get(handle, "units")),
                        shape=(int(get(handle, "Nj")), int(get(handle, "Ni"))),
                        lat=(float(get(handle, "latitudeOfFirstGridPointInDegrees")),
                             float(get(handle, "latitudeOfLastGridPointInDegrees"))),
                        lon=(float(get(handle, "longitudeOfFirstGridPointInDegrees")),
                             float(get(handle, "longitudeOfLastGridPointInDegrees"))),
                    ))
            finally:
                eccodes.codes_release(handle)
    return fields


def _read_message(path: str, offset: int, shape: tuple[int, int]) -> np.ndarray:
    """Values of the GRIB message at byte ``offset``, missing values as NaN."""
    import eccodes  # late: loading eccodes before pyproj crashes pyproj

    with open(path, "rb") as fh:
        fh.seek(offset)
        handle = eccodes.codes_grib_new_from_file(fh)
        try:
            values = np.asarray(eccodes.codes_get_values(handle), dtype="float32")
            if int(eccodes.codes_get(handle, "bitmapPresent")):
                missing = float(eccodes.codes_get(handle, "missingValue"))
                values[values == missing] = np.nan
        finally:
            eccodes.codes_release(handle)
    return values.reshape(shape)


def _read_grib(
    path: Path, region: Region | None, chunks: Chunks
) -> tuple[list[_Layer], pd.Timedelta]:
    out = []
    for field in _scan_grib(path):
        if chunks is None:
            data = _read_message(str(path), field.offset, field.shape)
        else:
            import dask
            import dask.array as dsa

            data = dsa.from_delayed(
                dask.delayed(_read_message)(str(path), field.offset, field.shape),
                shape=field.shape, dtype="float32",
            )
        lat = np.linspace(field.lat[0], field.lat[1], field.shape[0])
        lon = np.linspace(field.lon[0], field.lon[1], field.shape[1])
        da = xr.DataArray(
            data[np.newaxis], dims=("time", "lat", "lon"),
            coords={
                "time": [field.time.to_datetime64()],
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"}),
            },
            name="value", attrs={"units": field.units},
        )
        grid_ds = chunk(to_canonical_grid(da.to_dataset(), region), chunks)
        source = f"GRIB1 parameter {_PARAM_OF[field.canonical]}"
        value = check_units(grid_ds["value"], source, None)
        converted = _convert(value, field.canonical, source, field.top, field.bottom)
        out.append(_Layer(field.canonical, source, field.top, field.bottom, converted))
    if not out:
        logger.info("read_gldas: %s has no soil temperature/moisture message", path.name)
    return out, _DEFAULT_STEP


# ---------------------------------------------------------------------------- combining
def _select(records: list[_Layer], variables: Sequence[str] | None) -> list[_Layer]:
    """Records whose canonical or product name is requested (all when ``None``)."""
    if not records:
        msg = "No GLDAS soil moisture or soil temperature variable found in the files."
        raise MissingVariableError(msg)
    if variables is None:
        return records
    names = [variables] if isinstance(variables, str) else list(variables)
    known = {r.canonical for r in records} | {r.source for r in records}
    missing = [n for n in names if n not in known]
    if missing:
        msg = (
            f"Variables {missing} are not in the GLDAS files; they provide "
            f"{sorted(known)}."
        )
        raise MissingVariableError(msg)
    return [r for r in records if r.canonical in names or r.source in names]


def _concat_time(pieces: Sequence[xr.DataArray]) -> xr.DataArray:
    try:
        combined = xr.concat(pieces, dim="time", coords="minimal", compat="override",
                             join="exact", combine_attrs="drop_conflicts")
    except ValueError as err:
        msg = f"The GLDAS files are not on the same grid ({err}); read each grid separately."
        raise GridError(msg) from err
    return combined.sortby("time").drop_duplicates("time", keep="first")
