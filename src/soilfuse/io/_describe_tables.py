"""Table-like inputs for :mod:`soilfuse.io.describe`: ISMN files, zips, station and other tables.

Split from :mod:`soilfuse.io.describe` to keep both modules short; each handler fills
the ``info`` dict :func:`soilfuse.io.describe.describe` returns (see there for the keys).
CSV files are read in chunks and Parquet files by row-group batches, so their
statistics never need the whole table in memory (station tables, which are grouped
by series, are the exception: they are read whole).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TABLE_HANDLERS", "extent_dict", "iso", "station_line"]

_CSV_CHUNK = 200_000
_STATIC_KEYS = ("sand", "silt", "clay", "organic_carbon", "saturation", "land_cover", "koppen",
                "climate_zone")


def iso(t: pd.Timestamp) -> str:
    """ISO text of a time stamp: the date alone at midnight, else date and time."""
    t = pd.Timestamp(t)
    return t.strftime("%Y-%m-%d") if t == t.normalize() else t.strftime("%Y-%m-%dT%H:%M:%S")


def extent_dict(west: float, east: float, south: float, north: float, of: str) -> dict[str, Any]:
    """An ``extent`` entry: bounds in degrees and what they are the extent of."""
    return {"west": float(west), "east": float(east), "south": float(south), "north": float(north),
            "extent_of": of}


def station_line(st: Mapping[str, Any]) -> str:
    """One line of text about a station summary (used by ``format_description``)."""
    parts = [str(st.get("station_id", "?"))]
    if st.get("lat") is not None:
        parts.append(f"at {st['lat']:.5g} N {st['lon']:.5g} E")
    if st.get("variable"):
        parts.append(f"{st['variable']} {st.get('depth_from', '?'):g}-{st.get('depth_to', '?'):g} cm")
    if st.get("start"):
        parts.append(f"{st['start']} .. {st['end']}")
    if st.get("records") is not None:
        parts.append(f"{st['records']} records")
    if st.get("flags"):
        parts.append("flags " + ", ".join(f"{k}: {v}" for k, v in st["flags"].items()))
    static = [f"{k} {st[k]}" for k in _STATIC_KEYS if st.get(k) is not None]
    if static:
        parts.append(", ".join(static))
    return "; ".join(parts)


def _flag_counts(flags: pd.Series) -> dict[str, int]:
    """Records per flag value, in flag order; flags that do not occur are left out."""
    counts = flags.astype("string").fillna("").value_counts().sort_index()
    return {str(k): int(v) for k, v in counts.items() if v > 0}


def _ismn_summary(parsed: Any) -> dict[str, Any]:
    rec = parsed.records
    return {
        "station_id": f"{parsed.network}:{parsed.station}", "network": parsed.network,
        "station": parsed.station, "lat": parsed.lat, "lon": parsed.lon,
        "elevation": None if np.isnan(parsed.elevation) else parsed.elevation,
        "depth_from": parsed.depth_from, "depth_to": parsed.depth_to, "variable": parsed.variable,
        "sensor": parsed.sensor, "layout": parsed.layout,
        "start": iso(rec["time"].min()) if len(rec) else None,
        "end": iso(rec["time"].max()) if len(rec) else None,
        "records": len(rec), "missing_values": int(rec["value"].isna().sum()),
        "flags": _flag_counts(rec["flag"]),
    }


def _ismn(p: Path, info: dict[str, Any], nan: bool) -> None:
    from soilfuse.io.ismn import parse_ismn_filename, read_ismn_file

    info.update(kind="ismn", format="ISMN station record (.stm)")
    parsed = read_ismn_file(p)
    if parsed is None:
        fields = parse_ismn_filename(p.name)
        info["attributes"] = {k: str(v) for k, v in fields.items()}
        info["notes"].append(f"ISMN variable {fields['var']!r} is not read by soilfuse")
        return
    _station_info([_ismn_summary(parsed)], info)


def _station_info(stations: list[dict[str, Any]], info: dict[str, Any]) -> None:
    info["stations"] = stations
    located = [s for s in stations if s.get("lat") is not None]
    if located:
        lats = [s["lat"] for s in located]
        lons = [s["lon"] for s in located]
        info["extent"] = extent_dict(min(lons), max(lons), min(lats), max(lats), "station locations")
        info["crs"] = "EPSG:4326"
    starts = [s["start"] for s in stations if s.get("start")]
    if starts:
        count = sum(s.get("records") or 0 for s in stations)
        span = {"start": min(starts), "end": max(s["end"] for s in stations if s.get("end")), "count": count}
        info["times"] = {"records": span}
        info["time"] = {**span, "coord": "records"}


def _zip(p: Path, info: dict[str, Any], nan: bool) -> None:
    from soilfuse.io.ismn import read_ismn_file, read_static_variables

    info.update(kind="zip", format="ZIP archive")
    members = []
    stations = []
    with zipfile.ZipFile(p) as archive:
        for item in archive.infolist():
            if item.is_dir():
                continue
            entry: dict[str, Any] = {"name": item.filename, "size_bytes": item.file_size}
            name = PurePosixPath(item.filename).name
            if name.lower().endswith(".stm"):
                parsed = read_ismn_file(archive.read(item), name=name)
                if parsed is not None:
                    entry["station"] = _ismn_summary(parsed)
                    stations.append(entry["station"])
            elif name.lower().endswith("_static_variables.csv"):
                entry["static"] = read_static_variables(archive.read(item))
            members.append(entry)
    info["members"] = members
    _station_info(stations, info)
    info.pop("stations")


def _csv(p: Path, info: dict[str, Any], nan: bool) -> None:
    with p.open("r", errors="replace") as fh:
        header = fh.readline()
    if header.startswith("quantity_name;"):
        _ismn_static(p, info)
        return
    columns = [c.strip() for c in header.rstrip("\n").split(",")]
    if {"station_id", "time", "value"} <= set(columns) or {"station_id", "lat", "lon"} <= set(columns):
        _station_table(p, info, pd.read_csv(p, low_memory=False), "CSV")
        return
    info.update(kind="table", format="CSV")
    _table_stats(pd.read_csv(p, chunksize=_CSV_CHUNK, low_memory=False), info, nan)


def _parquet(p: Path, info: dict[str, Any], nan: bool) -> None:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(p)
    columns = pf.schema_arrow.names
    if {"station_id", "time", "value"} <= set(columns) or {"station_id", "lat", "lon"} <= set(columns):
        _station_table(p, info, pf.read().to_pandas(), "Parquet")
        return
    info.update(kind="table", format="Parquet")
    _table_stats((b.to_pandas() for b in pf.iter_batches(batch_size=_CSV_CHUNK)), info, nan)


def _table_stats(chunks: Iterator[pd.DataFrame], info: dict[str, Any], nan: bool) -> None:
    rows = 0
    missing: dict[str, int] = {}
    dtypes: dict[str, str] = {}
    tmin = tmax = None
    time_col = None
    for chunk in chunks:
        if time_col is None:
            time_col = _time_column(chunk)
        rows += len(chunk)
        for col in chunk.columns:
            missing[str(col)] = missing.get(str(col), 0) + int(chunk[col].isna().sum())
            dtypes.setdefault(str(col), str(chunk[col].dtype))
        if time_col is not None:
            t = pd.to_datetime(chunk[time_col], errors="coerce")
            lo, hi = t.min(), t.max()
            tmin = lo if tmin is None or lo < tmin else tmin
            tmax = hi if tmax is None or hi > tmax else tmax
    info["rows"] = rows
    info["columns"] = list(missing)
    info["variables"] = [{"name": c, "dtype": dtypes[c], "nan_fraction": (missing[c] / rows if rows else None)
                          if nan else None} for c in missing]
    if time_col is not None and tmin is not None and not pd.isna(tmin):
        span = {"start": iso(tmin), "end": iso(tmax), "count": rows}
        info["times"] = {time_col: span}
        info["time"] = {**span, "coord": time_col}


def _time_column(frame: pd.DataFrame) -> str | None:
    for col in frame.columns:
        if str(col).lower() in ("time", "date", "datetime", "timestamp") or str(col).startswith("Unnamed: 0"):
            parsed = pd.to_datetime(frame[col].head(50), errors="coerce", format="mixed")
            if parsed.notna().mean() > 0.9:
                return str(col)
    return None


def _ismn_static(p: Path, info: dict[str, Any]) -> None:
    from soilfuse.io.ismn import read_static_variables

    table = pd.read_csv(p, sep=";", dtype=str, keep_default_na=False)
    key = p.name[: -len("_static_variables.csv")] if p.name.endswith("_static_variables.csv") else p.stem
    parts = key.split("_", 2)
    station_id = f"{parts[1]}:{parts[2]}" if len(parts) == 3 else key
    info.update(kind="ismn-static", format="ISMN static variables (CSV, ';')", rows=len(table),
                columns=[c for c in table.columns if not c.startswith("Unnamed")])
    info["stations"] = [{"station_id": station_id, **read_static_variables(p)}]


def _station_table(p: Path, info: dict[str, Any], frame: pd.DataFrame, fmt: str) -> None:
    info.update(kind="station-table", format=f"soilfuse station table ({fmt})", rows=len(frame),
                columns=[str(c) for c in frame.columns])
    if "value" in frame.columns:
        _observations_info(frame, info, _sibling_locations(p.parent))
    else:
        stations = [{"station_id": str(r.station_id), "lat": float(r.lat), "lon": float(r.lon)}
                    for r in frame[["station_id", "lat", "lon"]].itertuples()]
        _station_info(stations, info)
        if "network" in frame.columns:
            info["attributes"] = {"networks": ", ".join(sorted(map(str, frame["network"].dropna().unique())))}


def _sibling_locations(folder: Path) -> pd.DataFrame | None:
    """``lat``/``lon`` by ``station_id`` from a stations table beside an observations table."""
    for ext in ("parquet", "csv"):
        file = folder / f"stations.{ext}"
        if file.is_file():
            columns = ["station_id", "lat", "lon"]
            table = (pd.read_parquet(file, columns=columns) if ext == "parquet"
                     else pd.read_csv(file, usecols=columns, dtype={"station_id": str}, keep_default_na=False))
            return table.set_index("station_id")
    return None


def _observations_info(obs: pd.DataFrame, info: dict[str, Any], locations: pd.DataFrame | None) -> None:
    obs = obs.assign(time=pd.to_datetime(obs["time"]))
    keys = [c for c in ("station_id", "variable", "depth_from", "depth_to") if c in obs.columns]
    stations = []
    for key, group in obs.groupby(keys, sort=True):
        values = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        entry: dict[str, Any] = {**{k: (float(v) if k.startswith("depth") else str(v)) for k, v in values.items()},
                                 "start": iso(group["time"].min()), "end": iso(group["time"].max()),
                                 "records": len(group)}
        if locations is not None and entry["station_id"] in locations.index:
            entry["lat"], entry["lon"] = (float(v) for v in locations.loc[entry["station_id"], ["lat", "lon"]])
        if "flag" in group.columns:
            entry["flags"] = _flag_counts(group["flag"])
        stations.append(entry)
    _station_info(stations, info)
    info["attributes"] = {"stations": int(obs["station_id"].nunique()), "series": len(stations)}


def _station_folder(p: Path, info: dict[str, Any], nan: bool) -> None:
    from soilfuse.io.stations import read_stations

    data = read_stations(p)
    info.update(kind="station-table", format="soilfuse station folder",
                rows=len(data.observations), columns=list(map(str, data.observations.columns)))
    locations = data.stations.assign(station_id=data.stations["station_id"].astype(str)).set_index("station_id")
    _observations_info(data.observations, info, locations)


#: Handlers by detected kind, merged into :mod:`soilfuse.io.describe`'s dispatch table.
TABLE_HANDLERS: Mapping[str, Callable[[Path, dict[str, Any], bool], None]] = {
    "ismn": _ismn, "zip": _zip, "csv": _csv, "parquet": _parquet, "station-folder": _station_folder,
}
