"""ERA5 and ERA5-Land reader: hourly or daily files to canonical daily (or hourly) grids.

Reads NetCDF (new-style CDS files with ``valid_time``, old-style with ``time``,
netCDF3) and GRIB (through cfgrib) files of ERA5 single levels and ERA5-Land, one
file or many. Files are concatenated on their *stored* valid time and sorted, and
repeated time steps are dropped, so file names are never trusted (some of the real
regional subsets carry wrong dates in their names).

Variables and canonical names (``docs/conventions.md``)
-------------------------------------------------------
=================  =====================  ==========================================
ERA5 name          canonical              conversion
=================  =====================  ==========================================
``swvl1..4``       ``sm`` (depth)         m3 m-3; layers 0-7, 7-28, 28-100, 100-289 cm
``stl1..4``        ``st`` (depth)         K; same layers
``t2m``            ``t2m``                K
``u10``, ``v10``   ``u10``, ``v10``       m s-1; ``wind10`` = speed, from each step
``sd``             ``sd``                 m of water equivalent
``tp``             ``tp``                 accumulated m -> mm day-1
``e``, ``pev``     ``e``, ``pev``         accumulated m -> mm day-1, sign flipped
                                          (positive upward)
``ssrd`` ``ssr``   same names             accumulated J m-2 -> W m-2 (mean flux)
``strd``
``lsm``            ``land_fraction``      static (y, x); its own time stamp dropped
=================  =====================  ==========================================

Hourly to daily
---------------
* Instantaneous variables: mean of the steps stamped in ``[d 00:00, d+1 00:00)`` UTC.
  A cell's daily value needs at least ``ceil(min_coverage * 24)`` valid hours
  (18 of 24 with the default ``min_coverage=0.75``), otherwise it is NaN; days with
  fewer time stamps than that in the files are not returned at all.
* Accumulated variables are first turned into the amount of each hour:
  ERA5 single levels stores the accumulation over the hour ending at the time stamp,
  so it is used as is; ERA5-Land stores the accumulation since 00 UTC, so the hourly
  amount is the difference from the previous hour, except at 01 UTC where the value
  is itself (and a step whose previous hour is missing is NaN). The daily value of
  day ``d`` is the mean rate over the hours ending in ``(d 00:00, d+1 00:00]`` — on a
  complete day this is exactly the 24-hour total (ERA5: the sum of the 24 values;
  ERA5-Land: the 00 UTC value of day ``d+1``) — with the same coverage rule.
* Files already at daily resolution (24 h between steps, or a global attribute
  ``time_aggregation = "daily"``, as written by the synthetic world) are accepted
  as they are: instantaneous variables are daily means, accumulations daily totals.
* ``daily=False`` returns the native steps with canonical names and units; the
  accumulations are then hourly rates (e.g. ``tp`` in mm day-1 over the hour ending
  at the time stamp).

Product detection (``product="auto"``)
--------------------------------------
The accumulation convention depends on the product. In order: the ``product``
argument; GRIB ``marsClass`` (``"l5"`` ERA5-Land, ``"ea"`` ERA5); file attributes
naming ERA5-Land or the ERA5 single-levels dataset; finally the grid spacing — cells
finer than 0.2 degree are ERA5-Land (native 0.1 degree), others ERA5 (native 0.25).

Usage
-----
>>> from soilfuse.io.products import read_era5
>>> ds = read_era5("ERA5_Western-Australia_20200101_20200128.nc")  # doctest: +SKIP
>>> ds["sm"].dims  # doctest: +SKIP
('time', 'depth', 'y', 'x')
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import Region
from soilfuse.exceptions import (
    ConfigError,
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
    floor_to_day,
    infer_step,
    open_netcdf,
    stack_layers,
    to_canonical,
    to_canonical_grid,
    unit_key,
)

__all__ = ["ERA5_LAYERS", "ERA5_VARIABLES", "read_era5"]

logger = logging.getLogger(__name__)

Era5Product = Literal["auto", "era5", "era5-land"]

#: ERA5 / ERA5-Land soil layers (top, bottom) in cm, for ``swvl1..4`` and ``stl1..4``.
ERA5_LAYERS: tuple[tuple[float, float], ...] = ((0, 7), (7, 28), (28, 100), (100, 289))

_HOUR = pd.Timedelta("1h")
_DAY = pd.Timedelta("1D")
_GRIB_SUFFIXES = (".grib", ".grb", ".grib1", ".grb1", ".grib2", ".grb2")
_SUFFIXES = (".nc", ".nc4", ".netcdf", *_GRIB_SUFFIXES)


@dataclass(frozen=True)
class _Spec:
    """How one ERA5 variable maps to a canonical one."""

    canonical: str
    kind: Literal["instant", "accum", "static"]
    units: str  # the unit the file must have (after unit_key), for accumulations
    layer: int = 0  # 1-based soil layer, 0 when not layered
    factor: float = 1.0  # amount -> canonical: amount * factor * per_seconds / period
    per_seconds: float = 1.0


def _build_specs() -> dict[str, _Spec]:
    specs: dict[str, _Spec] = {}
    for k in range(1, 5):
        specs[f"swvl{k}"] = _Spec("sm", "instant", "m3 m-3", layer=k)
        specs[f"stl{k}"] = _Spec("st", "instant", "K", layer=k)
    specs.update(
        t2m=_Spec("t2m", "instant", "K"),
        u10=_Spec("u10", "instant", "m s-1"),
        v10=_Spec("v10", "instant", "m s-1"),
        sd=_Spec("sd", "instant", "m"),
        lsm=_Spec("land_fraction", "static", "1"),
        # m of water per period -> mm day-1: * 1000 mm/m * 86400 s/day / period
        tp=_Spec("tp", "accum", "m", factor=1000.0, per_seconds=86400.0),
        e=_Spec("e", "accum", "m", factor=-1000.0, per_seconds=86400.0),
        pev=_Spec("pev", "accum", "m", factor=-1000.0, per_seconds=86400.0),
        # J m-2 per period -> W m-2: / period
        ssrd=_Spec("ssrd", "accum", "J m-2"),
        ssr=_Spec("ssr", "accum", "J m-2"),
        strd=_Spec("strd", "accum", "J m-2"),
    )
    return specs


_SPECS = _build_specs()

#: ERA5 variable names this reader understands, with their canonical names.
ERA5_VARIABLES: Mapping[str, str] = {name: spec.canonical for name, spec in _SPECS.items()}


# ---------------------------------------------------------------------------- public API
def read_era5(
    paths: PathsLike,
    *,
    product: Era5Product = "auto",
    variables: Sequence[str] | None = None,
    daily: bool = True,
    min_coverage: float = 0.75,
    region: Region | None = None,
    chunks: Chunks = None,
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Read ERA5 / ERA5-Land NetCDF or GRIB files into a canonical dataset.

    Parameters
    ----------
    paths : str, path, or sequence of them
        Files, a folder, or a glob pattern. Many files are concatenated on their stored
        valid time, sorted, and repeated steps dropped.
    product : {"auto", "era5", "era5-land"}
        Which accumulation convention applies (see the module docstring for the
        detection rule used with ``"auto"``).
    variables : sequence of str, optional
        ERA5 names (``"swvl1"``, ``"tp"``) or canonical names (``"sm"`` for every
        ``swvl`` layer present, ``"land_fraction"``, ``"wind10"`` for ``u10`` + ``v10``).
        All recognised variables when ``None``.
    daily : bool
        Aggregate sub-daily steps to UTC days (default) or return native steps. A
        file with a single analysis time (e.g. one global 00 UTC field) has no
        complete day: read it with ``daily=False``.
    min_coverage : float
        Fraction (0-1] of a day's steps a cell needs for a daily value (default 0.75,
        i.e. 18 of 24 hours).
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees; only those cells are read.
    chunks : mapping, int or str, optional
        Dask chunks of the output (e.g. ``{"time": 32, "y": 512, "x": 512}``);
        ``None`` returns numpy arrays.
    units : mapping of str to str, optional
        Units the caller expects, keyed by ERA5 or canonical name, e.g.
        ``{"swvl1": "m3 m-3"}``. A file whose units differ raises; a file without
        units takes the declared ones.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, [depth,] y, x)``: ``sm`` (m3 m-3) and ``st`` (K) on the ERA5
        layers, ``t2m`` (K), ``tp``, ``e``, ``pev`` (mm day-1), ``ssrd``, ``ssr``,
        ``strd`` (W m-2), ``u10``, ``v10``, ``wind10`` (m s-1), ``sd`` (m) and a
        static ``land_fraction`` (1), whichever are in the files. Each variable keeps
        its ERA5 name(s) in ``source_name``; ``spatial_ref`` holds the CRS.

    Raises
    ------
    MissingVariableError
        If a requested variable is not in the files, or none is recognised.
    UnitsError
        If declared units differ from the file's, or a unit cannot be converted.
    GridError
        If files lie on different grids, or ``region`` misses the data.
    DataError
        If accumulations come at a time step other than 1 h or 1 day.
    ConfigError
        If ``product`` or ``min_coverage`` is invalid, or units are declared for a
        variable that is not read.

    See Also
    --------
    soilfuse.io.products.read_gldas : GLDAS Noah land-model output.

    Examples
    --------
    >>> ds = read_era5("era5-2mt-2019-03-uk.grib")  # doctest: +SKIP
    >>> ds.sizes["time"]  # doctest: +SKIP
    31
    """
    if product not in ("auto", "era5", "era5-land"):
        msg = f"product must be 'auto', 'era5' or 'era5-land'; got {product!r}."
        raise ConfigError(msg)
    check_coverage(min_coverage)
    files = as_paths(paths, suffixes=_SUFFIXES)
    opened = [_open_file(path, region) for path in files]
    available = sorted({str(v) for ds, _ in opened for v in ds.data_vars})
    wanted = _resolve_variables(variables, available, files)
    check_declared_keys(units, [*wanted, *(_SPECS[n].canonical for n in wanted)])

    statics = [n for n in wanted if _SPECS[n].kind == "static"]
    timed_names = [n for n in wanted if n not in statics]
    static_ds = _first_static(opened, statics)
    timed = _concat_timed(opened, timed_names, chunks)
    is_daily = _is_daily(opened, timed)
    prod = _detect_product(product, opened, timed if timed is not None else static_ds)
    logger.info(
        "read_era5: %d file(s), product %s, variables %s, %s input",
        len(files), prod, wanted, "daily" if is_daily else "sub-daily",
    )

    parts: list[xr.Dataset] = []
    if timed is not None:
        parts.append(_convert_timed(timed, prod, is_daily, daily, min_coverage, units))
    if static_ds is not None:
        parts.append(_convert_static(static_ds, units))
    out = xr.merge(parts, join="outer", compat="override", combine_attrs="drop_conflicts")
    history = _history(prod, is_daily, daily, min_coverage)
    return finalize(
        out, chunks=chunks, product="ERA5-Land" if prod == "era5-land" else "ERA5",
        files=files, history=history,
        extra_attrs={"time_aggregation": "daily" if daily or is_daily else "native"},
    )


# ---------------------------------------------------------------------------- opening
def _open_file(path: Path, region: Region | None) -> tuple[xr.Dataset, str | None]:
    """One file with raw ERA5 names on the canonical grid, time dim ``time``; plus a product hint."""
    if path.suffix.lower() in _GRIB_SUFFIXES:
        raw, hint = _open_grib(path), _grib_hint(path)
    else:
        raw = open_netcdf(path)
        hint = _attrs_hint(raw)
    known = [v for v in raw.data_vars if v in _SPECS]
    ignored = sorted(str(v) for v in raw.data_vars if v not in _SPECS)
    if ignored:
        logger.debug("read_era5: %s: ignoring variables %s", path.name, ignored)
    if not known:
        return xr.Dataset(attrs=dict(raw.attrs)), hint
    ds = _normalise_time(raw[known], raw.attrs)
    try:
        ds = to_canonical_grid(ds, region)
    except GridError as err:
        msg = f"{path.name}: {err}"
        raise GridError(msg) from err
    ds.attrs = dict(raw.attrs)
    return ds, hint


def _open_grib(path: Path) -> xr.Dataset:
    """All hypercubes of a GRIB file merged, with one ``time`` dim of valid times."""
    import cfgrib  # late: loading eccodes before pyproj crashes pyproj

    try:
        cubes = cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""})
    except Exception as err:  # cfgrib raises bare Exceptions on unreadable files
        msg = f"Cannot read {path.name} as GRIB ({err}); is it a GRIB file?"
        raise UnsupportedFileError(msg) from err
    flat = [_grib_valid_time(cube, path) for cube in cubes]
    merged = xr.merge(flat, join="outer", compat="override", combine_attrs="drop_conflicts")
    return merged.sortby("time")


def _grib_valid_time(cube: xr.Dataset, path: Path) -> xr.Dataset:
    """Replace cfgrib's (time, step) by one ``time`` dim holding the valid time."""
    if "number" in cube.dims:
        msg = f"{path.name} holds an ensemble (dim 'number'); read one member at a time."
        raise UnsupportedFileError(msg)
    if "valid_time" not in cube.coords:
        return cube
    vt = cube["valid_time"]
    if vt.ndim == 0:
        scalars = [c for c in ("time", "step", "valid_time") if c in cube.coords]
        return cube.drop_vars(scalars).expand_dims(time=np.atleast_1d(vt.values))
    if vt.ndim == 1:
        dim = vt.dims[0]
        values = vt.values
        drop = [c for c in ("valid_time", "time", "step") if c in cube.coords and c != dim]
        out = cube.drop_vars(drop).assign_coords({dim: values})
        return out.rename({dim: "time"}) if dim != "time" else out
    stacked = cube.stack(_vt=("time", "step"))
    values = stacked["valid_time"].values
    stacked = stacked.drop_vars(["_vt", "time", "step", "valid_time"])
    return stacked.assign_coords(_vt=values).rename(_vt="time")


def _normalise_time(ds: xr.Dataset, attrs: Mapping[str, object]) -> xr.Dataset:
    """Statics lose their time dims; timed variables get one ``time`` dim; extras dropped."""
    time_dims = [d for d in ("valid_time", "time") if d in ds.dims]
    statics = [v for v in ds.data_vars if _SPECS[str(v)].kind == "static"]
    static = ds[statics]
    for dim in time_dims:
        if dim in static.dims:
            static = static.isel({dim: 0}, drop=True)
    timed = ds.drop_vars(statics)
    if "expver" in timed.dims:
        # Old-style CDS files mixing ERA5 and ERA5T: each step is valid in one expver.
        layers = [timed.isel(expver=i, drop=True) for i in range(timed.sizes["expver"])]
        timed = layers[0]
        for layer in layers[1:]:
            timed = timed.combine_first(layer)
    used = {d for v in timed.data_vars for d in timed[v].dims}
    if "valid_time" in used:
        timed = timed.drop_vars([c for c in ("time",) if c in timed.variables]).rename(
            valid_time="time"
        )
    elif "time" not in used and timed.data_vars:
        stamp = timed["time"].values if "time" in timed.variables else None
        if stamp is None or np.ndim(stamp) != 0:
            msg = "ERA5 variables have no time dimension and no scalar 'time' to stamp them."
            raise DataError(msg)
        timed = timed.drop_vars("time").expand_dims(time=np.atleast_1d(stamp))
    if not timed.data_vars:
        timed = xr.Dataset()
    out = xr.merge(
        [drop_non_dim_coords(timed), drop_non_dim_coords(static)], join="outer", compat="override"
    )
    out.attrs = dict(attrs)
    return out


def _grib_hint(path: Path) -> str | None:
    """Product from the ``marsClass`` of the first GRIB message (l5 ERA5-Land, ea ERA5)."""
    import eccodes  # late: loading eccodes before pyproj crashes pyproj

    with path.open("rb") as fh:
        handle = eccodes.codes_grib_new_from_file(fh)
        if handle is None:
            return None
        try:
            mars_class = str(eccodes.codes_get(handle, "marsClass"))
        except eccodes.KeyValueNotFoundError:
            mars_class = ""
        finally:
            eccodes.codes_release(handle)
    return {"l5": "era5-land", "ea": "era5"}.get(mars_class.lower())


def _attrs_hint(ds: xr.Dataset) -> str | None:
    """Product named in global or variable attributes, if any."""
    texts = [str(v) for v in ds.attrs.values()]
    for var in ds.variables.values():
        texts.extend(str(v) for v in var.attrs.values())
    blob = " ".join(texts).lower().replace("_", "-")
    if "era5-land" in blob or "era5land" in blob:
        return "era5-land"
    if "era5-single-levels" in blob:
        return "era5"
    return None


# ---------------------------------------------------------------------------- combining
def _resolve_variables(
    variables: Sequence[str] | None, available: Sequence[str], files: Sequence[Path]
) -> list[str]:
    if not available:
        msg = (
            f"No ERA5 variable this reader knows is in {[p.name for p in files][:5]}; "
            f"known: {sorted(_SPECS)}."
        )
        raise MissingVariableError(msg)
    if variables is None:
        return list(available)
    if isinstance(variables, str):
        variables = [variables]
    wanted: list[str] = []
    for name in variables:
        if name in _SPECS:
            matches = [name] if name in available else []
        elif name == "wind10":
            matches = [n for n in ("u10", "v10") if n in available]
            matches = matches if len(matches) == 2 else []
        else:
            matches = [n for n in available if _SPECS[n].canonical == name]
        if not matches:
            msg = (
                f"Variable {name!r} is not in the ERA5 files (they hold {list(available)}); "
                f"request one of those or their canonical names."
            )
            raise MissingVariableError(msg)
        wanted.extend(m for m in matches if m not in wanted)
    return wanted


def _first_static(
    opened: Sequence[tuple[xr.Dataset, str | None]], statics: Sequence[str]
) -> xr.Dataset | None:
    if not statics:
        return None
    for ds, _ in opened:
        present = [s for s in statics if s in ds.data_vars]
        if present:
            return ds[present]
    return None


def _concat_timed(
    opened: Sequence[tuple[xr.Dataset, str | None]],
    names: Sequence[str],
    chunks: Chunks,
) -> xr.Dataset | None:
    if not names:
        return None
    pieces = []
    for ds, _ in opened:
        present = [n for n in names if n in ds.data_vars]
        if present:
            pieces.append(chunk(ds[present], chunks))
    if not pieces:
        return None
    try:
        combined = xr.concat(
            pieces, dim="time", data_vars="all", coords="minimal", compat="override",
            join="exact", combine_attrs="drop_conflicts",
        )
    except ValueError as err:
        msg = (
            "The ERA5 files are not on the same grid (latitude/longitude differ), so they "
            f"cannot be concatenated ({err}); read each grid separately."
        )
        raise GridError(msg) from err
    combined = combined.sortby("time")
    n_before = combined.sizes["time"]
    combined = combined.drop_duplicates("time", keep="first")
    if combined.sizes["time"] < n_before:
        logger.info("read_era5: dropped %d repeated time steps", n_before - combined.sizes["time"])
    return combined


def _is_daily(opened: Sequence[tuple[xr.Dataset, str | None]], timed: xr.Dataset | None) -> bool:
    if any(str(ds.attrs.get("time_aggregation", "")).lower() == "daily" for ds, _ in opened):
        return True
    if timed is None:
        return False
    step = infer_step(timed["time"].values)
    return step is not None and step == _DAY


def _detect_product(
    product: Era5Product, opened: Sequence[tuple[xr.Dataset, str | None]], ds: xr.Dataset | None
) -> Literal["era5", "era5-land"]:
    if product != "auto":
        return product
    hints = {hint for _, hint in opened if hint is not None}
    if len(hints) == 1:
        return "era5-land" if hints == {"era5-land"} else "era5"
    if len(hints) > 1:
        msg = "The files mix ERA5 and ERA5-Land; read them separately or pass product=."
        raise DataError(msg)
    if ds is None or ds.sizes.get("x", 0) < 2:
        return "era5"
    dx = abs(float(ds["x"].values[1] - ds["x"].values[0]))
    return "era5-land" if dx < 0.2 else "era5"


# ---------------------------------------------------------------------------- conversion
def _convert_timed(
    timed: xr.Dataset,
    product: Literal["era5", "era5-land"],
    is_daily: bool,
    daily: bool,
    min_coverage: float,
    declared: Mapping[str, str] | None,
) -> xr.Dataset:
    step = infer_step(timed["time"].values)
    step = _DAY if is_daily else (step or _HOUR)
    instants: dict[str, xr.DataArray] = {}
    accums: dict[str, xr.DataArray] = {}
    for name in timed.data_vars:
        name = str(name)
        spec = _SPECS[name]
        da = check_units(timed[name], name, declared, spec.canonical)
        if spec.kind == "accum":
            accums[name] = _accumulation_rate(da, name, spec, product, step)
        else:
            instants[name] = to_canonical(da, spec.canonical, name)
    if "u10" in instants and "v10" in instants:
        speed = xr.DataArray(np.hypot(instants["u10"], instants["v10"])).assign_attrs(
            units="m s-1")
        instants["wind10"] = to_canonical(speed, "wind10", "u10 v10")
    native = "time: point"
    if daily and not is_daily:
        native = "time: mean"
    for da in instants.values():
        da.attrs["cell_methods"] = "time: mean" if is_daily else native
    for da in accums.values():
        da.attrs["cell_methods"] = "time: mean"

    if is_daily or not daily:
        merged = xr.Dataset({**instants, **accums})
        merged = floor_to_day(merged) if is_daily else merged
    else:
        steps_per_day = round(_DAY / step)
        pieces = []
        if instants:
            pieces.append(daily_mean(xr.Dataset(instants), steps_per_day=steps_per_day,
                                     min_coverage=min_coverage, closed="left"))
        if accums:
            pieces.append(daily_mean(xr.Dataset(accums), steps_per_day=steps_per_day,
                                     min_coverage=min_coverage, closed="right"))
        merged = xr.merge(pieces, join="outer", compat="override")
    return _stack_soil_layers(merged)


def _accumulation_rate(
    da: xr.DataArray,
    name: str,
    spec: _Spec,
    product: Literal["era5", "era5-land"],
    step: pd.Timedelta,
) -> xr.DataArray:
    """Amount per step (m or J m-2) -> canonical rate (mm day-1 or W m-2) at each step."""
    found = unit_key(str(da.attrs["units"]))
    if found != spec.units:
        msg = (
            f"Accumulated variable {name!r} is in {da.attrs['units']!r} but ERA5 stores it in "
            f"{spec.units!r}; fix the file's units or declare them."
        )
        raise UnitsError(msg)
    if step == _DAY:
        amount = da
    elif step == _HOUR:
        amount = _hourly_amount(da) if product == "era5-land" else da
    else:
        msg = (
            f"Accumulated variable {name!r} comes every {step}; only hourly or daily "
            f"accumulations can be converted. Request hourly data from the CDS."
        )
        raise DataError(msg)
    period = step.total_seconds()
    rate = amount * (spec.factor * spec.per_seconds / period)
    rate.attrs = {
        "units": "mm day-1" if spec.units == "m" else "W m-2",
        "source_units": str(da.attrs.get("source_units", da.attrs["units"])),
    }
    return to_canonical(rate, spec.canonical, name)


def _hourly_amount(da: xr.DataArray) -> xr.DataArray:
    """Hourly amounts from ERA5-Land accumulations since 00 UTC (lazy for Dask)."""
    time = da["time"]
    previous = da.shift(time=1)
    contiguous = (time - time.shift(time=1)) == np.timedelta64(1, "h")
    first_hour = (time - time.dt.floor("D")) == np.timedelta64(1, "h")
    return xr.where(first_hour, da, xr.where(contiguous, da - previous, np.nan), keep_attrs=True)


def _stack_soil_layers(ds: xr.Dataset) -> xr.Dataset:
    out = ds
    bounds: list[tuple[float, float]] = []
    for prefix, canonical in (("swvl", "sm"), ("stl", "st")):
        names = sorted(str(n) for n in ds.data_vars if str(n).startswith(prefix))
        if not names:
            continue
        layers = [_SPECS[n].layer for n in names]
        tops = [ERA5_LAYERS[k - 1][0] for k in layers]
        bottoms = [ERA5_LAYERS[k - 1][1] for k in layers]
        stacked = stack_layers([ds[n] for n in names], tops, bottoms)
        stacked.attrs = dict(ds[names[0]].attrs)
        stacked.attrs["source_name"] = " ".join(names)
        out = out.drop_vars(names).assign({canonical: stacked})
        bounds.extend(zip(tops, bottoms, strict=True))
    return assign_depth_bounds(out, bounds)


def _convert_static(static: xr.Dataset, declared: Mapping[str, str] | None) -> xr.Dataset:
    out = {}
    for name in static.data_vars:
        spec = _SPECS[str(name)]
        da = check_units(static[name], str(name), declared, spec.canonical)
        out[spec.canonical] = to_canonical(da, spec.canonical, str(name))
    return xr.Dataset(out)


def _history(product: str, is_daily: bool, daily: bool, min_coverage: float) -> str:
    if is_daily:
        return "soilfuse.read_era5: daily input kept as is; units normalised."
    if not daily:
        return (
            f"soilfuse.read_era5: native steps; accumulations de-accumulated "
            f"({product} convention) to rates; units normalised."
        )
    return (
        f"soilfuse.read_era5: UTC daily means of hourly data (cells need >= "
        f"{min_coverage:.0%} of the day's hours); accumulations de-accumulated "
        f"({product} convention) and averaged over the hours ending in the day."
    )
