"""Tests of the ISMN reader on every ISMN file of the real-data folder.

Each file is checked three ways: against the README manifest (record count and
count of flag ``G``), against an independent line-by-line parse written here
(first record's time, value and flag), and against hand-picked facts.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from soilfuse.exceptions import DataError, UnsupportedFileError
from soilfuse.io.ismn import (
    koppen_to_climate_zone,
    parse_ismn_filename,
    read_ismn,
    read_ismn_file,
    read_static_variables,
)

_MANIFEST_RE = re.compile(
    r"\| `insitu_ismn/(?P<path>[^`]+\.stm)` \|.*?(?P<layout>header_values|ceop_sep); "
    r"(?P<network>[^/]+)/(?P<station>\S+) .*?n=(?P<n>\d+) \(flag G: (?P<g>\d+)\)"
)
_ZIP_RE = re.compile(r"(?P<network>[A-Z]+)/(?P<station>\S+) \([^)]*\) \S+ n=(?P<n>\d+) flags=")


@pytest.fixture(scope="module")
def ismn_dir(real_data: Path) -> Path:
    return real_data / "insitu_ismn"


@pytest.fixture(scope="module")
def manifest(real_data: Path) -> dict[str, dict[str, str]]:
    text = (real_data / "README.md").read_text(encoding="utf-8")
    return {m["path"]: m.groupdict() for m in _MANIFEST_RE.finditer(text)}


@pytest.fixture(scope="module")
def zip_manifest(real_data: Path) -> dict[str, int]:
    text = (real_data / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "Data_header_values.zip` |" in ln and "flags=" in ln)
    return {f"{m['network']}:{m['station']}": int(m["n"]) for m in _ZIP_RE.finditer(line)}


@pytest.fixture(scope="module")
def everything(ismn_dir: Path):
    return read_ismn(ismn_dir)


class _Parsed(NamedTuple):
    n: int
    g: int
    time: pd.Timestamp
    value: float
    flag: str


def _independent_parse(raw: bytes) -> _Parsed:
    """Records of an ISMN file by plain string splitting (no pandas)."""
    lines = [ln for ln in raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln.strip()]
    ceop = re.match(r"\d{4}/\d{2}/\d{2} ", lines[0]) is not None
    records = lines if ceop else lines[1:]
    value_at, flag_at = (12, 13) if ceop else (2, 3)
    first = records[0].split()
    flags = [ln.split()[flag_at] for ln in records]
    when = pd.Timestamp(first[0].replace("/", "-") + " " + first[1])
    return _Parsed(len(records), sum(f == "G" for f in flags), when, float(first[value_at]), first[flag_at])


def test_manifest__lists_every_stm_file(manifest, ismn_dir: Path) -> None:
    on_disk = {str(p.relative_to(ismn_dir)) for p in ismn_dir.rglob("*.stm")}
    assert on_disk == set(manifest)
    assert len(on_disk) == 25  # 18 OZNET, FR-Aqui, 2 COSMOS, 3 REMEDHUS, SMOSMANIA


def test_read_ismn_file__each_file_matches_manifest_and_independent_parse(manifest, ismn_dir: Path) -> None:
    for rel, entry in manifest.items():
        raw = (ismn_dir / rel).read_bytes()
        parsed = read_ismn_file(ismn_dir / rel)
        assert parsed is not None
        ref = _independent_parse(raw)
        rec = parsed.records
        assert parsed.layout == entry["layout"], rel
        assert len(rec) == int(entry["n"]) == ref.n, rel
        assert int((rec["flag"] == "G").sum()) == int(entry["g"]) == ref.g, rel
        assert parsed.network.replace("-", "_") == entry["network"].replace("-", "_"), rel
        assert rec["time"].iloc[0] == ref.time, rel
        assert rec["flag"].iloc[0] == ref.flag, rel
        expected = ref.value + 273.15 if parsed.variable == "st" else ref.value
        assert rec["value"].iloc[0] == pytest.approx(expected, abs=1e-12), rel


def test_read_ismn_file__oznet_header_values(ismn_dir: Path) -> None:
    name = "OZNET_OZNET_S-Coleambally_sm_0.000000_0.050000_Stevens-Hydra-Probe_20170101_20220101.stm"
    f = read_ismn_file(ismn_dir / "oznet_murrumbidgee" / name)
    assert f is not None
    assert (f.network, f.station, f.lat, f.lon) == ("OZNET", "S_Coleambally", -34.84262, 145.86692)
    assert f.elevation == 121.0
    assert (f.depth_from, f.depth_to, f.variable, f.sensor) == (0.0, 5.0, "sm", "Stevens Hydra Probe")
    rec = f.records
    assert rec["time"].iloc[0] == pd.Timestamp("2017-01-02 22:00") and rec["value"].iloc[0] == 0.0179
    spike = rec[rec["value"] == 655.35]
    assert len(spike) == 24 and not (spike["flag"] == "G").any()
    assert set(spike["flag"]) == {"C02,C03", "C02,C03,D10", "D08,C02,C03,D10", "D05,D08,C02,C03"}
    neg = rec[rec["value"] == -0.99]
    assert len(neg) > 0 and set(neg["flag"]) <= {"C01", "C01,D09", "C01,D07,D09"}
    missing = rec[rec["flag"] == "M"]
    assert len(missing) > 0 and missing["value"].isna().all()  # -9999 read as NaN


def test_read_ismn_file__smosmania_cr_only_nan_and_u_flags(ismn_dir: Path) -> None:
    path = ismn_dir / "smosmania" / (
        "SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbeML2X_20070101_20120109.stm")
    raw = path.read_bytes()
    assert b"\n" not in raw and raw.count(b"\r") > 700  # old-Mac line endings
    f = read_ismn_file(path)
    assert f is not None
    rec = f.records
    assert len(rec) == 719 and set(rec["flag"]) == {"U", "M"}
    nan = rec["value"].isna()
    assert int(nan.sum()) == raw.count(b"NaN") == 2 and set(rec.loc[nan, "flag"]) == {"M"}
    assert rec["time"].iloc[-1] == pd.Timestamp("2007-01-30 23:00")
    assert (f.depth_from, f.depth_to, f.elevation, f.sensor) == (5.0, 5.0, 112.0, "ThetaProbe ML2X")


def test_read_ismn_file__remedhus_soil_temperature_to_kelvin(ismn_dir: Path) -> None:
    path = ismn_dir / "remedhus" / (
        "REMEDHUS_REMEDHUS_CasaGorrizo_ts_0.000000_0.050000_Stevens-Hydra-Probe_19500101_20210131.stm")
    f = read_ismn_file(path)
    assert f is not None and f.variable == "st" and f.layout == "ceop_sep"
    assert f.records["value"].iloc[0] == pytest.approx(13.2 + 273.15)
    assert f.records["value"].min() == pytest.approx(0.7 + 273.15)
    assert f.records["value"].max() == pytest.approx(41.8 + 273.15)
    assert np.isnan(f.elevation)  # -99.9 fill


def test_read_ismn_file__cosmos_interval_depth(ismn_dir: Path) -> None:
    name = "COSMOS_COSMOS_Barrow-ARM_sm_0.000000_0.210000_Cosmic-ray-Probe_20170810_20180809.stm"
    f = read_ismn_file(ismn_dir / "cosmos" / name)
    assert f is not None and (f.depth_from, f.depth_to) == (0.0, 21.0)
    assert f.records["time"].iloc[-1] == pd.Timestamp("2018-08-09 08:00")


def test_read_ismn__multinetwork_zip(ismn_dir: Path, zip_manifest: dict[str, int]) -> None:
    data = read_ismn(ismn_dir / "multinetwork_2007_2013" / "Data_header_values.zip")
    counts = data.observations.groupby("station_id").size().to_dict()
    expected = {sid.replace("-", "_") if sid.startswith("MAQU") else sid: n for sid, n in zip_manifest.items()}
    assert counts == expected
    assert data.n_stations == 8
    cst = data.observations[data.observations["station_id"] == "MAQU:CST_01"]
    assert (cst["flag"].iloc[0], cst["value"].iloc[0]) == ("C03", 0.5)
    abrams = data.observations[data.observations["station_id"] == "SCAN:Abrams"]
    day = abrams[abrams["time"].dt.floor("D") == pd.Timestamp("2010-01-01")]
    assert len(day) == 24 and (day["flag"] == "D02").sum() > 12
    # SCAN 2-inch sensors: the name's 0.0508 m wins over the header's rounded 0.05
    assert set(abrams["depth_from"]) == {5.08}


def test_read_ismn__whole_folder(everything) -> None:
    data = everything
    assert data.n_stations == 32
    assert len(data.observations) == 988129
    st = data.stations.set_index("station_id")
    assert st.loc["FR_Aqui:fraye", "saturation"] == 0.49 and st.loc["FR_Aqui:fraye", "sand"] == 87.0
    assert st.loc["FR_Aqui:fraye", "land_cover"] == 1 and st.loc["FR_Aqui:fraye", "koppen"] == "Cfb"
    assert st.loc["COSMOS:Barrow-ARM", "land_cover"] == 5 and st.loc["COSMOS:Barrow-ARM", "climate_zone"] == 5
    assert st.loc["REMEDHUS:Casa_Gorrizo", "climate_zone"] == 2
    assert (st.loc["COSMOS:ARM-1", "saturation"], st.loc["COSMOS:ARM-1", "saturation_30_100cm"]) == (0.46, 0.44)
    assert np.isnan(st.loc["OZNET:Cox", "saturation"])  # no static file for OZNET
    variables = data.observations.groupby("station_id")["variable"].unique()
    assert sorted(variables["REMEDHUS:Casa_Gorrizo"]) == ["sm", "st"]


def test_read_ismn__nested_zip_in_a_folder_and_variable_filter(tmp_path, ismn_dir: Path) -> None:
    shutil.copy(ismn_dir / "multinetwork_2007_2013" / "Data_header_values.zip", tmp_path / "a.zip")
    shutil.copytree(ismn_dir / "remedhus", tmp_path / "remedhus")
    data = read_ismn(tmp_path, variables=["st"])
    assert data.stations["station_id"].tolist() == ["REMEDHUS:Casa_Gorrizo"]
    assert set(data.observations["variable"]) == {"st"}
    with pytest.raises(DataError, match="No ISMN record files"):
        read_ismn(tmp_path / "remedhus", variables=["sm_none"])


def test_read_static_variables__fr_aqui(ismn_dir: Path) -> None:
    out = read_static_variables(ismn_dir / "fr_aqui" / "FR-Aqui_FR-Aqui_fraye_static_variables.csv")
    assert out["saturation"] == 0.49 and out["saturation_30_100cm"] == 0.42
    assert (out["clay"], out["sand"], out["silt"], out["organic_carbon"]) == (4.0, 87.0, 9.0, 2.18)
    assert (out["land_cover_cci"], out["land_cover"], out["climate_zone"]) == (70, 1, 3)


def test_parse_ismn_filename__fields_and_errors() -> None:
    f = parse_ismn_filename(
        "SCAN_SCAN_AdamsRanch#1_sm_0.050800_0.050800_Hydraprobe-Analog-(2.5-Volt)_20070101_20131231.stm")
    assert (f["prefix"], f["var"], f["depth_from"], f["sensor"]) == (
        "SCAN_SCAN_AdamsRanch#1", "sm", 5.08, "Hydraprobe-Analog-(2.5-Volt)")
    with pytest.raises(UnsupportedFileError, match="not an ISMN file name"):
        parse_ismn_filename("observations.csv")


def test_read_ismn_file__other_variable_skipped_and_bad_content(tmp_path) -> None:
    name = "NET_NET_S1_p_0.000000_0.000000_Gauge_20200101_20200102.stm"
    assert read_ismn_file(b"NET NET S1 1.0 2.0 3.0 0.0 0.0 Gauge\n2020/01/01 00:00 0.0 G M\n", name=name) is None
    bad = tmp_path / "NET_NET_S1_sm_0.000000_0.050000_X_20200101_20200102.stm"
    bad.write_text("this is not an ISMN header\n2020/01/01 00:00 0.1 G M\n")
    with pytest.raises(UnsupportedFileError, match="neither an ISMN header"):
        read_ismn_file(bad)
    with pytest.raises(UnsupportedFileError):
        read_ismn(tmp_path / "nothing.txt")


def test_read_ismn__zip_member_bytes_equal_file(tmp_path, ismn_dir: Path) -> None:
    src = ismn_dir / "smosmania"
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in src.iterdir():
            z.write(p, f"SMOSMANIA/Narbonne/{p.name}")
    a = read_ismn(archive).observations
    b = read_ismn(src).observations
    pd.testing.assert_frame_equal(a, b)


def test_koppen_to_climate_zone__classes() -> None:
    codes = [koppen_to_climate_zone(k) for k in ("BWh", "BSk", "Cfa", "Af", "Dwb", "ET", "X")]
    assert codes == [1, 2, 3, 4, 5, 5, None]
