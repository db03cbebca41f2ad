"""Tests of the station data model, its validation, files and helpers."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pytest

from soilfuse.exceptions import (
    DataError,
    MissingVariableError,
    SoilfuseWarning,
    UnitsError,
    UnsupportedFileError,
)
from soilfuse.grid import Grid
from soilfuse.io.stations import (
    StationData,
    locate_on_grid,
    read_stations,
    select,
    to_wide,
    write_stations,
)


def _stations() -> pd.DataFrame:
    return pd.DataFrame({
        "station_id": ["A", "B", "NA"],  # "NA" must stay a string, not become missing
        "network": ["NET", "NET", "OTHER"],
        "lat": [30.55, 31.05, 32.95],
        "lon": [100.15, 100.65, 103.05],
        "elevation": [1500.0, np.nan, 20.0],
        "land_cover": [1, 3, 2],
        "saturation": [0.45, 0.5, np.nan],
        "note": ["first", None, "third"],
        "count": [1, 2, 3],
    })


def _observations() -> pd.DataFrame:
    t = pd.date_range("2019-03-01", periods=4, freq="h")
    rows = []
    for sid, var, top, bottom, base in [("A", "sm", 0, 5, 0.2), ("A", "st", 5, 5, 280.0), ("B", "sm", 10, 20, 0.3),
                                        ("NA", "sm", 0, 10, 0.1)]:
        for i, ti in enumerate(t):
            rows.append({"station_id": sid, "time": ti, "depth_from": top, "depth_to": bottom, "variable": var,
                         "value": base + 0.01 * i, "flag": "G" if i else "D06"})
    return pd.DataFrame(rows)


@pytest.fixture
def data() -> StationData:
    return StationData(_stations(), _observations())


def test_station_data__normalises_dtypes(data: StationData) -> None:
    obs, st = data.observations, data.stations
    assert str(obs["time"].dtype) == "datetime64[ns]"
    for col in ("station_id", "variable", "flag"):
        assert isinstance(obs[col].dtype, pd.StringDtype)
    assert obs["depth_from"].dtype == np.float64 and obs["value"].dtype == np.float64
    assert str(st["land_cover"].dtype) == "Int64"
    assert isinstance(st["note"].dtype, pd.StringDtype)
    assert st["station_id"].tolist() == ["A", "B", "NA"]
    assert len(obs) == 16 and data.n_stations == 3
    # sorted by station, variable, depth, time
    assert obs["station_id"].tolist()[:8] == ["A"] * 8 and obs["variable"].tolist()[:4] == ["sm"] * 4
    assert len(data.series_keys()) == 4


def test_station_data__utc_conversion_of_aware_times() -> None:
    obs = _observations()
    obs["time"] = obs["time"].dt.tz_localize("Asia/Shanghai")
    out = StationData(_stations(), obs).observations
    assert out["time"].min() == pd.Timestamp("2019-02-28 16:00")


def test_station_data__missing_column_raises() -> None:
    with pytest.raises(MissingVariableError, match=r"lacks column\(s\) \['flag'\]"):
        StationData(_stations(), _observations().drop(columns="flag"))


def test_station_data__unknown_station_raises() -> None:
    obs = _observations()
    obs.loc[0, "station_id"] = "ZZZ"
    with pytest.raises(DataError, match="ZZZ"):
        StationData(_stations(), obs)


def test_station_data__duplicate_station_raises() -> None:
    st = pd.concat([_stations(), _stations().iloc[[0]]])
    with pytest.raises(DataError, match=r"duplicated.*\['A'\]"):
        StationData(st, _observations())


def test_station_data__inverted_depth_raises() -> None:
    obs = _observations()
    obs.loc[0, "depth_to"] = -1.0
    with pytest.raises(DataError, match="inverted depths"):
        StationData(_stations(), obs)


def test_station_data__unknown_variable_raises() -> None:
    obs = _observations()
    obs.loc[0, "variable"] = "ta"
    with pytest.raises(DataError, match=r"\['ta'\]"):
        StationData(_stations(), obs)


def test_station_data__percent_soil_moisture_raises_units_error() -> None:
    obs = _observations()
    sm = obs["variable"] == "sm"
    obs.loc[sm, "value"] *= 100.0
    with pytest.raises(UnitsError, match="percent"):
        StationData(_stations(), obs)


def test_station_data__celsius_soil_temperature_raises_units_error() -> None:
    obs = _observations()
    st = obs["variable"] == "st"
    obs.loc[st, "value"] -= 273.15
    with pytest.raises(UnitsError, match="degC"):
        StationData(_stations(), obs)


def test_station_data_from_frames__converts_declared_units() -> None:
    obs = _observations()
    st = obs["variable"] == "st"
    sm = obs["variable"] == "sm"
    obs.loc[st, "value"] = [10.0, 11.0, 12.0, 13.0]
    obs.loc[sm, "value"] *= 100.0
    data = StationData.from_frames(_stations(), obs, units={"st": "degC", "sm": "%vol"})
    out = data.observations
    assert out.loc[out["variable"] == "st", "value"].tolist() == pytest.approx([283.15, 284.15, 285.15, 286.15])
    assert out.loc[(out["station_id"] == "A") & (out["variable"] == "sm"), "value"].iloc[0] == pytest.approx(0.2)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_read_stations__roundtrip_exact(tmp_path, data: StationData, fmt: Literal["parquet", "csv"]) -> None:
    obs = data.observations.copy()
    obs["value"] = obs["value"] + 1e-13 * np.arange(len(obs))  # digits that naive CSV floats lose
    obs["time"] = obs["time"] + pd.to_timedelta(np.arange(len(obs)), unit="us")
    obs.loc[1, "value"] = np.nan
    src = StationData(data.stations, obs)
    files = write_stations(src, tmp_path / "out", format=fmt)
    assert files["stations"].suffix == f".{fmt}"
    back = read_stations(tmp_path / "out")
    pd.testing.assert_frame_equal(back.stations, src.stations)
    pd.testing.assert_frame_equal(back.observations, src.observations)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_stations__variable_and_period_filters(tmp_path, data: StationData,
                                                    fmt: Literal["parquet", "csv"]) -> None:
    write_stations(data, tmp_path / "out", format=fmt)
    start, end = pd.Timestamp("2019-03-01 01:00"), pd.Timestamp("2019-03-01 03:00")
    back = read_stations(tmp_path / "out", variables=["sm"], start=start, end=end)
    obs = data.observations
    want = obs[(obs["variable"] == "sm") & (obs["time"] >= start) & (obs["time"] < end)].reset_index(drop=True)
    assert len(want) == 6  # three sm sensors x two hours
    pd.testing.assert_frame_equal(back.observations.reset_index(drop=True), want)
    pd.testing.assert_frame_equal(back.stations, data.stations)


def test_read_stations__mixed_formats_from_a_file_path(tmp_path, data: StationData) -> None:
    data.stations.to_csv(tmp_path / "stations.csv", index=False)
    data.observations.to_parquet(tmp_path / "observations.parquet", index=False)
    back = read_stations(tmp_path / "stations.csv")
    assert back.stations["station_id"].tolist() == ["A", "B", "NA"]
    pd.testing.assert_frame_equal(back.observations, data.observations)


def test_read_stations__missing_table_raises(tmp_path, data: StationData) -> None:
    data.stations.to_csv(tmp_path / "stations.csv", index=False)
    with pytest.raises(DataError, match="observations"):
        read_stations(tmp_path)


def test_write_stations__unknown_format_raises(tmp_path, data: StationData) -> None:
    with pytest.raises(UnsupportedFileError, match="'xlsx'"):
        write_stations(data, tmp_path, format="xlsx")  # type: ignore[arg-type]


def test_select__by_station_variable_depth_period_and_flag(data: StationData) -> None:
    out = select(data, stations=["A"], variable="sm", depth="0-5cm", start="2019-03-01 01:00", flags=["G"])
    assert out.n_stations == 1
    assert out.observations["value"].tolist() == pytest.approx([0.21, 0.22, 0.23])
    assert len(select(data, depth=(5.0, 5.0)).observations) == 4


def test_to_wide__one_column_per_station_layer(data: StationData) -> None:
    wide = to_wide(data, variable="sm")
    assert wide.shape == (4, 3)
    assert list(wide.columns) == ["A", "B", "NA"]  # one depth per station: single level
    assert wide.loc[pd.Timestamp("2019-03-01 02:00"), "B"] == pytest.approx(0.32)
    with pytest.raises(DataError, match="'st'"):
        to_wide(select(data, variable="sm"), variable="st")


def test_locate_on_grid__rows_and_cols(data: StationData) -> None:
    grid = Grid.latlon((100.0, 103.2, 30.0, 33.2), 0.1)
    out = locate_on_grid(data, grid)
    st = out.stations.set_index("station_id")
    # A: lon 100.15 -> col 1; lat 30.55 -> row (33.2 - 30.55) / 0.1 = 26.5 -> 26
    assert (st.loc["A", "row"], st.loc["A", "col"]) == (26, 1)
    assert (st.loc["NA", "row"], st.loc["NA", "col"]) == (2, 30)


def test_locate_on_grid__outside_raises_or_drops(data: StationData) -> None:
    grid = Grid.latlon((100.0, 101.0, 30.0, 31.5), 0.1)
    with pytest.raises(DataError, match="'station_id': 'NA'"):
        locate_on_grid(data, grid)
    with pytest.warns(SoilfuseWarning, match="NA"):
        out = locate_on_grid(data, grid, drop_outside=True)
    assert out.stations["station_id"].tolist() == ["A", "B"]
    assert set(out.observations["station_id"]) == {"A", "B"}
    table = locate_on_grid(_stations().iloc[:2], grid)
    assert table["row"].tolist() == [9, 4]


def test_station_data__inputs_not_modified() -> None:
    stations, obs = _stations(), _observations()
    obs = obs.iloc[::-1]  # unsorted on purpose
    before_obs, before_st = obs.copy(), stations.copy()
    StationData(stations, obs)
    pd.testing.assert_frame_equal(obs, before_obs)
    pd.testing.assert_frame_equal(stations, before_st)
