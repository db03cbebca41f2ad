"""Tests of soilfuse.sample: station extraction (lazy, right cells), training tables, coarse pixels."""

from __future__ import annotations

import logging
import threading
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import DataError, GridError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.sample import (
    block_id,
    build_training_table,
    extract_at_coarse_pixels,
    extract_at_stations,
    sample_at_stations,
)

GRID = Grid.latlon((100.0, 104.0, 30.0, 33.0), 0.1)  # 30 rows x 40 columns
TIME = pd.date_range("2020-01-01", periods=6, freq="D")


def _raise_on_compute(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    msg = "a Dask graph was computed"
    raise RuntimeError(msg)


def _cube(chunks: dict[str, int] | None = None) -> xr.Dataset:
    """``code[t, r, c] = 10000 t + 100 r + c`` and a static elevation ``r + c / 100``."""
    t, r, c = np.meshgrid(np.arange(TIME.size), np.arange(GRID.shape[0]), np.arange(GRID.shape[1]), indexing="ij")
    ds = xr.Dataset(
        {
            "code": (("time", "y", "x"), (10000 * t + 100 * r + c).astype("float64"), {"units": "1"}),
            "elevation": (("y", "x"), (r[0] + c[0] / 100).astype("float64"), {"units": "m"}),
        },
        coords={"time": TIME},
    )
    ds = with_grid(ds, GRID)
    return ds.chunk(chunks) if chunks else ds


STATIONS = pd.DataFrame(
    {
        "station_id": ["a", "b", "c"],
        "lat": [32.95, 30.05, 31.53],  # rows 0, 29, 14
        "lon": [100.05, 103.95, 101.27],  # cols 0, 39, 12
        "land_cover": [1, 3, 2],
    }
)


# ---------------------------------------------------------------------- nearest / bilinear
def test_extract_at_stations__nearest_picks_the_containing_cell() -> None:
    table = extract_at_stations(_cube(), STATIONS)
    assert len(table) == 3 * TIME.size
    assert list(table.columns[:2]) == ["station_id", "time"]
    day2 = table[table["time"] == TIME[2]].set_index("station_id")
    assert day2.loc["a", "code"] == 20000 + 0 * 100 + 0
    assert day2.loc["b", "code"] == 20000 + 29 * 100 + 39
    assert day2.loc["c", "code"] == 20000 + 14 * 100 + 12
    assert day2.loc["c", "elevation"] == pytest.approx(14.12)


def test_sample_at_stations__bilinear_reproduces_a_linear_field() -> None:
    x, y = np.meshgrid(GRID.x, GRID.y)
    ds = with_grid(xr.Dataset({"f": (("y", "x"), 2.0 * x - 3.0 * y)}), GRID)
    pts = sample_at_stations(ds, STATIONS.iloc[[2]], method="bilinear")
    assert float(pts["f"][0]) == pytest.approx(2.0 * 101.27 - 3.0 * 31.53, abs=1e-9)
    assert pts["station"].values.tolist() == ["c"]


def test_sample_at_stations__bilinear_skips_missing_neighbours() -> None:
    values = np.ones(GRID.shape)
    rows, cols = GRID.index([101.27], [31.53])
    values[rows[0], cols[0]] = np.nan  # one of the four neighbours
    values[rows[0] + 1, cols[0]] = 3.0
    ds = with_grid(xr.Dataset({"f": (("y", "x"), values)}), GRID)
    got = float(sample_at_stations(ds, STATIONS.iloc[[2]], method="bilinear")["f"][0])
    # station at fractional centre offsets: column 12.7 - 0.5 - 12 = 0.2, row 14.7 - 0.5 - 14 = 0.2
    w = {"r0c0": 0.8 * 0.8, "r0c1": 0.8 * 0.2, "r1c0": 0.2 * 0.8, "r1c1": 0.2 * 0.2}
    expected = (w["r0c1"] * 1 + w["r1c0"] * 3 + w["r1c1"] * 1) / (w["r0c1"] + w["r1c0"] + w["r1c1"])
    assert got == pytest.approx(expected, abs=1e-12)


def test_sample_at_stations__projected_grid() -> None:
    ease = Grid.ease2("36km").subset((95.0, 110.0, 25.0, 40.0))
    ny, nx = ease.shape
    ds = with_grid(xr.Dataset({"id": (("y", "x"), np.arange(ny * nx, dtype="float64").reshape(ny, nx))}), ease)
    pts = sample_at_stations(ds, STATIONS, method="nearest")
    rows, cols = ease.index(STATIONS["lon"], STATIONS["lat"], crs="EPSG:4326")
    assert pts["id"].values.tolist() == (rows * nx + cols).astype(float).tolist()


def test_sample_at_stations__outside_stations_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    far = pd.concat([STATIONS, pd.DataFrame({"station_id": ["z"], "lat": [10.0], "lon": [10.0]})], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="soilfuse.sample"):
        pts = sample_at_stations(_cube(), far)
    assert pts["station"].values.tolist() == ["a", "b", "c"]
    assert "outside the grid" in caplog.text
    with pytest.raises(DataError, match="inside the grid"):
        sample_at_stations(_cube(), far.iloc[[3]])
    with pytest.raises(MissingVariableError, match="lat"):
        sample_at_stations(_cube(), STATIONS.drop(columns="lat"))


# ---------------------------------------------------------------------- laziness
def test_sample_at_stations__stays_lazy_until_compute() -> None:
    with dask.config.set(scheduler=_raise_on_compute):
        pts = sample_at_stations(_cube({"time": 2, "y": 10, "x": 10}), STATIONS, method="bilinear")
        assert pts["code"].chunks is not None
    assert float(pts["code"].sel(station="a").isel(time=0)) == pytest.approx(0.0 + 0.0)


def test_extract_at_stations__reads_only_chunks_holding_stations() -> None:
    seen: set[tuple[int, ...]] = set()
    lock = threading.Lock()

    def record(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        with lock:
            seen.add(tuple(block_info[None]["chunk-location"]))
        return block

    base = _cube()
    lazy = dsa.from_array(base["code"].values, chunks=(3, 10, 10)).map_blocks(record, dtype="float64")
    ds = base.drop_vars("elevation").assign(code=(("time", "y", "x"), lazy))
    table = extract_at_stations(ds, STATIONS)
    assert table.set_index(["station_id", "time"]).loc[("b", TIME[4]), "code"] == 40000 + 2939
    # stations sit in spatial chunks (0, 0), (2, 3) and (1, 1); two time chunks each
    assert seen == {(t, r, c) for t in (0, 1) for r, c in ((0, 0), (2, 3), (1, 1))}
    assert len(seen) == 6 < 2 * 3 * 4


# ---------------------------------------------------------------------- training table
def _observations() -> pd.DataFrame:
    rows = []
    for sid in ("a", "c", "x"):  # "x" is not in the stations table
        for k, day in enumerate(TIME[1:4]):
            for top, bottom in ((0, 5), (10, 20)):
                rows.append(
                    {
                        "station_id": sid,
                        "time": day + pd.Timedelta(hours=0),
                        "depth_from": top,
                        "depth_to": bottom,
                        "variable": "sm",
                        "value": 0.1 + 0.01 * k + top / 100,
                        "flag": "G",
                    }
                )
    rows.append(
        {
            "station_id": "a",
            "time": TIME[1],
            "depth_from": 0,
            "depth_to": 5,
            "variable": "st",
            "value": 280.0,
            "flag": "G",
        }
    )
    rows.append(
        {
            "station_id": "c",
            "time": TIME[5],
            "depth_from": 0,
            "depth_to": 5,
            "variable": "sm",
            "value": 0.9,
            "flag": "D01",
        }
    )
    return pd.DataFrame(rows)


def test_build_training_table__keys_covariates_and_target() -> None:
    table = build_training_table(_cube({"time": 2}), _observations(), STATIONS, block_size=1.0)
    assert list(table.columns[:10]) == [
        "station_id",
        "time",
        "lat",
        "lon",
        "block",
        "climate_zone",
        "land_cover",
        "depth_from",
        "depth_to",
        "layer",
    ]
    assert table.columns[-1] == "target" and {"code", "elevation"} <= set(table.columns)
    assert len(table) == 2 * 3 * 2  # stations a, c x 3 days x 2 depths; flagged and "st" rows dropped
    row = table[(table["station_id"] == "c") & (table["time"] == TIME[2]) & (table["layer"] == "10-20cm")].iloc[0]
    assert row["code"] == 20000 + 1412 and row["target"] == pytest.approx(0.1 + 0.01 + 0.1)
    assert row["block"] == block_id([31.53], [101.27])[0] and row["land_cover"] == 2
    assert table["climate_zone"].isna().all()
    assert table["time"].dtype == np.dtype("datetime64[ns]")


def test_build_training_table__no_overlap_raises() -> None:
    obs = _observations().assign(time=pd.Timestamp("1999-01-01"))
    with pytest.raises(DataError, match="share no day"):
        build_training_table(_cube(), obs, STATIONS)
    with pytest.raises(DataError, match="No usable observations"):
        build_training_table(_cube(), _observations(), STATIONS, variable="tp")


# ---------------------------------------------------------------------- coarse pixels
def test_extract_at_coarse_pixels__block_means_of_nested_cells() -> None:
    coarse = Grid.latlon((100.0, 104.0, 30.0, 33.0), 1.0)  # 3 x 4 cells of 10 x 10 fine cells
    rng = np.random.default_rng(0)
    sm = rng.uniform(0.1, 0.3, (TIME.size, 3, 4))
    sm[0] = np.nan  # day 0 has no satellite value
    sm[1, 0, 0] = np.nan
    target = with_grid(xr.DataArray(sm, dims=("time", "y", "x"), coords={"time": TIME}, name="sm"), coarse)
    fine = _cube({"y": 15, "x": 20})
    table = extract_at_coarse_pixels(target, fine)
    assert len(table) == (TIME.size - 1) * 12 - 1
    row = table[(table["time"] == TIME[3])].iloc[5]  # second coarse row, second column
    assert (row["lat"], row["lon"]) == (31.5, 101.5)
    # fine rows 10-19, columns 10-19: mean of 100 r + c over that block is 100 * 14.5 + 14.5
    assert row["code"] == pytest.approx(30000 + 1450 + 14.5)
    assert row["elevation"] == pytest.approx(14.5 + 0.145)
    assert row["target"] == pytest.approx(sm[3, 1, 1])
    same = extract_at_coarse_pixels(target, with_grid(xr.Dataset({"lai": target.fillna(0.5) * 2}), coarse))
    np.testing.assert_allclose(same["lai"], 2 * same["target"])


def test_extract_at_coarse_pixels__non_nesting_grid_raises() -> None:
    coarse = Grid.latlon((100.0, 104.0, 30.0, 33.0), 0.75)
    target = with_grid(xr.DataArray(np.ones((1, 4, 5)), dims=("time", "y", "x"), coords={"time": TIME[:1]}), coarse)
    with pytest.raises(GridError, match=r"soilfuse\.regrid"):
        extract_at_coarse_pixels(target, _cube())
