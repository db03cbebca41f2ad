"""ESA CCI SM and C3S SM reader: daily and monthly images to canonical datasets.

Reads the Level-3 merged soil-moisture images of the ESA Climate Change Initiative
(v02.2 … v05.x COMBINED, PASSIVE and ACTIVE) and of the Copernicus Climate Change
Service (C3S, daily and monthly), one file or many, global or regional (the
synthetic world writes regional files with the same names and semantics). Only the
cells of ``region`` are read from disk.

Variables
---------
* COMBINED, PASSIVE and C3S ``sm`` (m3 m-3) → ``sm``; ``sm_uncertainty`` (m3 m-3).
* ACTIVE ``sm`` is a degree of saturation in percent → ``sm_saturation`` (%), with
  ``sm_saturation_uncertainty`` (%). It is never converted to m3 m-3: that needs
  the porosity, which is not in the file. The choice is made from the ``units`` of
  ``sm`` (``percent`` vs ``m3 m-3``), not from the file name.
* Auxiliary variables kept as found when present: ``t0`` (observation time),
  ``dnflag``, ``mode``, ``sensor``, ``freqbandID`` (``freqband`` in v02.2),
  ``nobs`` (monthly), and ``flag`` (see below).

Flags
-----
From v03.3 on, ``flag`` is a bit field; the file attributes ``flag_values`` /
``flag_meanings`` list the bits and their combinations:

====  =============================================================
bit   meaning (``flag_meanings``)
====  =============================================================
1     snow coverage or temperature below zero
2     dense vegetation
4     others, no convergence in the model (no valid estimate)
8     soil moisture value exceeds physical boundary (v03.3+)
16    weight of measurement below threshold (v03.3+)
32    all datasets deemed unreliable (v03.3+, C3S)
====  =============================================================

v02.2 stores *codes* instead (0 none, 1 snow/frozen, 2 dense vegetation, 3 no
convergence); the reader maps every code to the bits above by its meaning, so the
returned ``flag`` always uses this bit table (:data:`CCI_FLAG_BITS`; the file's own
codes are recorded in ``flag.attrs["source_flag_values"]``). ``flags="strict"``
(default) sets ``sm`` and its uncertainty to NaN wherever ``flag != 0`` (or the
flag is missing); ``flags="none"`` applies nothing; an iterable of bits (e.g.
``{2}``) keeps values whose flag has no bit outside those allowed. Monthly files
have no flag; nothing is applied to them.

Time
----
Each image is stamped at 00:00 UTC of its day (monthly: the first of the month).
v02.2 stores ``2013-12-31T23:59:59.99996`` for the image of 2014-01-01; when the
stored time is within one minute of midnight of the date in the file name
(``…-20140101000000-…``), the file-name date is used; otherwise the stored time
is rounded to the nearest midnight when within a minute of it, else floored to its day.

Usage
-----
>>> from soilfuse.io.products import read_cci
>>> ds = read_cci("ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20160607000000-fv05.2.nc",
...               region=(-1.0, 0.0, 44.0, 45.0))  # doctest: +SKIP
>>> round(float(ds["sm"].sel(x=-0.727, y=44.467, method="nearest")[0]), 3)  # doctest: +SKIP
0.201
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import FloatArray, Region
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

__all__ = ["CCI_FLAG_BITS", "read_cci"]

logger = logging.getLogger(__name__)

#: The CCI / C3S soil-moisture flag bits (v03.3 and later) and their meanings.
CCI_FLAG_BITS: Mapping[int, str] = {
    1: "snow_coverage_or_temperature_below_zero",
    2: "dense_vegetation",
    4: "others_no_convergence_in_the_model_thus_no_valid_sm_estimates",
    8: "soil_moisture_value_exceeds_physical_boundary",
    16: "weight_of_measurement_below_threshold",
    32: "all_datasets_deemed_unreliable",
}
_BIT_OF_MEANING = {meaning: bit for bit, meaning in CCI_FLAG_BITS.items()}
_AUX = ("t0", "dnflag", "mode", "sensor", "freqbandID", "freqband", "nobs")
_MIDNIGHT_TOLERANCE = pd.Timedelta("60s")

FlagsArg = Literal["strict", "none"] | Iterable[int]


# ---------------------------------------------------------------------------- kernels
def flag_keep(flag: FloatArray, allowed: int) -> np.ndarray:
    """True where ``flag`` is finite and has no bit outside ``allowed`` (numpy kernel)."""
    finite = np.isfinite(flag)
    bits = np.where(finite, flag, 0).astype(np.int64)
    return finite & ((bits & ~np.int64(allowed)) == 0)


def translate_codes(flag: FloatArray, table: Mapping[int, int]) -> FloatArray:
    """Replace flag codes by their bits (``table`` code -> bits); other values unchanged."""
    out = np.array(flag, dtype="float32", copy=True)
    for code, bits in table.items():
        if code != bits:
            out[flag == code] = bits
    return out


def flag_table(values: Sequence[int], meanings: Sequence[str]) -> dict[int, int]:
    """Map each flag value of a file to CCI bits, from its ``flag_meanings`` word.

    ``no_data_inconsistency_detected`` is 0, ``combination_of_flag_values_a_and_b`` is
    ``a | b``, a base meaning takes its bit from :data:`CCI_FLAG_BITS` (or its own
    value when that is a power of two), and ``NaN`` is skipped (a fill value).

    Raises
    ------
    DataError
        If a meaning is unknown and its value is not a single bit.
    """
    table: dict[int, int] = {}
    for value, meaning in zip(values, meanings, strict=True):
        value = int(value)
        if meaning == "NaN":
            continue
        if meaning == "no_data_inconsistency_detected":
            table[value] = 0
        elif meaning.startswith("combination_of_flag_values_"):
            parts = re.findall(r"\d+", meaning)
            table[value] = int(np.bitwise_or.reduce([int(p) for p in parts]))
        elif meaning in _BIT_OF_MEANING:
            table[value] = _BIT_OF_MEANING[meaning]
        elif value > 0 and value & (value - 1) == 0:
            table[value] = value
        else:
            msg = (
                f"Flag value {value} means {meaning!r}, which is neither a known CCI flag "
                f"({sorted(_BIT_OF_MEANING)}) nor a single bit; read with flags='none'."
            )
            raise DataError(msg)
    return table


# ---------------------------------------------------------------------------- public API
def read_cci(
    paths: PathsLike,
    *,
    flags: FlagsArg = "strict",
    variables: Sequence[str] | None = None,
    region: Region | None = None,
    chunks: Chunks = None,
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Read ESA CCI SM or C3S SM images (daily or monthly) into a canonical dataset.

    Parameters
    ----------
    paths : str, path, or sequence of them
        Files, a folder or a glob pattern; images are stacked on ``time`` (sorted,
        repeated days dropped). All files must be the same product type
        (COMBINED / PASSIVE / ACTIVE, CCI or C3S, daily or monthly).
    flags : {"strict", "none"} or iterable of int
        Flag screening: ``"strict"`` keeps only ``flag == 0``; ``"none"`` keeps all;
        bits (e.g. ``{2}`` to accept dense vegetation) keep values flagged only by
        those bits. See :data:`CCI_FLAG_BITS`.
    variables : sequence of str, optional
        Output names to return (``"sm"`` or ``"sm_saturation"``, ``"sm_uncertainty"``,
        ``"flag"``, ``"t0"``, ``"dnflag"``, ``"mode"``, ``"sensor"``, ``"freqbandID"``,
        ``"nobs"``); everything present when ``None``.
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees; only these cells are read.
    chunks : mapping, int or str, optional
        Dask chunks of the output; ``None`` returns numpy arrays.
    units : mapping of str to str, optional
        Units the caller expects for ``sm`` / ``sm_uncertainty`` (file names), e.g.
        ``{"sm": "m3 m-3"}``; a file whose units differ raises.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``; ``sm`` and ``sm_uncertainty`` in m3 m-3, or
        ``sm_saturation`` and ``sm_saturation_uncertainty`` in % for ACTIVE, plus the
        auxiliary variables. ``source_name`` holds the file's variable name.

    Raises
    ------
    MissingVariableError
        If the files have no ``sm`` or a requested variable is absent (e.g. ``"sm"``
        from an ACTIVE file, which holds ``sm_saturation``).
    UnitsError
        If declared units differ from the file's, or ``sm`` is in an unknown unit.
    ConfigError
        If ``flags`` is not valid or the files mix product types.
    GridError
        If ``region`` misses the data or the files are on different grids.

    See Also
    --------
    soilfuse.io.products.read_lprm : single-sensor AMSR2 LPRM retrievals.
    """
    allowed = _allowed_bits(flags)
    files = as_paths(paths, suffixes=(".nc", ".nc4"))
    labels = {_product_label(p) for p in files}
    if len({(family, kind, freq) for family, kind, freq, _ in labels}) > 1:
        msg = (
            f"The files mix products {sorted(' '.join(lbl[:3]) for lbl in labels)}; "
            f"read each product separately."
        )
        raise ConfigError(msg)
    check_declared_keys(units, ["sm", "sm_uncertainty", "sm_saturation",
                                "sm_saturation_uncertainty"])
    pieces = [_read_one(p, allowed, variables, region, chunks, units) for p in files]
    try:
        out = xr.concat(pieces, dim="time", data_vars="all", coords="minimal",
                        compat="override", join="exact", combine_attrs="drop_conflicts")
    except ValueError as err:
        msg = f"The CCI files are not on the same grid ({err}); read each grid separately."
        raise GridError(msg) from err
    out = out.sortby("time").drop_duplicates("time", keep="first")
    family, kind, freq, _ = sorted(labels)[0]
    versions = sorted({version for *_, version in labels})
    if "flag" not in out.data_vars:
        flag_text = "none (the files have no flag variable)"
    elif allowed is None:
        flag_text = "none"
    elif allowed == 0:
        flag_text = "strict: values with flag != 0 set to NaN"
    else:
        flag_text = f"values with flag bits outside {allowed} set to NaN"
    return finalize(
        out, chunks=chunks, product=f"{family} SM {kind} {freq}".strip(), files=files,
        history=f"soilfuse.read_cci: flags {flag_text}; time stamped at 00:00 UTC.",
        extra_attrs={"product_version": ", ".join(versions), "flags_applied": flag_text,
                     **{f"source_{k}": out.attrs[k] for k in ("title", "license", "references")
                        if k in out.attrs}},
    )


# ---------------------------------------------------------------------------- one file
def _read_one(
    path: Path,
    allowed: int | None,
    variables: Sequence[str] | None,
    region: Region | None,
    chunks: Chunks,
    declared: Mapping[str, str] | None,
) -> xr.Dataset:
    raw = open_netcdf(path)
    if "sm" not in raw.data_vars:
        msg = f"{path.name} has no 'sm' variable (it holds {sorted(map(str, raw.data_vars))})."
        raise MissingVariableError(msg)
    keep = [v for v in ("sm", "sm_uncertainty", "flag", *_AUX) if v in raw.data_vars]
    ds = raw[keep]
    ds = ds.assign_coords(time=_day_stamps(ds["time"].values, path))
    try:
        ds = to_canonical_grid(drop_non_dim_coords(ds), region)
    except GridError as err:
        msg = f"{path.name}: {err}"
        raise GridError(msg) from err
    ds = chunk(ds, chunks)

    sm = check_units(ds["sm"], "sm", declared)
    saturation = unit_key(str(sm.attrs["units"])) == "%"
    name = "sm_saturation" if saturation else "sm"
    out: dict[str, xr.DataArray] = {}
    keep_mask = None
    if "flag" in ds.data_vars:
        flag = _canonical_flag(ds["flag"], path)
        out["flag"] = flag
        if allowed is not None:
            keep_mask = xr.apply_ufunc(
                flag_keep, flag, kwargs={"allowed": allowed}, dask="parallelized",
                output_dtypes=[bool],
            )
    elif allowed is not None:
        logger.info("read_cci: %s has no 'flag' variable; no flags applied", path.name)
    out[name] = to_canonical(sm if keep_mask is None else sm.where(keep_mask), name, "sm")
    if "sm_uncertainty" in ds.data_vars:
        unc = check_units(ds["sm_uncertainty"], "sm_uncertainty", declared,
                          f"{name}_uncertainty")
        unc = unc if keep_mask is None else unc.where(keep_mask)
        long_name = f"{out[name].attrs['long_name']} uncertainty (1 sigma)"
        out[f"{name}_uncertainty"] = to_canonical(
            unc, "sm_saturation" if saturation else "sm_uncertainty", "sm_uncertainty",
        ).assign_attrs(long_name=long_name)
    for aux in _AUX:
        if aux in ds.data_vars:
            out[aux] = _aux(ds[aux], aux)
    result = xr.Dataset(out, attrs=dict(raw.attrs))
    return _select(result, variables, path, saturation)


def _select(
    ds: xr.Dataset, variables: Sequence[str] | None, path: Path, saturation: bool
) -> xr.Dataset:
    if variables is None:
        return ds
    names = [variables] if isinstance(variables, str) else list(variables)
    missing = [v for v in names if v not in ds.data_vars]
    if missing:
        hint = (
            " This is an ACTIVE (percent of saturation) product: its soil moisture is "
            "'sm_saturation', never converted to m3 m-3." if saturation and "sm" in missing
            else ""
        )
        msg = (
            f"{path.name} does not provide {missing}; it provides "
            f"{sorted(map(str, ds.data_vars))}.{hint}"
        )
        raise MissingVariableError(msg)
    return ds[names]


def _canonical_flag(flag: xr.DataArray, path: Path) -> xr.DataArray:
    """The file's flag expressed in :data:`CCI_FLAG_BITS` (translating v02.2 codes)."""
    values = np.atleast_1d(flag.attrs.get("flag_values", []))
    meanings = str(flag.attrs.get("flag_meanings", "")).split()
    out = flag.astype("float32")
    if len(values) and len(values) == len(meanings):
        table = flag_table([int(v) for v in values], meanings)
        if any(code != bits for code, bits in table.items()):
            logger.info("read_cci: %s: flag codes translated to bits %s", path.name, table)
            out = xr.apply_ufunc(translate_codes, out, kwargs={"table": table},
                                 dask="parallelized", output_dtypes=[np.float32])
    elif len(values):
        msg = (
            f"{path.name}: 'flag' has {len(values)} flag_values but {len(meanings)} "
            f"flag_meanings; read with flags='none' or fix the attributes."
        )
        raise DataError(msg)
    bits = sorted(CCI_FLAG_BITS)
    out.attrs = {
        "long_name": "soil moisture quality flag (CCI bits; 0 = no issue detected)",
        "units": "1",
        "flag_masks": np.array(bits, dtype="int16"),
        "flag_meanings": " ".join(CCI_FLAG_BITS[b] for b in bits),
        "source_name": "flag",
        "source_flag_values": " ".join(str(int(v)) for v in values),
        "source_flag_meanings": " ".join(meanings),
    }
    return out


def _aux(da: xr.DataArray, name: str) -> xr.DataArray:
    keep = ("long_name", "units", "flag_values", "flag_meanings", "description")
    attrs: dict[str, Any] = {k: da.attrs[k] for k in keep if k in da.attrs}
    if np.issubdtype(da.dtype, np.datetime64):
        attrs.pop("units", None)
    attrs["source_name"] = name
    out = da.copy(deep=False)
    out.attrs = attrs
    return out


# ---------------------------------------------------------------------------- helpers
def _allowed_bits(flags: FlagsArg) -> int | None:
    """``None`` for no screening, else the OR of the allowed bits (0 for strict)."""
    if isinstance(flags, str):
        if flags == "strict":
            return 0
        if flags == "none":
            return None
        msg = f"flags must be 'strict', 'none' or an iterable of bits; got {flags!r}."
        raise ConfigError(msg)
    try:
        bits = [int(b) for b in flags]
    except (TypeError, ValueError) as err:
        msg = f"flags must be 'strict', 'none' or an iterable of bits; got {flags!r}."
        raise ConfigError(msg) from err
    bad = [b for b in bits if b <= 0 or b & (b - 1)]
    if bad:
        msg = f"flags must be single bits such as {sorted(CCI_FLAG_BITS)}; got {bad}."
        raise ConfigError(msg)
    return int(np.bitwise_or.reduce(bits)) if bits else 0


def _product_label(path: Path) -> tuple[str, str, str, str]:
    """(family, type, temporal resolution, version) from the file name, e.g. ``("ESA CCI", ...)``."""
    name = path.name.upper()
    family = "C3S" if name.startswith("C3S") or "C3S-" in name else "ESA CCI"
    kind = next((k for k in ("COMBINED", "PASSIVE", "ACTIVE") if k in name), "")
    freq = "monthly" if "MONTHLY" in name else "dekadal" if "DEKADAL" in name else "daily"
    match = re.search(r"-F?V(\d[\d.]*\d)\.NC4?$", name)
    version = match.group(1) if match else ""
    return family, kind, freq, version


def _day_stamps(stored: Any, path: Path) -> np.ndarray:
    """Stored image times stamped at 00:00 UTC of their day (see the module docstring)."""
    times = pd.DatetimeIndex(np.atleast_1d(stored))
    from_name = date_from_filename(path)
    if from_name is not None and times.size == 1 and abs(times[0] - from_name) <= _MIDNIGHT_TOLERANCE:
        return np.array([from_name.to_datetime64()], dtype="datetime64[ns]")
    nearest = times.round("D")
    close = np.abs((times - nearest).to_numpy()) <= _MIDNIGHT_TOLERANCE.to_timedelta64()
    stamped = np.where(close, nearest.to_numpy(), times.floor("D").to_numpy())
    return stamped.astype("datetime64[ns]")
