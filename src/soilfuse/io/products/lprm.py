"""AMSR2 LPRM L3 reader: daily Land Parameter Retrieval Model grids to canonical datasets.

LPRM L3 files (``LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4``: ``_D_`` descending,
``_A_`` ascending overpass) hold global 0.25 degree grids stored as
``(Longitude, Latitude)``, i.e. transposed with respect to the usual ``(lat, lon)``.
The reader transposes by dimension *name*, never by position, and flips the grid
north-up.

=============================  ====================  ====================================
LPRM variable                  canonical             conversion
=============================  ====================  ====================================
``soil_moisture_<band>``       ``sm``                % vol. -> m3 m-3 (x 0.01)
other bands                    ``sm_c2``, ``sm_x``…  % vol. -> m3 m-3
``soil_moisture_<band>_error`` ``sm_uncertainty``    % vol. -> m3 m-3 (others
                                                     ``sm_uncertainty_c2``…)
``ts``                         ``tskin``             K
``opt_depth_<band>``           same name             vegetation optical depth (1)
``mask``, ``frequency_map``    same names            kept as found (bit mask; GHz)
``scantime``                   ``scantime``          observation time (datetime64)
=============================  ====================  ====================================

The soil-moisture variables say ``units: percent``; for LPRM that is percent of
volume (m3 m-3 x 100), so it is converted to m3 m-3. Bands: ``c1`` 6.9 GHz, ``c2``
7.3 GHz, ``x`` 10.7 GHz. The time stamp is 00:00 UTC of the date in the file name
(``…_20150401013507``); without one, the day of the median ``scantime``.

Usage
-----
>>> from soilfuse.io.products import read_lprm
>>> ds = read_lprm("LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4", band="c1",
...                region=(-6, -5, 41, 42))  # doctest: +SKIP
>>> ds["sm"].attrs["units"]  # doctest: +SKIP
'm3 m-3'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import Region
from soilfuse.exceptions import ConfigError, DataError, GridError, MissingVariableError
from soilfuse.io.products._common import (
    Chunks,
    PathsLike,
    as_paths,
    check_declared_keys,
    check_units,
    chunk,
    date_from_filename,
    drop_non_dim_coords,
    finalize,
    open_netcdf,
    to_canonical,
    to_canonical_grid,
    unit_key,
)

__all__ = ["LPRM_BANDS", "read_lprm"]

logger = logging.getLogger(__name__)

#: LPRM bands and their frequencies (GHz).
LPRM_BANDS: Mapping[str, float] = {"c1": 6.9, "c2": 7.3, "x": 10.7}

Band = Literal["c1", "c2", "x"]


def read_lprm(
    paths: PathsLike,
    *,
    band: Band = "c1",
    variables: Sequence[str] | None = None,
    region: Region | None = None,
    chunks: Chunks = None,
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Read AMSR2 LPRM L3 soil-moisture files into a canonical dataset.

    Parameters
    ----------
    paths : str, path, or sequence of them
        One file per day and overpass; several files are stacked on ``time``
        (sorted, repeated days dropped — read ascending and descending separately).
    band : {"c1", "c2", "x"}
        Band whose retrieval becomes ``sm`` / ``sm_uncertainty`` (default ``c1``);
        the other bands are kept as ``sm_<band>`` / ``sm_uncertainty_<band>``.
    variables : sequence of str, optional
        Output names to return (``"sm"``, ``"sm_uncertainty"``, ``"sm_x"``,
        ``"tskin"``, ``"mask"``, ``"frequency_map"``, ``"scantime"``,
        ``"opt_depth_c1"``...); everything when ``None``.
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees; only these cells are read.
    chunks : mapping, int or str, optional
        Dask chunks of the output; ``None`` returns numpy arrays.
    units : mapping of str to str, optional
        Units the caller expects, by LPRM name (``{"soil_moisture_c1": "percent"}``)
        or output name; a file whose units differ raises.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``, ``y`` north-up; ``sm`` and ``sm_uncertainty`` in
        m3 m-3, ``tskin`` in K, and the auxiliary variables.

    Raises
    ------
    ConfigError
        If ``band`` is unknown.
    MissingVariableError
        If the chosen band or a requested variable is not in the file.
    UnitsError
        If declared units differ from the file's.
    """
    if band not in LPRM_BANDS:
        msg = f"band must be one of {sorted(LPRM_BANDS)}; got {band!r}."
        raise ConfigError(msg)
    files = as_paths(paths, suffixes=(".nc4", ".nc", ".h5"))
    pieces = [_read_one(path, band, region, chunks, units) for path in files]
    try:
        out = xr.concat(pieces, dim="time", data_vars="all", coords="minimal",
                        compat="override", join="exact", combine_attrs="drop_conflicts")
    except ValueError as err:
        msg = f"The LPRM files are not on the same grid ({err}); read each grid separately."
        raise GridError(msg) from err
    out = out.sortby("time").drop_duplicates("time", keep="first")
    if variables is not None:
        names = [variables] if isinstance(variables, str) else list(variables)
        missing = [n for n in names if n not in out.data_vars]
        if missing:
            msg = f"LPRM files do not provide {missing}; they provide {sorted(map(str, out.data_vars))}."
            raise MissingVariableError(msg)
        out = out[names]
    overpass = {"_D_": "descending", "_A_": "ascending"}
    passes = {v for p in files for k, v in overpass.items() if k in p.name.upper()}
    return finalize(
        out, chunks=chunks, product=f"AMSR2 LPRM L3 ({band.upper()} band)", files=files,
        history=f"soilfuse.read_lprm: {band} band as sm; % vol. -> m3 m-3; grid transposed "
                "to (y, x) north-up; time from the file name.",
        extra_attrs={"overpass": ", ".join(sorted(passes)) or "unknown",
                     "frequency_ghz": LPRM_BANDS[band]},
    )


def _read_one(
    path: Path, band: Band, region: Region | None, chunks: Chunks,
    declared: Mapping[str, str] | None,
) -> xr.Dataset:
    raw = open_netcdf(path)
    chosen = f"soil_moisture_{band}"
    if chosen not in raw.data_vars:
        msg = (
            f"{path.name} has no {chosen!r} (variables: {sorted(map(str, raw.data_vars))}); "
            f"choose another band."
        )
        raise MissingVariableError(msg)
    check_declared_keys(declared, _declarable(raw, band))
    ds = drop_non_dim_coords(raw)
    lat_dim = next((d for d in ds.dims if str(d).lower() in ("latitude", "lat")), None)
    lon_dim = next((d for d in ds.dims if str(d).lower() in ("longitude", "lon")), None)
    if lat_dim is None or lon_dim is None:
        msg = f"{path.name} has no Latitude/Longitude dims (dims: {tuple(ds.dims)})."
        raise GridError(msg)
    ds = ds.transpose(lat_dim, lon_dim)
    ds = ds.expand_dims(time=[_file_day(path, ds)])
    try:
        ds = chunk(to_canonical_grid(ds, region), chunks)
    except GridError as err:
        msg = f"{path.name}: {err}"
        raise GridError(msg) from err

    out: dict[str, xr.DataArray] = {}
    for b in LPRM_BANDS:
        name = f"soil_moisture_{b}"
        suffix = "" if b == band else f"_{b}"
        if name in ds.data_vars:
            out[f"sm{suffix}"] = _percent_vol(ds[name], name, "sm", f"sm{suffix}", declared)
        if f"{name}_error" in ds.data_vars:
            out[f"sm_uncertainty{suffix}"] = _percent_vol(
                ds[f"{name}_error"], f"{name}_error", "sm_uncertainty",
                f"sm_uncertainty{suffix}", declared,
            )
    if "ts" in ds.data_vars:
        out["tskin"] = to_canonical(check_units(ds["ts"], "ts", declared, "tskin"), "tskin", "ts")
    for name in [str(v) for v in ds.data_vars if str(v).startswith("opt_depth_")]:
        out[name] = _aux(ds[name], name, units="1")
    if "mask" in ds.data_vars:
        out["mask"] = _aux(ds["mask"], "mask")
    if "frequency_map" in ds.data_vars:
        out["frequency_map"] = _aux(ds["frequency_map"], "frequency_map", units="GHz")
    if "scantime" in ds.data_vars:
        out["scantime"] = _aux(ds["scantime"], "scantime")
    return xr.Dataset(out)


def _percent_vol(
    da: xr.DataArray, name: str, canonical: str, out_name: str,
    declared: Mapping[str, str] | None,
) -> xr.DataArray:
    """LPRM ``percent`` (of volume) -> m3 m-3, with CF attributes of ``canonical``."""
    checked = check_units(da, name, declared, out_name)
    if unit_key(str(checked.attrs["units"])) == "%":
        checked.attrs["units"] = "% vol"  # LPRM's "percent" is percent of volume
    band = name.removeprefix("soil_moisture_").removesuffix("_error")
    long_name = (
        f"volumetric soil moisture, LPRM {band} band ({LPRM_BANDS[band]} GHz)"
        if canonical == "sm"
        else f"soil moisture retrieval uncertainty, LPRM {band} band ({LPRM_BANDS[band]} GHz)"
    )
    return to_canonical(checked, canonical, name, long_name=long_name)


def _aux(da: xr.DataArray, name: str, *, units: str | None = None) -> xr.DataArray:
    attrs: dict[str, Any] = {"long_name": str(da.attrs.get("long_name", name)),
                             "source_name": name}
    if units is not None:
        attrs["units"] = units
    out = da.copy(deep=False)
    out.attrs = attrs
    return out


def _declarable(raw: xr.Dataset, band: Band) -> list[str]:
    names = [str(v) for v in raw.data_vars]
    outputs = ["sm", "sm_uncertainty", "tskin"]
    outputs += [f"sm_{b}" for b in LPRM_BANDS if b != band]
    outputs += [f"sm_uncertainty_{b}" for b in LPRM_BANDS if b != band]
    return names + outputs


def _file_day(path: Path, ds: xr.Dataset) -> np.datetime64:
    day = date_from_filename(path)
    if day is not None:
        return np.datetime64(day.to_datetime64(), "ns")
    if "scantime" in ds.data_vars:
        times = np.asarray(ds["scantime"].values).ravel()
        times = times[~np.isnat(times)]
        if times.size:
            median = pd.Timestamp(np.sort(times)[times.size // 2])
            logger.info("read_lprm: %s: date from the median scantime", path.name)
            return np.datetime64(median.floor("D").to_datetime64(), "ns")
    msg = f"{path.name}: no date in the file name and no valid 'scantime'; rename the file."
    raise DataError(msg)
