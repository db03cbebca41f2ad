"""Tests of daily aggregation, depth mapping, completeness filtering and co-location."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilfuse.exceptions import DataError
from soilfuse.grid import Grid
from soilfuse.stations import (
    assign_layers,
    average_per_cell,
    daily_means,
    filter_completeness,
    infer_sampling_interval,
    map_to_layers,
    usable_mask,
)


def _series(sid: str, start: str, periods: int, freq: str, values, *, var: str = "sm", top: float = 0.0,
            bottom: float = 5.0, flags=None) -> pd.DataFrame:
    t = pd.date_range(start, periods=periods, freq=freq)
    return pd.DataFrame({
        "station_id": sid, "time": t, "depth_from": top, "depth_to": bottom, "variable": var,
        "value": np.asarray(values, dtype="float64"), "flag": flags if flags is not None else "G",
    })


def test_daily_means__hourly_and_ten_minute_coverage() -> None:
    # hourly: day 1 complete (mean of 0..23 / 100), day 2 has 12 of 24 samples (kept), day 3 has 11 (dropped)
    hourly = _series("H", "2019-03-01", 72, "h", np.arange(72) / 100.0)
    hourly = hourly.drop(index=list(range(36, 48)) + list(range(48, 61)))
    # 10-minute: day 1 has 72 of 144 samples (kept, coverage 0.5), day 2 has 71 (dropped)
    tenmin = _series("T", "2019-03-01", 288, "10min", np.full(288, 0.3), var="st", top=5.0, bottom=5.0)
    tenmin["value"] = 280.0 + np.arange(288) / 1000.0
    tenmin = tenmin.drop(index=list(range(72, 144)) + list(range(144 + 71, 288)))
    out = daily_means(pd.concat([hourly, tenmin]), min_coverage=0.5)
    h = out[out["station_id"] == "H"]
    assert h["time"].tolist() == [pd.Timestamp("2019-03-01"), pd.Timestamp("2019-03-02")]
    assert h["value"].tolist() == pytest.approx([np.arange(24).mean() / 100, np.arange(24, 36).mean() / 100])
    assert h["n"].tolist() == [24, 12] and h["coverage"].tolist() == [1.0, 0.5]
    t = out[out["station_id"] == "T"]
    assert t["time"].tolist() == [pd.Timestamp("2019-03-01")]
    assert t["value"].iloc[0] == pytest.approx(280.0 + np.arange(72).mean() / 1000.0)
    assert t["coverage"].iloc[0] == pytest.approx(0.5)


def test_daily_means__flagged_values_excluded_and_refilled_kept() -> None:
    obs = _series("A", "2019-03-01", 24, "h", np.full(24, 0.2), flags=["G"] * 20 + ["D06"] * 4)
    obs.loc[:3, "value"] = 0.4
    out = daily_means(obs, min_coverage=0.5)
    assert out["value"].iloc[0] == pytest.approx((4 * 0.4 + 16 * 0.2) / 20) and out["n"].iloc[0] == 20
    obs["qc_flag"] = ["G"] * 18 + ["D06,R01", "R01"] + ["S01"] * 4
    out = daily_means(obs, min_coverage=0.5)
    assert out["n"].iloc[0] == 20  # 18 good + 2 refilled (the second despite its ISMN flag G)
    assert daily_means(obs, min_coverage=0.9).empty
    with pytest.raises(DataError, match="min_coverage"):
        daily_means(obs, min_coverage=0.0)


def test_usable_mask__rules() -> None:
    obs = pd.DataFrame({"value": [0.1, np.nan, 0.1, 0.1, 0.1], "flag": ["G", "G", "U", "D05", "G"],
                        "qc_flag": ["G", "G", "G", "D06,R01", "S01"]})
    assert usable_mask(obs).tolist() == [True, False, False, True, False]
    assert usable_mask(obs, good_flags=("G", "U")).tolist() == [True, False, True, True, False]


def test_infer_sampling_interval__per_series() -> None:
    obs = pd.concat([_series("A", "2019-03-01", 10, "h", np.ones(10) * 0.2),
                     _series("B", "2019-03-01", 10, "10min", np.ones(10) * 0.2),
                     _series("C", "2019-03-01", 1, "h", [0.2])])
    obs = obs.drop(index=[3])  # a gap does not change the median spacing
    step = infer_sampling_interval(obs)
    assert step.xs("A", level="station_id").iloc[0] == pd.Timedelta("1h")
    assert step.xs("B", level="station_id").iloc[0] == pd.Timedelta("10min")
    assert step.xs("C", level="station_id").iloc[0] == pd.Timedelta("1D")


@pytest.mark.parametrize(("top", "bottom", "expected"), [
    (0, 5, ["0-5cm", "0-10cm"]),
    (5, 5, ["0-5cm", "0-10cm"]),
    (5.08, 5.08, ["0-10cm"]),
    (10, 10, ["10-20cm"]),
    (0, 19, ["0-10cm"]),
    (0, 21, ["10-20cm"]),
    (0, 30, ["10-20cm"]),
    (20, 40, ["20-30cm", "30-40cm"]),
    (95, 95, ["90-100cm"]),
    (100, 100, ["90-100cm"]),
    (120, 120, []),
])
def test_assign_layers__soil_moisture_table(top: float, bottom: float, expected: list[str]) -> None:
    out = assign_layers(pd.DataFrame({"depth_from": [top], "depth_to": [bottom]}), "sm")
    assert out["layer"].tolist() == expected


@pytest.mark.parametrize(("top", "bottom", "expected"), [
    (0, 0, ["0cm"]), (0, 2, ["0cm"]), (0, 5, ["5cm"]), (2.5, 2.5, ["5cm"]), (7.5, 7.5, ["10cm"]),
    (16, 16, ["15cm"]), (36, 44, ["40cm"]), (30, 30, []), (60, 60, []),
])
def test_assign_layers__soil_temperature_table(top: float, bottom: float, expected: list[str]) -> None:
    out = assign_layers(pd.DataFrame({"depth_from": [top], "depth_to": [bottom]}), "st")
    assert out["layer"].tolist() == expected


def test_assign_layers__custom_targets_and_errors() -> None:
    sensors = pd.DataFrame({"depth_from": [0.0, 12.0], "depth_to": [7.0, 12.0]})
    out = assign_layers(sensors, "sm", targets=["0-7cm", "7-28cm"])
    assert out["layer"].tolist() == ["0-7cm", "7-28cm"]
    with pytest.raises(DataError, match="point depths"):
        assign_layers(sensors, "st", targets=["0-10cm"])
    with pytest.raises(DataError, match="'sm' or 'st'"):
        assign_layers(sensors, "ta")


def test_map_to_layers__sensors_sharing_a_layer_are_averaged() -> None:
    daily = pd.concat([
        _series("A", "2019-03-01", 2, "D", [0.20, 0.22], top=10, bottom=10),
        _series("A", "2019-03-01", 2, "D", [0.30, 0.34], top=15, bottom=15),
        _series("A", "2019-03-01", 2, "D", [0.10, 0.12], top=0, bottom=5),
        _series("A", "2019-03-01", 1, "D", [290.0], var="st", top=0, bottom=5),
    ])
    out = map_to_layers(daily)
    layer = out.set_index(["variable", "layer", "time"])
    assert layer.loc[("sm", "10-20cm", pd.Timestamp("2019-03-01")), "value"] == pytest.approx(0.25)
    assert layer.loc[("sm", "10-20cm", pd.Timestamp("2019-03-02")), "n_sensors"] == 2
    assert layer.loc[("sm", "0-5cm", pd.Timestamp("2019-03-02")), "value"] == pytest.approx(0.12)
    assert layer.loc[("st", "5cm", pd.Timestamp("2019-03-01")), "value"] == 290.0
    row = out[(out["layer"] == "0-10cm")].iloc[0]
    assert (row["depth_from"], row["depth_to"]) == (0.0, 10.0)
    apart = map_to_layers(daily, combine=False)
    assert (apart["layer"] == "10-20cm").sum() == 4


def test_filter_completeness__twenty_percent_rule() -> None:
    days = pd.date_range("2019-03-01", periods=10, freq="D")
    a = pd.DataFrame({"station_id": "A", "time": days, "variable": "sm", "layer": "0-10cm", "value": 0.2})
    b = a.assign(station_id="B").drop(index=[1, 2])  # 20 % missing: kept
    c = a.assign(station_id="C").drop(index=[1, 2, 3])  # 30 % missing: dropped
    d = a.assign(layer="10-20cm").drop(index=[4, 5, 6])  # station A's second layer: 30 % missing
    daily = pd.concat([a, b, c, d])
    out = filter_completeness(daily)
    kept = set(map(tuple, out[["station_id", "layer"]].drop_duplicates().to_numpy()))
    assert kept == {("A", "0-10cm"), ("B", "0-10cm")}
    assert len(out) == 10 + 8
    by_station = filter_completeness(daily, scope="station")
    assert set(by_station["station_id"]) == {"B"}
    longer = filter_completeness(daily, start="2019-02-27")  # two more days in the period
    assert set(longer["station_id"]) == {"A"}  # A: 2/12 missing; B: 4/12
    with pytest.raises(DataError, match="max_missing"):
        filter_completeness(daily, max_missing=1.5)


def test_average_per_cell__colocated_stations_averaged() -> None:
    grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.5)
    stations = pd.DataFrame({"station_id": ["A", "B", "C"], "network": "N", "lat": [30.9, 30.6, 30.1],
                             "lon": [100.1, 100.4, 100.9], "elevation": 0.0})
    days = pd.date_range("2019-03-01", periods=2, freq="D")
    daily = pd.concat([
        pd.DataFrame({"station_id": s, "time": days, "variable": "sm", "depth_from": 0.0, "depth_to": 10.0,
                      "layer": "0-10cm", "value": v}) for s, v in (("A", [0.1, 0.2]), ("B", [0.3, np.nan]),
                                                                   ("C", [0.5, 0.6]))
    ])
    out = average_per_cell(daily, grid, stations)
    top_left = out[(out["row"] == 0) & (out["col"] == 0)]
    assert top_left["value"].tolist() == pytest.approx([0.2, 0.2])
    assert top_left["n_stations"].tolist() == [2, 1]
    assert top_left["station_ids"].iloc[0] == "A,B"
    assert top_left["cell_id"].iloc[0] == "r0_c0"
    assert (top_left["x"].iloc[0], top_left["y"].iloc[0]) == pytest.approx((100.25, 30.75))
    other = out[out["cell_id"] == "r1_c1"]
    assert other["value"].tolist() == pytest.approx([0.5, 0.6])
    stations.loc[2, "lon"] = 105.0
    with pytest.raises(DataError, match="C"):
        average_per_cell(daily, grid, stations)
