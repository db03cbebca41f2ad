"""Read International Soil Moisture Network (ISMN) downloads into :class:`StationData`.

ISMN text files (``*.stm``) come in two layouts, both read here:

* **header_values**: one header line (CSE id, network, station, lat, lon, elevation,
  depth from, depth to (m), sensor), then ``YYYY/MM/DD HH:MM value flag [origin_flag]``;
* **ceop_sep**: one record per line with the nominal and actual timestamps, CSE id,
  network, station, lat, lon, elevation, depths (m), value, flag, origin flag.

Quirks handled: old-Mac CR-only and Windows CRLF line endings, literal ``NaN``,
missing origin flags, the ISMN missing value ``-9999`` (read as NaN, its flag ``M``
kept), the ``-99.9`` elevation fill (NaN), comma-joined flags such as ``D01,D03``
(kept as strings, never split), implausible values such as ``-0.99`` or ``655.35``
(kept with the non-``G`` flag the file gives them). The variable comes from the file
name (``sm`` -> ``sm`` in m3 m-3; ``ts`` -> ``st``, converted from degC to K);
other ISMN variables (air temperature, precipitation...) are skipped. Depths come from
the header (header_values) or the records (ceop_sep), converted from m to cm; the
file name is the fallback. ``*_static_variables.csv`` files (semicolon-separated:
HWSD texture, organic carbon and saturation for 0-30 and 30-100 cm, ESA CCI land
cover, Koeppen-Geiger class) add station columns ``sand``, ``silt``, ``clay`` (%),
``organic_carbon`` (% weight), ``saturation`` (m3 m-3) for 0-30 cm (deeper values
carry the suffix ``_30_100cm``), ``land_cover_cci`` and ``land_cover`` (soilfuse
code, :data:`CCI_TO_LAND_COVER`), ``koppen`` and ``climate_zone``
(:func:`koppen_to_climate_zone`). Station ids are ``"<network>:<station>"``.

Why not the ``ismn`` package (TU Wien, 1.5.4)? It was installed and tried on the
project's real files: it needs the ISMN download tree (``network/station/files``)
and fails on a flat folder of ``.stm`` files such as the OZNET sample
(``TypeError`` while building its metadata collection); it writes a metadata cache
and log beside the data (or in ``meta_path``) on first use; it expects exactly one
static-variables file per station and logs every file without one as malformed;
it returns per-sensor objects rather than one long table; and it pulls
``pygeogrids``, ``repurpose``, ``pyresample``, ``pynetcf`` and ``shapely`` for
features soilfuse does not use. The two layouts are simple whitespace tables, so
this module reads them with :func:`pandas.read_csv` (C engine) after normalising
line endings, which also works inside ``.zip`` archives without unpacking.

Usage
-----
>>> from soilfuse.io.ismn import read_ismn          # doctest: +SKIP
>>> data = read_ismn("insitu_ismn/oznet_murrumbidgee")   # doctest: +SKIP
>>> data.n_stations                                   # doctest: +SKIP
18
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from soilfuse.exceptions import DataError, UnsupportedFileError
from soilfuse.io.stations import StationData

__all__ = [
    "CCI_TO_LAND_COVER",
    "ISMN_VARIABLES",
    "IsmnFile",
    "koppen_to_climate_zone",
    "parse_ismn_filename",
    "read_ismn",
    "read_ismn_file",
    "read_static_variables",
]

logger = logging.getLogger(__name__)

#: ISMN variable short names read, mapped to (canonical name, scale, offset to canonical unit).
ISMN_VARIABLES: Mapping[str, tuple[str, float, float]] = {
    "sm": ("sm", 1.0, 0.0),       # m3 m-3 already
    "ts": ("st", 1.0, 273.15),    # degC -> K
}

#: ESA CCI land-cover class -> soilfuse land-cover code (1 forest, 2 grassland,
#: 3 cropland, 4 barren, 5 water, 6 urban). Shrubland, lichens and herbaceous
#: mosaics count as grassland; sparse vegetation, bare areas and ice as barren.
CCI_TO_LAND_COVER: Mapping[int, int] = {
    **dict.fromkeys((10, 11, 12, 20, 30), 3),
    **dict.fromkeys((50, 60, 61, 62, 70, 71, 72, 80, 81, 82, 90, 100, 160, 170), 1),
    **dict.fromkeys((40, 110, 120, 121, 122, 130, 140, 180), 2),
    **dict.fromkeys((150, 151, 152, 153, 200, 201, 202, 220), 4),
    210: 5,
    190: 6,
}

_MISSING_VALUE = -9999.0
_ELEVATION_FILL = -99.9
_NAME_RE = re.compile(
    r"^(?P<prefix>.+)_(?P<var>[A-Za-z]+)_(?P<depth_from>-?\d+(?:\.\d+)?)_(?P<depth_to>-?\d+(?:\.\d+)?)"
    r"_(?P<sensor>.*)_(?P<start>\d{8})_(?P<end>\d{8})\.stm$"
)
_HEADER_RE = re.compile(
    r"^\s*(?P<cse>\S+)\s+(?P<network>\S+)\s+(?P<station>.+?)\s+(?P<lat>-?\d+(?:\.\d*)?)\s+"
    r"(?P<lon>-?\d+(?:\.\d*)?)\s+(?P<elevation>-?\d+(?:\.\d*)?)\s+(?P<depth_from>-?\d+(?:\.\d*)?)\s+"
    r"(?P<depth_to>-?\d+(?:\.\d*)?)\s*(?P<sensor>.*?)\s*$"
)
_DATE_START_RE = re.compile(r"^\d{4}/\d{2}/\d{2}\s")
_CEOP_COLUMNS = [
    "date", "clock", "date_actual", "clock_actual", "cse", "network", "station",
    "lat", "lon", "elevation", "depth_from", "depth_to", "value", "flag", "origin_flag",
]
_HV_COLUMNS = ["date", "clock", "value", "flag", "origin_flag"]


@dataclass(frozen=True)
class IsmnFile:
    """One ISMN record file: station metadata and its values.

    Attributes
    ----------
    network, station : str
        As written in the file (``S_Coleambally``, not the file name's ``S-Coleambally``).
    lat, lon : float
        Degrees.
    elevation : float
        Metres; NaN where the file holds the ``-99.9`` fill.
    depth_from, depth_to : float
        cm, positive down.
    variable : str
        Canonical name (``"sm"`` or ``"st"``).
    sensor : str
    layout : {"header_values", "ceop_sep"}
    key : str
        File-name prefix ``<CSE>_<NETWORK>_<STATION>`` (links static variables).
    records : pandas.DataFrame
        ``time``, ``value`` (canonical unit), ``flag``, ``origin_flag``.
    """

    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    variable: str
    sensor: str
    layout: str
    key: str
    records: pd.DataFrame


def parse_ismn_filename(name: str) -> dict[str, str | float]:
    """Fields of an ISMN file name.

    Parameters
    ----------
    name : str
        ``<CSE>_<NETWORK>_<STATION>_<var>_<from m>_<to m>_<sensor>_<start>_<end>.stm``.

    Returns
    -------
    dict
        ``prefix``, ``var``, ``depth_from``, ``depth_to`` (cm), ``sensor``,
        ``start``, ``end``.

    Raises
    ------
    UnsupportedFileError
        If the name does not follow the ISMN pattern.

    Examples
    --------
    >>> f = parse_ismn_filename("OZNET_OZNET_Cox_sm_0.000000_0.050000_Stevens-Hydra-Probe_20170101_20220101.stm")
    >>> f["var"], f["depth_from"], f["depth_to"]
    ('sm', 0.0, 5.0)
    """
    match = _NAME_RE.match(PurePosixPath(name).name)
    if match is None:
        msg = (
            f"{name!r} is not an ISMN file name; expected "
            f"'<CSE>_<NETWORK>_<STATION>_<var>_<from>_<to>_<sensor>_<YYYYMMDD>_<YYYYMMDD>.stm'."
        )
        raise UnsupportedFileError(msg)
    out: dict[str, str | float] = dict(match.groupdict())
    out["depth_from"] = _m_to_cm(float(match["depth_from"]))
    out["depth_to"] = _m_to_cm(float(match["depth_to"]))
    return out


def _m_to_cm(metres: float) -> float:
    # Depths are given to the micrometre; rounding removes binary noise (0.0508 m -> 5.08 cm).
    return round(metres * 100.0, 6)


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_ismn_file(source: str | Path | bytes, name: str | None = None) -> IsmnFile | None:
    """Read one ISMN ``.stm`` file (either layout).

    Parameters
    ----------
    source : str, Path or bytes
        Path of the file, or its raw bytes (e.g. from a zip member).
    name : str, optional
        File name when ``source`` is bytes (it carries the variable and depths).

    Returns
    -------
    IsmnFile or None
        ``None`` when the file holds a variable soilfuse does not read (see
        :data:`ISMN_VARIABLES`).

    Raises
    ------
    UnsupportedFileError
        If the name or the content does not follow an ISMN layout.
    """
    if isinstance(source, bytes):
        raw, fname = source, name or "<bytes>"
    else:
        raw, fname = Path(source).read_bytes(), name or Path(source).name
    fields = parse_ismn_filename(fname)
    var = str(fields["var"])
    if var not in ISMN_VARIABLES:
        logger.info("skipping %s: ISMN variable %r is not read (only %s)", fname, var, sorted(ISMN_VARIABLES))
        return None
    text = _decode(raw)
    first, _, body = text.partition("\n")
    if _DATE_START_RE.match(first):
        meta, table = _parse_ceop(text, fname)
        layout = "ceop_sep"
    else:
        meta = _parse_header(first, fname)
        table = _read_table(body, _HV_COLUMNS, fname)
        layout = "header_values"
    canonical, scale, offset = ISMN_VARIABLES[var]
    value = table["value"].to_numpy(dtype="float64")
    value = np.where(value == _MISSING_VALUE, np.nan, value) * scale + offset
    time = pd.to_datetime(table["date"] + " " + table["clock"], format="%Y/%m/%d %H:%M")
    records = pd.DataFrame({
        "time": time.astype("datetime64[ns]"),
        "value": value,
        "flag": table["flag"].fillna("").astype("string"),
        "origin_flag": table["origin_flag"].fillna("").astype("string"),
    })
    depth_from, depth_to = _choose_depths(meta, fields, fname)
    elevation = float(meta["elevation"])
    return IsmnFile(
        network=str(meta["network"]), station=str(meta["station"]),
        lat=float(meta["lat"]), lon=float(meta["lon"]),
        elevation=np.nan if np.isclose(elevation, _ELEVATION_FILL) else elevation,
        depth_from=float(depth_from), depth_to=float(depth_to), variable=canonical,
        sensor=str(meta.get("sensor") or fields["sensor"]), layout=layout,
        key=str(fields["prefix"]), records=records,
    )


def _choose_depths(
    meta: Mapping[str, str | float], fields: Mapping[str, str | float], fname: str
) -> tuple[float, float]:
    """Depths (cm) from the file name (written to 1e-6 m) unless the content disagrees.

    Headers and ceop records print depths to 0.01 m (SCAN's 0.0508 m appears as 0.05),
    so the name wins whenever both agree to that precision.
    """
    name = (float(fields["depth_from"]), float(fields["depth_to"]))
    if "depth_from" not in meta:
        return name
    content = (float(meta["depth_from"]), float(meta["depth_to"]))
    if all(abs(a - b) <= 0.5 + 1e-9 for a, b in zip(name, content, strict=True)):
        return name
    logger.warning(
        "%s: depths in the file (%s-%s cm) differ from its name (%s-%s cm); using the file's",
        fname, *content, *name,
    )
    return content


def _parse_header(line: str, fname: str) -> dict[str, str | float]:
    match = _HEADER_RE.match(line)
    if match is None:
        msg = (
            f"{fname}: the first line {line[:120]!r} is neither an ISMN header (network, station, "
            f"lat, lon, elevation, depths, sensor) nor a ceop_sep record."
        )
        raise UnsupportedFileError(msg)
    g = match.groupdict()
    return {
        "network": g["network"], "station": g["station"].strip(), "lat": float(g["lat"]),
        "lon": float(g["lon"]), "elevation": float(g["elevation"]),
        "depth_from": _m_to_cm(float(g["depth_from"])), "depth_to": _m_to_cm(float(g["depth_to"])),
        "sensor": g["sensor"],
    }


def _read_table(text: str, columns: list[str], fname: str) -> pd.DataFrame:
    text_cols = [c for c in columns if c not in ("lat", "lon", "elevation", "depth_from", "depth_to", "value")]
    try:
        return pd.read_csv(
            io.StringIO(text), sep=r"\s+", header=None, names=columns,
            dtype={c: str for c in text_cols}, keep_default_na=False,
            na_values={"value": ["NaN", "nan"], "origin_flag": [""], "flag": [""]},
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as err:
        msg = f"{fname}: records do not follow the ISMN layout ({err}); is the file truncated or edited?"
        raise UnsupportedFileError(msg) from err


def _parse_ceop(text: str, fname: str) -> tuple[dict[str, str | float], pd.DataFrame]:
    table = _read_table(text, _CEOP_COLUMNS, fname)
    if table.empty:
        msg = f"{fname}: no records."
        raise UnsupportedFileError(msg)
    row = table.iloc[0]
    meta: dict[str, str | float] = {
        "network": str(row["network"]), "station": str(row["station"]), "lat": float(row["lat"]),
        "lon": float(row["lon"]), "elevation": float(row["elevation"]),
        "depth_from": _m_to_cm(float(row["depth_from"])), "depth_to": _m_to_cm(float(row["depth_to"])),
    }
    return meta, table


def read_static_variables(source: str | Path | bytes) -> dict[str, object]:
    """Station columns from an ISMN ``*_static_variables.csv`` file.

    Parameters
    ----------
    source : str, Path or bytes
        The semicolon-separated file (or its bytes).

    Returns
    -------
    dict
        ``saturation`` (m3 m-3), ``clay``, ``sand``, ``silt`` (%), ``organic_carbon``
        (% weight) for 0-30 cm and the same with suffix ``_30_100cm``;
        ``land_cover_cci`` (latest ESA CCI year) and ``land_cover`` (soilfuse code);
        ``koppen`` and ``climate_zone``. Absent quantities are left out.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    table = pd.read_csv(io.StringIO(_decode(raw)), sep=";", dtype=str, keep_default_na=False)
    names = {"saturation": "saturation", "clay fraction": "clay", "sand fraction": "sand",
             "silt fraction": "silt", "organic carbon": "organic_carbon"}
    out: dict[str, object] = {}
    for row in table.to_dict("records"):  # a dozen rows per file
        qty = str(row.get("quantity_name", "")).strip()
        value = str(row.get("value", "")).strip()
        if qty in names:
            top = _float_or_nan(row.get("depth_from[m]"))
            bottom = _float_or_nan(row.get("depth_to[m]"))
            if (top, bottom) == (0.0, 0.3):
                out[names[qty]] = float(value)
            elif (top, bottom) == (0.3, 1.0):
                out[f"{names[qty]}_30_100cm"] = float(value)
        elif qty == "land cover classification" and value:
            code = int(float(value))
            out["land_cover_cci"] = code
            out["land_cover"] = CCI_TO_LAND_COVER.get(code)
        elif qty == "climate classification" and value:
            out["koppen"] = value
            out["climate_zone"] = koppen_to_climate_zone(value)
    return out


def _float_or_nan(text: object) -> float:
    try:
        return round(float(str(text)), 6)
    except ValueError:
        return float("nan")


def koppen_to_climate_zone(koppen: str) -> int | None:
    """soilfuse climate-zone code of a Koeppen-Geiger class.

    ``BW*`` -> 1 arid, ``BS*`` -> 2 semi-arid, ``C*`` -> 3 temperate, ``A*`` -> 4 humid,
    ``D*`` and ``E*`` -> 5 cold; anything else -> None.

    Examples
    --------
    >>> koppen_to_climate_zone("BSk"), koppen_to_climate_zone("Cfb"), koppen_to_climate_zone("ET")
    (2, 3, 5)
    """
    k = koppen.strip()
    if k.startswith("BW"):
        return 1
    if k.startswith("BS"):
        return 2
    return {"C": 3, "A": 4, "D": 5, "E": 5}.get(k[:1])


# ---------------------------------------------------------------------- walking
def _iter_sources(path: Path) -> Iterator[tuple[str, bytes]]:
    """(relative name, bytes) of every .stm / static csv under a file, folder or zip."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix.lower() == ".zip":
                yield from _iter_zip(file)
            elif file.is_file() and _wanted(file.name):
                yield str(file.relative_to(path)), file.read_bytes()
    elif path.suffix.lower() == ".zip":
        yield from _iter_zip(path)
    elif path.is_file() and _wanted(path.name):
        yield path.name, path.read_bytes()
    else:
        msg = f"{path} is not an ISMN file, folder or .zip archive (or does not exist)."
        raise UnsupportedFileError(msg)


def _iter_zip(path: Path) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        for member in sorted(archive.namelist()):
            if not member.endswith("/") and _wanted(member):
                yield f"{path.name}/{member}", archive.read(member)


def _wanted(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".stm") or lower.endswith("_static_variables.csv")


def read_ismn(
    path: str | Path,
    *,
    variables: Iterable[str] = ("sm", "st"),
) -> StationData:
    """Read every ISMN file under a file, folder (recursively) or ``.zip`` archive.

    Parameters
    ----------
    path : str or Path
        An ``.stm`` file, a folder (any layout, nested zips included) or a zip.
    variables : iterable of {"sm", "st"}
        Canonical variables to keep.

    Returns
    -------
    StationData
        Station metadata (``station_id`` = ``"<network>:<station>"``, ``network``,
        ``station``, ``lat``, ``lon``, ``elevation``, ``sensor`` (sensors joined by
        ``"; "``), static variables when found) and all records, values in canonical
        units, ISMN flags in ``flag`` and the provider's flags in ``origin_flag``.

    Raises
    ------
    DataError
        If no ISMN record file of the wanted variables is found.
    UnsupportedFileError
        If a file does not follow an ISMN layout.
    """
    wanted = set(variables)
    files: list[tuple[str, IsmnFile]] = []
    static: dict[tuple[str, str], dict[str, object]] = {}
    for name, raw in _iter_sources(Path(path)):
        member = PurePosixPath(name)
        folder = str(member.parent)
        if member.name.lower().endswith("_static_variables.csv"):
            key = member.name[: -len("_static_variables.csv")]
            static[(folder, key)] = read_static_variables(raw)
            continue
        parsed = read_ismn_file(raw, name=member.name)
        if parsed is not None and parsed.variable in wanted:
            files.append((folder, parsed))
    if not files:
        msg = f"No ISMN record files of {sorted(wanted)} found under {path}."
        raise DataError(msg)
    stations, observations = _assemble(files, static)
    logger.info("read %d ISMN files: %d stations, %d records", len(files), len(stations), len(observations))
    return StationData(stations, observations)


def _assemble(
    files: list[tuple[str, IsmnFile]], static: Mapping[tuple[str, str], dict[str, object]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Station table (one row per network:station) and the long record table."""
    meta: dict[str, dict[str, object]] = {}
    sensors: dict[str, list[str]] = {}
    parts = []
    for folder, f in files:
        sid = f"{f.network}:{f.station}"
        entry = meta.setdefault(sid, {
            "station_id": sid, "network": f.network, "station": f.station, "lat": f.lat,
            "lon": f.lon, "elevation": f.elevation,
        })
        if f.sensor not in sensors.setdefault(sid, []):
            sensors[sid].append(f.sensor)
        # static variables sit beside the record files and share their name prefix
        entry.update(static.get((folder, f.key), {}))
        rec = f.records
        parts.append(pd.DataFrame({
            "station_id": sid, "time": rec["time"], "depth_from": f.depth_from,
            "depth_to": f.depth_to, "variable": f.variable, "value": rec["value"],
            "flag": rec["flag"], "origin_flag": rec["origin_flag"],
        }))
    stations = pd.DataFrame([{**entry, "sensor": "; ".join(sensors[sid])} for sid, entry in meta.items()])
    observations = pd.concat(parts, ignore_index=True)
    observations["origin_flag"] = observations["origin_flag"].astype("string")
    if "land_cover_cci" in stations.columns:
        stations["land_cover_cci"] = stations["land_cover_cci"].astype("Int64")
    return stations, observations
