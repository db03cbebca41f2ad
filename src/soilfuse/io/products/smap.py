"""SMAP L3 soil moisture delivered as point lists, placed onto EASE-Grid 2.0 cells.

The SMAP subsets soilfuse reads (and the synthetic twin writes) are *point lists*, not
grids: one NetCDF file per day or per multi-day window, with variables ``latitude``,
``longitude``, ``soil_moisture`` and ``soil_moisture_dca`` along a dimension ``index``,
fill values already removed and no time variable. The date is in the file name, in one
of these patterns:

* ``<anything>_YYYY-MM-DD[_suffix].nc`` -- one day (``Western-Australia_2020-01-05.nc``,
  ``SMAP_Texas_2024-03-01_Texas2.nc``, the twin's ``<Region>_YYYY-MM-DD.nc``);
* ``<anything>_YYYYMMDD_YYYYMMDD.nc`` -- a window of days, first and last inclusive
  (``SMAP_20180801_20180803.nc``), whose AM and PM retrievals of all days are
  concatenated without a day label;
* ``<anything>_YYYYMMDD.nc`` -- one day.

Each point is a cell centre of the global EASE-Grid 2.0 (EPSG:6933) at 36 km (SPL3SMP)
or 9 km (SPL3SMP_E). :func:`read_smap` puts every point into its cell, averages all
retrievals that fall in one cell on one date (AM and PM passes, overlapping files),
and returns the canonical ``sm`` cube ``(time, y, x)`` in m3 m-3 on the EASE grid
subset to the points' extent or to ``region``. SMAP L3 soil moisture is cm3/cm3 and
the files store no units, so the reader declares them.

Usage
-----
>>> from soilfuse.io.products.smap import read_smap, smap_points
>>> ds = read_smap(sorted(folder.glob("Western-Australia_2020-01-*.nc")))  # doctest: +SKIP
>>> ds["sm"].dims  # doctest: +SKIP
('time', 'y', 'x')
>>> table = smap_points(folder.glob("*.nc"))  # doctest: +SKIP
>>> list(table.columns)  # doctest: +SKIP
['date', 'date_end', 'lat', 'lon', 'row', 'col', 'value', 'file']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from soilfuse._typing import FloatArray, IntArray, Region
from soilfuse.exceptions import DataError, GridError, MissingVariableError, UnsupportedFileError
from soilfuse.grid import EASE2_GRIDS, Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import DEFAULT_CHUNKS
from soilfuse.io.products._common import Chunks, PathsLike, as_paths, finalize, to_canonical
from soilfuse.variables import check_declared_units

__all__ = [
    "SMAP_VARIABLES",
    "detect_ease_resolution",
    "points_to_cube",
    "read_ease_land_points",
    "read_smap",
    "smap_file_dates",
    "smap_points",
]

logger = logging.getLogger(__name__)

#: Soil-moisture variables of the SMAP point files: the baseline retrieval
#: (``soil_moisture``, SCA-V in older releases, DCA since R17) and the explicit DCA one.
SMAP_VARIABLES = ("soil_moisture", "soil_moisture_dca")

#: EASE-Grid 2.0 resolutions SMAP L3 products use.
_SMAP_RESOLUTIONS = ("36km", "9km")

# SMAP fill value; the subsets drop fills, but files written by other tools may not.
_SMAP_FILL = -9999.0

_WINDOW_RE = re.compile(r"(?<!\d)(\d{8})_(\d{8})(?!\d)")
_ISO_RE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_DAY_RE = re.compile(r"(?<!\d)(\d{8})(?!\d)")


@dataclass(frozen=True)
class _PointFile:
    """Points of one file: first and last day covered, coordinates and values."""

    path: Path
    start: pd.Timestamp
    end: pd.Timestamp
    lat: FloatArray
    lon: FloatArray
    value: FloatArray
    units: str | None = None


# ---------------------------------------------------------------------- dates
def smap_file_dates(path: str | Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day (inclusive) that a SMAP point file covers, from its name.

    Parameters
    ----------
    path : str or pathlib.Path
        A file named ``…_YYYY-MM-DD[_suffix].nc``, ``…_YYYYMMDD_YYYYMMDD.nc`` or
        ``…_YYYYMMDD.nc``.

    Returns
    -------
    start, end : pandas.Timestamp
        Midnight UTC of the first and last day; equal for daily files.

    Raises
    ------
    DataError
        If the name holds no date in a known pattern, or the window ends before it
        starts.

    Examples
    --------
    >>> [str(d.date()) for d in smap_file_dates("SMAP_20180801_20180803.nc")]
    ['2018-08-01', '2018-08-03']
    >>> [str(d.date()) for d in smap_file_dates("SMAP_Texas_2024-03-01_Texas2.nc")]
    ['2024-03-01', '2024-03-01']
    """
    name = Path(path).name
    if (m := _WINDOW_RE.search(name)) is not None:
        start, end = _day(m.group(1), name), _day(m.group(2), name)
    elif (m := _ISO_RE.search(name) or _DAY_RE.search(name)) is not None:
        start = end = _day(m.group(1), name)
    else:
        msg = (
            f"Cannot find a date in the SMAP file name {name!r}; expected "
            f"'…_YYYY-MM-DD.nc', '…_YYYYMMDD_YYYYMMDD.nc' or '…_YYYYMMDD.nc'. "
            f"Rename the file so that its date is in the name."
        )
        raise DataError(msg)
    if end < start:
        msg = (
            f"The SMAP file {name!r} names a window that ends ({end.date()}) before it starts "
            f"({start.date()}); fix the file name."
        )
        raise DataError(msg)
    return start, end


def _day(text: str, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as err:
        msg = f"{text!r} in the SMAP file name {name!r} is not a valid calendar date ({err})."
        raise DataError(msg) from err


# ---------------------------------------------------------------------- grids
def detect_ease_resolution(lon: Any, lat: Any) -> Literal["36km", "9km"]:
    """EASE-Grid 2.0 resolution (36 or 9 km) whose cell centres the points sit on.

    Each grid is tried in turn for whether every point lies on one of its cell
    centres (to 5 % of a cell). This is unambiguous: a 36 km centre is a corner of
    the nested 9 km cells, and 9 km centres sit a quarter or three quarters into a
    36 km cell. Points that are not on centres (re-projected or jittered lists) fall
    back to the point spacing: the smallest positive step between distinct projected
    ``x`` coordinates within 5 % of 36,032 m or 9,008 m.

    Parameters
    ----------
    lon, lat : array_like
        Point coordinates in degrees.

    Returns
    -------
    {"36km", "9km"}

    Raises
    ------
    DataError
        If there are no points, or they match neither grid (pass ``grid=`` then).
    """
    lon_a = np.asarray(lon, dtype="float64").ravel()
    lat_a = np.asarray(lat, dtype="float64").ravel()
    ok = np.isfinite(lon_a) & np.isfinite(lat_a)
    if not ok.any():
        msg = "Cannot detect the EASE grid of an empty point list; pass grid='36km' or '9km'."
        raise DataError(msg)
    to_ease = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
    x, y = (np.asarray(v) for v in to_ease.transform(lon_a[ok], lat_a[ok]))
    for res in _SMAP_RESOLUTIONS:
        grid = Grid.ease2(res)  # type: ignore[arg-type]
        col_f = (x - grid.transform.c) / grid.resolution[0]
        row_f = (grid.transform.f - y) / grid.resolution[1]
        if np.all(np.abs(col_f % 1 - 0.5) < 0.05) and np.all(np.abs(row_f % 1 - 0.5) < 0.05):
            return res  # type: ignore[return-value]
    ux = np.unique(np.round(x, 0))
    step = float(np.diff(ux).min()) if ux.size >= 2 else float("nan")
    for res in _SMAP_RESOLUTIONS:
        size = EASE2_GRIDS[res][0]
        if abs(step - size) < 0.05 * size:
            return res  # type: ignore[return-value]
    sizes = {r: EASE2_GRIDS[r][0] for r in _SMAP_RESOLUTIONS}
    msg = (
        f"SMAP points lie on no EASE-Grid 2.0 cell centres and their smallest x step "
        f"({step:.0f} m) matches no SMAP resolution {sizes}; pass grid= explicitly (a name "
        f"or a soilfuse.grid.Grid)."
    )
    raise DataError(msg)


def _resolve_grid(grid: str | Grid | None, lon: FloatArray, lat: FloatArray) -> Grid:
    if isinstance(grid, Grid):
        return grid
    if grid is None:
        return Grid.ease2(detect_ease_resolution(lon, lat))
    if grid not in _SMAP_RESOLUTIONS:
        msg = f"grid must be '36km', '9km', a soilfuse.grid.Grid or None; got {grid!r}."
        raise GridError(msg)
    return Grid.ease2(grid)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- kernel
def points_to_cube(
    t_index: IntArray,
    rows: IntArray,
    cols: IntArray,
    values: FloatArray,
    shape: tuple[int, int, int],
) -> FloatArray:
    """Mean of the point values falling in each ``(time, row, col)`` cell.

    Plain-numpy kernel of :func:`read_smap`. Sums and counts are accumulated with
    :func:`numpy.bincount` on the flattened cell index, so duplicates (AM and PM
    retrievals of one day) average; cells without points are NaN.

    Parameters
    ----------
    t_index, rows, cols : numpy.ndarray of int
        Cell of each point; entries outside ``shape`` are ignored.
    values : numpy.ndarray of float
        Point values; NaN values are ignored.
    shape : tuple of int
        ``(nt, ny, nx)`` of the output.

    Returns
    -------
    numpy.ndarray
        float32 array of ``shape``.

    Examples
    --------
    >>> cube = points_to_cube(np.array([0, 0, 1]), np.array([0, 0, 1]),
    ...                       np.array([1, 1, 0]), np.array([0.1, 0.3, 0.2]), (2, 2, 2))
    >>> round(float(cube[0, 0, 1]), 6), round(float(cube[1, 1, 0]), 6), int(np.isnan(cube).sum())
    (0.2, 0.2, 6)
    """
    nt, ny, nx = shape
    t = np.asarray(t_index, dtype="int64")
    r = np.asarray(rows, dtype="int64")
    c = np.asarray(cols, dtype="int64")
    v = np.asarray(values, dtype="float64")
    keep = (t >= 0) & (t < nt) & (r >= 0) & (r < ny) & (c >= 0) & (c < nx) & np.isfinite(v)
    flat = (t[keep] * ny + r[keep]) * nx + c[keep]
    size = nt * ny * nx
    total = np.bincount(flat, weights=v[keep], minlength=size)
    count = np.bincount(flat, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean.reshape(shape).astype("float32")


# ---------------------------------------------------------------------- files
def _read_point_file(path: Path, variable: str) -> _PointFile:
    start, end = smap_file_dates(path)
    try:
        ds = xr.open_dataset(path, decode_times=False, mask_and_scale=True)
    except (OSError, ValueError) as err:
        msg = f"Cannot open SMAP point file {path}: {err}."
        raise UnsupportedFileError(msg) from err
    with ds:
        lat_name = _first_present(ds, ("latitude", "lat"))
        lon_name = _first_present(ds, ("longitude", "lon"))
        if all(size == 0 for size in ds.sizes.values()):
            # Empty subsets may keep only the 'index' dimension (no variables at all).
            empty = np.empty(0)
            return _PointFile(path, start, end, empty, empty, empty)
        if lat_name is None or lon_name is None or variable not in ds.variables:
            msg = (
                f"{path.name} is not a SMAP point file with latitude, longitude and "
                f"{variable!r}; it holds {sorted(map(str, ds.variables))}. Choose variable= "
                f"from {SMAP_VARIABLES}."
            )
            raise MissingVariableError(msg)
        lat = np.asarray(ds[lat_name].values, dtype="float64").ravel()
        lon = np.asarray(ds[lon_name].values, dtype="float64").ravel()
        value = np.asarray(ds[variable].values, dtype="float64").ravel()
        units = ds[variable].attrs.get("units")
    value = np.where((value <= _SMAP_FILL + 0.5) | (value < 0), np.nan, value)
    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(value)
    return _PointFile(path, start, end, lat[ok], lon[ok], value[ok],
                      None if units is None else str(units))


def _first_present(ds: xr.Dataset, names: Iterable[str]) -> str | None:
    for name in names:
        if name in ds.variables:
            return name
    return None


def _collect(paths: PathsLike, variable: str) -> list[_PointFile]:
    if variable not in SMAP_VARIABLES:
        msg = f"variable must be one of {SMAP_VARIABLES}; got {variable!r}."
        raise MissingVariableError(msg)
    files = [_read_point_file(p, variable) for p in as_paths(paths, suffixes=(".nc", ".nc4"))]
    for f in files:
        if f.value.size == 0:
            logger.info("SMAP file %s holds no points; its date becomes an all-NaN day.", f.path.name)
    return files


def _table(files: list[_PointFile], grid: str | Grid | None) -> tuple[pd.DataFrame, Grid]:
    lat = np.concatenate([f.lat for f in files]) if files else np.empty(0)
    lon = np.concatenate([f.lon for f in files]) if files else np.empty(0)
    counts = [f.value.size for f in files]
    target = _resolve_grid(grid, lon, lat)
    rows, cols = target.index(lon, lat, crs="EPSG:4326")
    table = pd.DataFrame(
        {
            "date": np.repeat(np.array([f.start for f in files], dtype="datetime64[ns]"), counts),
            "date_end": np.repeat(np.array([f.end for f in files], dtype="datetime64[ns]"), counts),
            "lat": lat,
            "lon": lon,
            "row": rows.astype("int64"),
            "col": cols.astype("int64"),
            "value": np.concatenate([f.value for f in files]) if files else np.empty(0),
            "file": np.repeat(np.array([f.path.name for f in files], dtype=object), counts),
        }
    )
    outside = int((table["row"] < 0).sum())
    if outside:
        logger.warning("%d SMAP points lie outside the target grid and are dropped.", outside)
        table = table[table["row"] >= 0].reset_index(drop=True)
    return table, target


def smap_points(
    paths: PathsLike,
    *,
    grid: str | Grid | None = None,
    variable: str = "soil_moisture",
) -> pd.DataFrame:
    """Tidy table of all SMAP retrievals in point files, with their EASE grid cell.

    Parameters
    ----------
    paths : str, path or sequence of them
        SMAP point files, a folder (all ``*.nc`` in it) or a glob pattern.
    grid : {"36km", "9km"} or Grid, optional
        Grid whose ``row``/``col`` are reported; detected from the point spacing when
        ``None`` (see :func:`detect_ease_resolution`).
    variable : {"soil_moisture", "soil_moisture_dca"}
        Which retrieval goes into ``value``.

    Returns
    -------
    pandas.DataFrame
        One row per retrieval: ``date`` (first day of the file, datetime64),
        ``date_end`` (last day, inclusive), ``lat``, ``lon`` (degrees), ``row``,
        ``col`` (cell of the full grid, row 0 in the north), ``value`` (m3 m-3, as
        stored; SMAP's cm3/cm3 is the same quantity) and ``file`` (name). Empty files
        contribute no rows.

    Raises
    ------
    DataError
        If a file name holds no date or the grid cannot be detected.
    MissingVariableError
        If a file lacks the coordinates or ``variable``.
    """
    table, _ = _table(_collect(paths, variable), grid)
    return table


# ---------------------------------------------------------------------- reader
def read_smap(
    paths: PathsLike,
    *,
    grid: str | Grid | None = None,
    variable: str = "soil_moisture",
    region: Region | None = None,
    chunks: Chunks = None,
    units: str = "cm3 cm-3",
) -> xr.Dataset:
    """SMAP point files as the canonical soil-moisture cube ``sm (time, y, x)``.

    Parameters
    ----------
    paths : str, path or sequence of them
        SMAP point files, a folder (all ``*.nc`` in it) or a glob pattern.
    grid : {"36km", "9km"} or Grid, optional
        Target grid; the global EASE-Grid 2.0 at the resolution detected from the
        point spacing when ``None``. Any :class:`~soilfuse.grid.Grid` is accepted
        (points are binned into the cell containing them).
    variable : {"soil_moisture", "soil_moisture_dca"}
        Retrieval to read.
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees; the output covers the grid cells
        intersecting it (points outside are dropped). Default: the cells spanned by
        all points.
    chunks : mapping, int or "auto", optional
        Dask chunks, e.g. ``{"time": 32}``; the cube is then built lazily one time
        block at a time (32 days for ``"auto"``). ``None`` returns numpy-backed data.
    units : str
        Units of the stored values when the files do not state them (SMAP L3 is
        cm3/cm3, the same as m3 m-3). Files that state other units raise.

    Returns
    -------
    xarray.Dataset
        ``sm`` (float32, m3 m-3) on the grid subset, CRS on ``spatial_ref``.
        ``time`` holds one value per distinct first day of the files, at 00:00 UTC.
        Daily files give the mean of the day's AM and PM retrievals. **Window files**
        (``…_YYYYMMDD_YYYYMMDD.nc``) concatenate the AM and PM retrievals of every
        day of the window without a day label, so their time step is labelled with
        the window's first day and holds the mean of all retrievals in the window
        (a multi-day composite); the coordinate ``time_bnds (time, bnds)`` then gives
        ``[first day, day after the last day)`` of each step. Dates of empty files
        are all-NaN steps.

    Raises
    ------
    DataError
        If no file has points and no ``region`` is given, a name has no date, or the
        grid cannot be detected.
    GridError
        If ``region`` does not intersect the grid or ``grid`` is not understood.
    MissingVariableError
        If ``variable`` is not a SMAP variable or missing from a file.
    UnitsError
        If a file states units that differ from ``units``.
    """
    files = _collect(paths, variable)
    for f in files:
        if f.units is not None:
            check_declared_units(xr.DataArray(0.0, attrs={"units": f.units}), units,
                                 name=f"{variable} in {f.path.name}")
    if grid is None and all(f.value.size == 0 for f in files):
        msg = (
            f"All {len(files)} SMAP files are empty, so the grid cannot be detected; pass "
            f"grid='36km' or '9km' (and region=) to get an all-NaN cube."
        )
        raise DataError(msg)
    table, full = _table(files, grid)
    rows_sl, cols_sl = _window(full, table, region)
    sub = full.slice(rows_sl, cols_sl)
    r = table["row"].to_numpy() - rows_sl.start
    c = table["col"].to_numpy() - cols_sl.start

    starts = pd.DatetimeIndex(sorted({f.start for f in files}))
    t = starts.get_indexer(pd.DatetimeIndex(table["date"]))
    shape = (len(starts), *sub.shape)
    values = table["value"].to_numpy()
    data: Any
    if chunks is None:
        data = points_to_cube(t, r, c, values, shape)
    else:
        data = _lazy_cube(t, r, c, values, shape, chunks)

    sm = xr.DataArray(data, dims=("time", "y", "x"), coords={"time": starts.as_unit("ns")})
    sm.attrs["units"] = units
    sm = to_canonical(sm, "sm", variable)
    ds = with_grid(xr.Dataset({"sm": sm}), sub)
    ends = {s: max(f.end for f in files if f.start == s) for s in starts}
    windows = any(ends[s] > s for s in starts)
    history = (
        f"read_smap: {len(table)} SMAP retrievals placed in their cells of a "
        f"{sub.resolution[0]:.6g} {sub.crs.axis_info[0].unit_name} grid and averaged per cell and date"
    )
    meaning = (
        "first day of each file; multi-day window files are averaged over the window (time_bnds)"
        if windows else "UTC day of the retrievals (AM and PM passes averaged)"
    )
    ds = finalize(ds, chunks=chunks, product="SMAP L3 radiometer soil moisture (point subsets)",
                  files=[f.path for f in files], history=history,
                  extra_attrs={"time_meaning": meaning})
    if windows:
        upper = pd.DatetimeIndex([ends[s] for s in starts]) + pd.Timedelta(days=1)
        bnds = np.stack([starts.to_numpy(), upper.to_numpy()], axis=-1).astype("datetime64[ns]")
        ds = ds.assign_coords(time_bnds=(("time", "bnds"), bnds))
        ds["time"].attrs["bounds"] = "time_bnds"
    return ds


def _window(full: Grid, table: pd.DataFrame, region: Region | None) -> tuple[slice, slice]:
    if region is not None:
        rows_sl, cols_sl = full.window(region, crs="EPSG:4326")
        inside = table["row"].between(rows_sl.start, rows_sl.stop - 1) & table["col"].between(
            cols_sl.start, cols_sl.stop - 1
        )
        dropped = int((~inside).sum())
        if dropped:
            logger.info("%d SMAP points outside region %s are dropped.", dropped, region)
        return rows_sl, cols_sl
    if table.empty:
        msg = "No SMAP point falls on the grid and no region was given; pass region=."
        raise DataError(msg)
    return (
        slice(int(table["row"].min()), int(table["row"].max()) + 1),
        slice(int(table["col"].min()), int(table["col"].max()) + 1),
    )


def _lazy_cube(
    t: IntArray,
    r: IntArray,
    c: IntArray,
    values: FloatArray,
    shape: tuple[int, int, int],
    chunks: Chunks,
) -> dsa.Array:
    """Dask array built one time block at a time from the (small) point table."""
    nt, ny, nx = shape
    if isinstance(chunks, Mapping):
        step = int(chunks.get("time", nt) or nt)
    elif isinstance(chunks, int):
        step = chunks
    else:
        step = DEFAULT_CHUNKS["time"]
    step = nt if step < 1 else step
    blocks = []
    for t0 in range(0, nt, step):
        t1 = min(nt, t0 + step)
        sel = (t >= t0) & (t < t1)
        block = dask.delayed(points_to_cube)(
            t[sel] - t0, r[sel], c[sel], values[sel], (t1 - t0, ny, nx)
        )
        blocks.append(dsa.from_delayed(block, shape=(t1 - t0, ny, nx), dtype="float32"))
    if not blocks:
        return dsa.full(shape, np.nan, dtype="float32")
    return dsa.concatenate(blocks, axis=0)


# ---------------------------------------------------------------------- grid file
def read_ease_land_points(path: str | Path) -> pd.DataFrame:
    """EASE-Grid 2.0 land grid points (e.g. TU Wien's ``ease36land.nc``) as a table.

    Parameters
    ----------
    path : str or pathlib.Path
        NetCDF file with ``gpi``, ``lat``, ``lon`` (degrees) and optionally ``cell``
        along one dimension.

    Returns
    -------
    pandas.DataFrame
        Columns ``gpi``, ``lat``, ``lon``, ``cell`` (when present) and ``row``,
        ``col``: the cell of the 36 km EASE-Grid 2.0 (:meth:`Grid.ease2`) containing
        each point (``-1`` outside).

    Raises
    ------
    MissingVariableError
        If ``gpi``, ``lat`` or ``lon`` is missing.
    """
    with xr.open_dataset(path, decode_times=False) as ds:
        missing = [v for v in ("gpi", "lat", "lon") if v not in ds.variables]
        if missing:
            msg = (
                f"{Path(path).name} lacks {missing}; an EASE grid-point file needs gpi, lat "
                f"and lon variables."
            )
            raise MissingVariableError(msg)
        out = pd.DataFrame(
            {name: ds[name].values for name in ("gpi", "lat", "lon", "cell") if name in ds.variables}
        )
    rows, cols = Grid.ease2("36km").index(out["lon"].to_numpy(), out["lat"].to_numpy(), crs="EPSG:4326")
    out["row"] = rows
    out["col"] = cols
    return out
