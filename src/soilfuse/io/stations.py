"""Station tables: the :class:`StationData` model, its validation and its files.

soilfuse keeps in-situ records as two pandas tables (``docs/conventions.md``):

* ``stations``, one row per station: ``station_id``, ``network``, ``lat``, ``lon``
  (degrees), ``elevation`` (m) and optional columns (``land_cover``,
  ``climate_zone``, ``sand``, ``silt``, ``clay`` (%), ``saturation`` (m3 m-3), ``row``,
  ``col`` and free columns);
* ``observations``, one row per value: ``station_id``, ``time`` (UTC, stored as
  timezone-naive ``datetime64[ns]``), ``depth_from``, ``depth_to`` (cm, positive down,
  equal for point sensors), ``variable`` (``"sm"`` or ``"st"``), ``value`` (canonical
  unit: m3 m-3 for ``sm``, K for ``st``) and ``flag`` (str; ``"G"`` is good). Extra
  columns (``qc_flag``, ``layer``, ``n``…) are kept.

Every table is normalised to fixed dtypes (``string`` for text, ``float64`` for
numbers, ``datetime64[ns]`` for time) on pandas 2.2 and 3.x, so a write/read cycle
returns equal frames. Parquet stores the dtypes itself; CSV writes a small
``schema.json`` beside the tables so that the round trip is exact there too (CSV
cannot tell an empty text from a missing one: both read back as missing).

Usage
-----
>>> import pandas as pd
>>> stations = pd.DataFrame({"station_id": ["A"], "network": ["NET"], "lat": [31.0],
...                          "lon": [101.0], "elevation": [500.0]})
>>> obs = pd.DataFrame({"station_id": ["A", "A"],
...                     "time": pd.to_datetime(["2019-03-01 00:00", "2019-03-01 01:00"]),
...                     "depth_from": [0.0, 0.0], "depth_to": [5.0, 5.0],
...                     "variable": ["sm", "sm"], "value": [0.21, 0.22], "flag": ["G", "G"]})
>>> data = StationData(stations, obs)
>>> data.n_stations, len(data.observations)
(1, 2)
>>> str(data.observations["time"].dtype)
'datetime64[ns]'
>>> wide = to_wide(data, variable="sm")
>>> wide.shape
(2, 1)
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.exceptions import (
    DataError,
    MissingVariableError,
    SoilfuseWarning,
    UnitsError,
    UnsupportedFileError,
)
from soilfuse.grid import Grid
from soilfuse.io.cf import layer_label
from soilfuse.variables import canonical_unit, convert_units

__all__ = [
    "OBSERVATION_COLUMNS",
    "STATION_COLUMNS",
    "STATION_OPTIONAL_COLUMNS",
    "STATION_VARIABLES",
    "StationData",
    "as_string",
    "locate_on_grid",
    "normalise_observations",
    "normalise_stations",
    "read_stations",
    "select",
    "to_wide",
    "write_stations",
]

logger = logging.getLogger(__name__)

#: Variables a station table may hold, with their canonical units.
STATION_VARIABLES: Mapping[str, str] = {"sm": "m3 m-3", "st": "K"}

#: Required observation columns and their dtypes.
OBSERVATION_COLUMNS: Mapping[str, str] = {
    "station_id": "string",
    "time": "datetime64[ns]",
    "depth_from": "float64",
    "depth_to": "float64",
    "variable": "string",
    "value": "float64",
    "flag": "string",
}

#: Required station columns and their dtypes.
STATION_COLUMNS: Mapping[str, str] = {
    "station_id": "string",
    "network": "string",
    "lat": "float64",
    "lon": "float64",
    "elevation": "float64",
}

#: Optional station columns with a fixed dtype when present.
STATION_OPTIONAL_COLUMNS: Mapping[str, str] = {
    "land_cover": "Int64",
    "climate_zone": "Int64",
    "sand": "float64",
    "silt": "float64",
    "clay": "float64",
    "saturation": "float64",
    "row": "Int64",
    "col": "Int64",
}

# Optional observation columns that soilfuse itself adds.
_OBS_OPTIONAL: Mapping[str, str] = {
    "qc_flag": "string",
    "layer": "string",
    "n": "Int64",
    "coverage": "float64",
    "value_raw": "float64",
}

# Medians outside these bounds mean the values are not in the canonical unit.
_UNIT_SANITY: Mapping[str, tuple[float, float, str]] = {
    "sm": (-0.05, 1.0, "percent (divide by 100) or pass units={'sm': '%vol'}"),
    "st": (150.0, 360.0, "degC (add 273.15) or pass units={'st': 'degC'}"),
}

_TABLE_NAMES = ("stations", "observations")
_SCHEMA_FILE = "schema.json"


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True)
class StationData:
    """Station metadata and long-format observations, validated and normalised.

    Parameters
    ----------
    stations : pandas.DataFrame
        One row per station with at least :data:`STATION_COLUMNS`.
    observations : pandas.DataFrame
        One row per value with at least :data:`OBSERVATION_COLUMNS`; values in the
        canonical unit of their variable (m3 m-3 for ``sm``, K for ``st``).

    Raises
    ------
    MissingVariableError
        If a required column is missing.
    DataError
        If a column cannot take its dtype, a station id is duplicated, an
        observation refers to a station that is not in ``stations``, a variable is
        not ``sm``/``st``, or depths are negative or inverted.
    UnitsError
        If the values of a variable are clearly not in its canonical unit.

    Notes
    -----
    The frames are copied and normalised on construction (sorted by station,
    variable, depth and time; dtypes fixed); the inputs are never modified.
    """

    stations: pd.DataFrame
    observations: pd.DataFrame

    def __post_init__(self) -> None:
        stations = normalise_stations(self.stations)
        obs = normalise_observations(self.observations)
        known = set(stations["station_id"].astype(str))
        found = [str(v) for v in pd.unique(obs["station_id"])]
        unknown = sorted(s for s in found if s not in known)
        if unknown:
            msg = (
                f"{len(unknown)} station(s) in the observations are not in the station table: "
                f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}; add their metadata "
                f"(station_id, network, lat, lon, elevation) or drop their observations."
            )
            raise DataError(msg)
        object.__setattr__(self, "stations", stations)
        object.__setattr__(self, "observations", obs)

    @classmethod
    def from_frames(
        cls,
        stations: pd.DataFrame,
        observations: pd.DataFrame,
        *,
        units: Mapping[str, str] | None = None,
    ) -> StationData:
        """Build from frames whose values may be in non-canonical units.

        Parameters
        ----------
        stations, observations : pandas.DataFrame
            As for :class:`StationData`.
        units : mapping of str to str, optional
            Unit of each variable's values as found, e.g. ``{"st": "degC", "sm": "%vol"}``;
            converted to the canonical unit with :func:`soilfuse.variables.convert_units`.

        Returns
        -------
        StationData

        Raises
        ------
        UnitsError
            If a unit is unknown or cannot be converted.
        """
        obs = observations.copy()
        for var, unit in (units or {}).items():
            if var not in STATION_VARIABLES:
                msg = f"units given for {var!r}, which is not a station variable {sorted(STATION_VARIABLES)}."
                raise UnitsError(msg)
            rows = (obs["variable"].astype(str) == var).to_numpy()
            if not rows.any():
                continue
            da = xr.DataArray(obs.loc[rows, "value"].to_numpy(dtype="float64"), attrs={"units": unit})
            obs.loc[rows, "value"] = convert_units(da, canonical_unit(var), name=var).values
        return cls(stations, obs)

    @property
    def n_stations(self) -> int:
        """Number of stations in the metadata table."""
        return len(self.stations)

    def series_keys(self) -> pd.DataFrame:
        """The distinct ``(station_id, variable, depth_from, depth_to)`` series, one per row."""
        keys = ["station_id", "variable", "depth_from", "depth_to"]
        return self.observations[keys].drop_duplicates().reset_index(drop=True)


# ---------------------------------------------------------------------- validation
def normalise_stations(stations: pd.DataFrame) -> pd.DataFrame:
    """Validate a station table and return a copy with canonical dtypes.

    Raises
    ------
    MissingVariableError
        If a column of :data:`STATION_COLUMNS` is missing.
    DataError
        If a value cannot take its column's dtype, ids are duplicated or missing,
        or coordinates are out of range.
    """
    _require(stations, STATION_COLUMNS, "station table")
    out = stations.reset_index(drop=True).copy()
    for name, dtype in {**STATION_COLUMNS, **STATION_OPTIONAL_COLUMNS}.items():
        if name in out.columns:
            out[name] = _coerce(out[name], dtype, name, "station table")
    for name in out.columns:
        if name not in STATION_COLUMNS and name not in STATION_OPTIONAL_COLUMNS:
            out[name] = _coerce_free(out[name])
    ids = out["station_id"]
    if ids.isna().any():
        msg = "The station table has rows without a station_id; give every station an id."
        raise DataError(msg)
    dup = ids[ids.duplicated()].astype(str).unique().tolist()
    if dup:
        msg = f"station_id values are duplicated in the station table: {dup[:10]}; make them unique."
        raise DataError(msg)
    lat = out["lat"].to_numpy(dtype="float64")
    lon = out["lon"].to_numpy(dtype="float64")
    bad = ~((np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))
    if bad.any():
        names = ids[bad].astype(str).tolist()
        msg = (
            f"Stations {names[:10]} have lat/lon outside [-90, 90] x [-180, 180] (or missing); "
            f"give coordinates in degrees, longitudes in -180..180."
        )
        raise DataError(msg)
    return out


def normalise_observations(observations: pd.DataFrame) -> pd.DataFrame:
    """Validate an observation table and return a sorted copy with canonical dtypes.

    Times are converted to UTC and stored timezone-naive as ``datetime64[ns]``.

    Raises
    ------
    MissingVariableError
        If a column of :data:`OBSERVATION_COLUMNS` is missing.
    DataError
        If a value cannot take its dtype, a time or station id is missing, a
        variable is unknown, or a depth is negative or inverted.
    UnitsError
        If the values of a variable are clearly not in its canonical unit.
    """
    _require(observations, OBSERVATION_COLUMNS, "observation table")
    out = observations.reset_index(drop=True)  # a new frame: the input is never modified
    for name, dtype in {**OBSERVATION_COLUMNS, **_OBS_OPTIONAL}.items():
        if name in out.columns:
            out[name] = _coerce(out[name], dtype, name, "observation table")
    for name in ("station_id", "time", "variable"):
        if out[name].isna().any():
            msg = f"The observation table has {int(out[name].isna().sum())} rows without '{name}'; fill or drop them."
            raise DataError(msg)
    variables = {str(v) for v in pd.unique(out["variable"])}
    unknown = sorted(variables - set(STATION_VARIABLES))
    if unknown:
        msg = (
            f"Unknown station variable(s) {unknown}; station tables hold {sorted(STATION_VARIABLES)} "
            f"(soil moisture, soil temperature). Rename them or drop those rows."
        )
        raise DataError(msg)
    top = out["depth_from"].to_numpy(dtype="float64")
    bottom = out["depth_to"].to_numpy(dtype="float64")
    bad = ~((top >= 0) & (bottom >= top))
    if bad.any():
        example = out.loc[bad, ["station_id", "depth_from", "depth_to"]].drop_duplicates().head(5)
        msg = (
            f"{int(bad.sum())} observations have negative, missing or inverted depths, e.g. "
            f"{example.to_dict('records')}; depths are cm below the surface with depth_from <= depth_to."
        )
        raise DataError(msg)
    out["flag"] = out["flag"].fillna("")
    _check_units(out)
    keys = ["station_id", "variable", "depth_from", "depth_to", "time"]
    if not _is_sorted(out, keys):
        out = out.sort_values(keys, kind="stable").reset_index(drop=True)
    return out


def _is_sorted(df: pd.DataFrame, keys: list[str]) -> bool:
    """True if ``df`` is in lexicographic order of ``keys`` (skips a copy of long sorted tables)."""
    if len(df) < 2:
        return True
    undecided = np.ones(len(df) - 1, dtype=bool)  # pairs equal on the keys seen so far
    for key in keys:
        col = df[key]
        if isinstance(col.dtype, pd.StringDtype) or col.dtype == object:
            col = pd.Series(pd.factorize(col, sort=True)[0])
        v = col.to_numpy()
        before, after = v[:-1], v[1:]
        if np.any(undecided & (after < before)):
            return False
        undecided &= after == before
    return True


def _require(df: pd.DataFrame, columns: Mapping[str, str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        msg = f"The {what} must be a pandas DataFrame; got {type(df).__name__}."
        raise DataError(msg)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = (
            f"The {what} lacks column(s) {missing}; it has {list(map(str, df.columns))}. "
            f"Required: {list(columns)} (see docs/conventions.md, 'Station data model')."
        )
        raise MissingVariableError(msg)


def as_string(series: pd.Series) -> pd.Series:
    """``series`` as pandas' ``string`` dtype; categoricals are decoded without a Python string per value.

    pandas converts a categorical to ``string`` through an object array, one Python
    string per row (about 2 s for 5 million rows); with the pyarrow string storage the
    categories are decoded by pyarrow instead (25 times faster).
    """
    if isinstance(series.dtype, pd.CategoricalDtype) and pd.StringDtype().storage == "pyarrow":
        import pyarrow as pa

        codes = series.cat.codes.to_numpy()
        names = pa.array([str(c) for c in series.cat.categories], pa.string())
        decoded = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), names).dictionary_decode()
        return pd.Series(pd.array(decoded, dtype="string"), index=series.index, name=series.name)
    return series.astype("string")


def _coerce(series: pd.Series, dtype: str, name: str, what: str) -> pd.Series:
    try:
        if dtype == "datetime64[ns]":
            return _to_utc_naive(series)
        if dtype == "string":
            return as_string(series)
        if dtype == "Int64":
            values = pd.to_numeric(series, errors="raise")
            return values.astype("Int64")
        return pd.to_numeric(series, errors="raise").astype(dtype)
    except (TypeError, ValueError) as err:
        msg = f"Column '{name}' of the {what} cannot be read as {dtype}: {err}. Fix the values or the column."
        raise DataError(msg) from err


def _coerce_free(series: pd.Series) -> pd.Series:
    """Text columns become ``string``; other free columns keep their dtype."""
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        non_null = series.dropna()
        if non_null.map(lambda v: isinstance(v, str)).all():
            return series.astype("string")
    return series


def _to_utc_naive(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        values = series
    else:
        values = pd.to_datetime(series, utc=True, format="ISO8601").dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def _check_units(obs: pd.DataFrame) -> None:
    values = obs["value"].to_numpy(dtype="float64")
    is_good = (obs["flag"] == "G").to_numpy(dtype=bool, na_value=False)
    for var, (lo, hi, hint) in _UNIT_SANITY.items():
        rows = (obs["variable"] == var).to_numpy(dtype=bool, na_value=False) & np.isfinite(values)
        good = rows & is_good
        sample = values[good] if good.any() else values[rows]
        if sample.size == 0:
            continue
        median = float(np.median(sample))
        if not lo <= median <= hi:
            msg = (
                f"Values of '{var}' have median {median:.4g}, which is not plausible in "
                f"{STATION_VARIABLES[var]}; they look like {hint}."
            )
            raise UnitsError(msg)


# ---------------------------------------------------------------------- files
def write_stations(
    data: StationData,
    path: str | Path,
    *,
    format: Literal["parquet", "csv"] = "parquet",
) -> dict[str, Path]:
    """Write ``stations`` and ``observations`` tables into a folder.

    Parameters
    ----------
    data : StationData
        The tables to write.
    path : str or Path
        Folder, created if needed; files ``stations.<ext>`` and
        ``observations.<ext>`` are written into it (plus ``schema.json`` for CSV).
    format : {"parquet", "csv"}
        File format. Both round-trip exactly through :func:`read_stations`.

    Returns
    -------
    dict of str to Path
        The files written, by table name.

    Raises
    ------
    UnsupportedFileError
        If ``format`` is not one of the two.
    """
    if format not in ("parquet", "csv"):
        msg = f"Unknown station table format {format!r}; use 'parquet' or 'csv'."
        raise UnsupportedFileError(msg)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"stations": data.stations, "observations": data.observations}
    written: dict[str, Path] = {}
    for name, table in tables.items():
        target = folder / f"{name}.{format}"
        if format == "parquet":
            table.to_parquet(target, index=False)
        else:
            table.to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")
        written[name] = target
    if format == "csv":
        schema = {name: {str(c): str(t) for c, t in table.dtypes.items()} for name, table in tables.items()}
        target = folder / _SCHEMA_FILE
        target.write_text(json.dumps(schema, indent=1))
        written["schema"] = target
    logger.info("wrote %d stations and %d observations to %s", data.n_stations, len(data.observations), folder)
    return written


def read_stations(
    path: str | Path,
    *,
    variables: Sequence[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> StationData:
    """Read station tables written by :func:`write_stations` (or by the synthetic twin).

    Parameters
    ----------
    path : str or Path
        A folder holding ``stations.{parquet,csv}`` and ``observations.{parquet,csv}``
        (formats may differ), or one of those two files (the other is looked up
        beside it).
    variables : sequence of str, optional
        Keep only observations of these variables (e.g. ``["st"]``).
    start, end : pandas.Timestamp, optional
        Keep only observations with ``start <= time < end``. With Parquet these
        filters are applied while reading, so memory follows what is kept.

    Returns
    -------
    StationData

    Raises
    ------
    DataError
        If the folder or one of the tables is missing.
    """
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not folder.is_dir():
        msg = f"Station folder {folder} does not exist; give a folder holding stations.* and observations.*."
        raise DataError(msg)
    schema: dict[str, dict[str, str]] = {}
    if (folder / _SCHEMA_FILE).is_file():
        schema = json.loads((folder / _SCHEMA_FILE).read_text())
    filters: list[tuple[str, str, Any]] = []
    if variables is not None:
        filters.append(("variable", "in", list(variables)))
    if start is not None:
        filters.append(("time", ">=", pd.Timestamp(start)))
    if end is not None:
        filters.append(("time", "<", pd.Timestamp(end)))
    frames = {}
    for name in _TABLE_NAMES:
        file = _find_table(folder, name)
        frames[name] = _read_table(file, schema.get(name, {}), filters if name == "observations" else [])
    return StationData(frames["stations"], frames["observations"])


def _find_table(folder: Path, name: str) -> Path:
    for ext in ("parquet", "csv"):
        candidate = folder / f"{name}.{ext}"
        if candidate.is_file():
            return candidate
    present = sorted(f.name for f in folder.iterdir())
    msg = f"No {name}.parquet or {name}.csv in {folder} (found: {present[:20]}); write it with write_stations."
    raise DataError(msg)


def _read_table(file: Path, schema: Mapping[str, str], filters: Sequence[tuple[str, str, Any]] = ()) -> pd.DataFrame:
    if file.suffix == ".parquet":
        return pd.read_parquet(file, filters=list(filters) or None)
    known = {**STATION_COLUMNS, **STATION_OPTIONAL_COLUMNS, **OBSERVATION_COLUMNS, **_OBS_OPTIONAL}
    dtypes = {**{k: v for k, v in known.items()}, **schema}
    header = pd.read_csv(file, nrows=0).columns
    text_cols = [c for c in header if dtypes.get(c) in ("string", "str", "object")]
    time_cols = [c for c in header if str(dtypes.get(c, "")).startswith("datetime64")]
    read_dtypes: dict[str, Any] = {c: "string" for c in text_cols}
    for c in header:
        if c not in read_dtypes and c not in time_cols and c in dtypes:
            read_dtypes[c] = dtypes[c]
    # Only empty cells are missing: "NA" is a valid station id. CSV cannot tell an empty
    # text from a missing one; both are read as missing (the flag column reads back "").
    options: dict[str, Any] = {}
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 3 parses floats round-trip by default
        options["float_precision"] = "round_trip"
    df = pd.read_csv(file, dtype=read_dtypes, keep_default_na=False, na_values=[""], **options)
    for c in text_cols:
        df[c] = df[c].astype("string")
    for c in time_cols:
        df[c] = pd.to_datetime(df[c], format="ISO8601").astype(dtypes[c])
    return _apply_filters(df, filters)


def _apply_filters(df: pd.DataFrame, filters: Sequence[tuple[str, str, Any]]) -> pd.DataFrame:
    """Rows of a CSV-read table passing the same filters Parquet applies while reading."""
    keep = np.ones(len(df), dtype=bool)
    for column, op, value in filters:
        col = df[column]
        if op == "in":
            keep &= col.astype(str).isin(value).to_numpy()
        elif op == ">=":
            keep &= (col >= value).to_numpy()
        else:
            keep &= (col < value).to_numpy()
    return df if keep.all() else df[keep].reset_index(drop=True)


# ---------------------------------------------------------------------- helpers
def select(
    data: StationData,
    *,
    stations: Iterable[str] | None = None,
    variable: str | None = None,
    depth: tuple[float, float] | str | None = None,
    start: Any = None,
    end: Any = None,
    flags: Sequence[str] | None = None,
) -> StationData:
    """Subset of a :class:`StationData` by station, variable, depth, period and flag.

    Parameters
    ----------
    data : StationData
    stations : iterable of str, optional
        Station ids to keep; the metadata table is reduced to them.
    variable : {"sm", "st"}, optional
    depth : tuple of float or str, optional
        ``(depth_from, depth_to)`` in cm, or a layer label (``"0-5cm"``, ``"5cm"``).
    start, end : datetime-like, optional
        Inclusive time bounds (UTC).
    flags : sequence of str, optional
        Keep only values whose ``flag`` is one of these (e.g. ``["G"]``).

    Returns
    -------
    StationData
    """
    obs = data.observations
    keep = np.ones(len(obs), dtype=bool)
    meta = data.stations
    if stations is not None:
        wanted = {str(s) for s in stations}
        keep &= obs["station_id"].astype(str).isin(wanted).to_numpy()
        meta = meta[meta["station_id"].astype(str).isin(wanted)]
    if variable is not None:
        keep &= (obs["variable"].astype(str) == variable).to_numpy()
    if depth is not None:
        top, bottom = _depth_bounds(depth)
        keep &= np.isclose(obs["depth_from"].to_numpy(), top) & np.isclose(obs["depth_to"].to_numpy(), bottom)
    if start is not None:
        keep &= (obs["time"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (obs["time"] <= pd.Timestamp(end)).to_numpy()
    if flags is not None:
        keep &= obs["flag"].astype(str).isin(list(flags)).to_numpy()
    return StationData(meta, obs[keep])


def _depth_bounds(depth: tuple[float, float] | str) -> tuple[float, float]:
    if isinstance(depth, str):
        from soilfuse.io.cf import parse_layer

        return parse_layer(depth)
    top, bottom = depth
    return float(top), float(bottom)


def to_wide(
    data: StationData | pd.DataFrame,
    *,
    variable: str,
    value: str = "value",
) -> pd.DataFrame:
    """Pivot observations of one variable to a time x series table.

    Parameters
    ----------
    data : StationData or pandas.DataFrame
        Observations (long format).
    variable : {"sm", "st"}
    value : str
        Column to pivot (``"value"`` by default).

    Returns
    -------
    pandas.DataFrame
        Index ``time``; columns a MultiIndex ``(station_id, layer)`` where ``layer`` is
        the sensor's label (``"0-5cm"``, ``"5cm"``); a single level ``station_id``
        when each station has one depth. Duplicated (station, depth, time) rows are
        averaged.

    Raises
    ------
    DataError
        If there is no observation of ``variable``.
    """
    obs = data.observations if isinstance(data, StationData) else data
    sub = obs[(obs["variable"].astype(str) == variable).to_numpy()]
    if sub.empty:
        present = sorted(pd.unique(obs["variable"].astype(str)))
        msg = f"No '{variable}' observations to pivot; variables present: {present}."
        raise DataError(msg)
    pairs = sub[["depth_from", "depth_to"]].drop_duplicates()
    labels = {(t, b): layer_label(t, b) for t, b in pairs.itertuples(index=False)}
    layer = pd.Series(
        [labels[(t, b)] for t, b in zip(sub["depth_from"], sub["depth_to"], strict=True)], index=sub.index
    )
    frame = pd.DataFrame({
        "time": sub["time"], "station_id": sub["station_id"].astype(str), "layer": layer,
        "v": sub[value].astype("float64"),
    })
    wide = frame.pivot_table(index="time", columns=["station_id", "layer"], values="v", aggfunc="mean")
    wide.columns.names = ["station_id", "layer"]
    per_station = frame.groupby("station_id")["layer"].nunique()
    if (per_station == 1).all():
        wide.columns = wide.columns.droplevel("layer")
    return wide


def locate_on_grid(
    data: StationData | pd.DataFrame,
    grid: Grid,
    *,
    drop_outside: bool = False,
) -> Any:
    """Add the ``row`` and ``col`` of the grid cell holding each station.

    Parameters
    ----------
    data : StationData or pandas.DataFrame
        Stations (the metadata table, or a :class:`StationData`).
    grid : Grid
        Target grid; station ``lon``/``lat`` are transformed to its CRS.
    drop_outside : bool
        Drop stations outside the grid (with a :class:`SoilfuseWarning` naming them)
        instead of raising.

    Returns
    -------
    Same type as ``data``
        With integer ``row`` and ``col`` columns in the station table.

    Raises
    ------
    DataError
        If stations lie outside the grid and ``drop_outside`` is false; the message
        names them.
    """
    stations = data.stations if isinstance(data, StationData) else normalise_stations(data)
    rows, cols = grid.index(stations["lon"].to_numpy(), stations["lat"].to_numpy(), crs="EPSG:4326")
    outside = rows < 0
    out = stations.copy()
    out["row"] = pd.array(rows, dtype="Int64")
    out["col"] = pd.array(cols, dtype="Int64")
    if outside.any():
        names = out.loc[outside, "station_id"].astype(str).tolist()
        where = out.loc[outside, ["station_id", "lon", "lat"]].head(10).to_dict("records")
        if not drop_outside:
            msg = (
                f"{len(names)} station(s) lie outside the grid with bounds {grid.bounds}: {where}; "
                f"enlarge the region or pass drop_outside=True to drop them."
            )
            raise DataError(msg)
        warnings.warn(
            f"Dropping {len(names)} station(s) outside the grid: {names[:20]}",
            SoilfuseWarning, stacklevel=2,
        )
        out = out[~outside].reset_index(drop=True)
    if isinstance(data, StationData):
        keep = data.observations["station_id"].isin(out["station_id"]).to_numpy()
        return StationData(out, data.observations[keep])
    return out
