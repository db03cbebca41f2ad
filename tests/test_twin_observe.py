"""Observing systems of the synthetic twin, on the ``small`` world: the imperfections the
recipes must overcome are present, with the configured sizes, and nothing else is broken.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from soilfuse.twin import Observations, TwinConfig, evaluate, make_world, observe
from soilfuse.twin.observe_common import (
    AreaAccumulator,
    composite_periods,
    hash_uniform,
    profile_weights,
)
from soilfuse.twin.observe_grids import observe_grids, reanalysis_grid
from soilfuse.twin.observe_optical import mod11_qc, observe_optical
from soilfuse.twin.observe_satellite import SMAPModel, cci_grid, swath_mask
from soilfuse.twin.observe_stations import FAULTS, StationErrorModel, observe_stations


@pytest.fixture(scope="module")
def world():
    return make_world(TwinConfig.from_size("small", seed=0))


@pytest.fixture(scope="module")
def obs(world) -> Observations:
    return observe(world)


@pytest.fixture(scope="module")
def figures(world, obs):
    return evaluate(world, obs)


# ---------------------------------------------------------------------- kernels
def test_hash_uniform__independent_of_blocking():
    rows, cols = np.arange(20)[:, None], np.arange(30)[None, :]
    whole = hash_uniform(3, 7, 5, rows, cols)
    part = hash_uniform(3, 7, 5, rows[5:12], cols[:, 10:25])
    assert np.array_equal(whole[5:12, 10:25], part)
    assert abs(whole.mean() - 0.5) < 0.05
    assert not np.array_equal(whole, hash_uniform(4, 7, 5, rows, cols))


def test_profile_weights__nested_layers_and_points():
    # sm layers 0-5 and 0-10: the 5-10 piece is 2*sm(0-10) - sm(0-5); a 5 cm point is sm(0-10).
    w = profile_weights([0, 0, 10], [5, 10, 20], [5, 0, 5, 100], [5, 7, 10, 150])
    sm = np.array([0.30, 0.25, 0.20])
    got = w @ sm
    assert got[0] == pytest.approx(0.25)
    assert got[1] == pytest.approx((5 * 0.30 + 2 * 0.20) / 7)
    assert got[2] == pytest.approx(0.20)
    assert got[3] == pytest.approx(0.20)  # the deepest layer extends below the profile
    # point sources: linear in depth, held below the last sensor
    wt = profile_weights([0, 10], [0, 10], [5, 0, 20], [5, 10, 20])
    assert wt @ np.array([280.0, 290.0]) == pytest.approx([285.0, 285.0, 290.0])


def test_area_accumulator__tiles_equal_whole_and_mean_preserved(world):
    cfg = world.config
    coarse = cci_grid(cfg.region)
    field = np.asarray(world.static["elevation"].values, dtype="float64")
    acc = AreaAccumulator(cfg.grid, coarse)
    acc.reset(())
    acc.add(field, slice(0, 64), slice(0, 64))
    whole, frac = acc.result()
    acc.reset(())
    for r in (slice(0, 30), slice(30, 64)):
        for c in (slice(0, 17), slice(17, 64)):
            acc.add(field[r, c], r, c)
    tiled, _ = acc.result()
    assert np.allclose(whole, tiled, equal_nan=True)
    area = coarse.cell_area() * frac
    assert np.nansum(whole * area) / np.nansum(area[np.isfinite(whole)]) == pytest.approx(
        np.average(field, weights=cfg.grid.cell_area()), rel=0.02)


def test_composite_periods__restart_each_year():
    times = pd.date_range("2018-12-20", "2019-01-20", freq="D")
    periods = composite_periods(times, 16)
    assert [str(d.date()) for _, _, d in periods] == ["2018-12-19", "2019-01-01", "2019-01-17"]
    assert [(a, b) for a, b, _ in periods] == [(0, 12), (12, 28), (28, 32)]


# ---------------------------------------------------------------------- stations
def test_observe_stations__density_gradient(world, obs):
    nx = world.static.sizes["x"]
    east = int((obs.stations["col"] >= nx / 2).sum())
    west = int((obs.stations["col"] < nx / 2).sum())
    assert len(obs.stations) == world.config.n_stations == 40
    assert east >= 3 * west > 0
    assert (np.asarray(world.static["land_cover"].values)[obs.stations["row"], obs.stations["col"]] != 5).all()


@pytest.mark.parametrize("block_cols", [1, 5, 64])
def test_place_stations__same_cells_whatever_the_column_blocks(world, block_cols):
    from soilfuse.twin.observe_station_sites import place_stations

    static = world.static.load()
    whole = place_stations(static, 40, seed=3, dense_ratio=20.0)
    blocked = place_stations(static, 40, seed=3, dense_ratio=20.0, block_cols=block_cols)
    pd.testing.assert_frame_equal(blocked, whole)
    assert whole["col"].is_monotonic_increasing and whole[["row", "col"]].duplicated().sum() == 0


def test_observe_stations__metadata_and_sampling(obs):
    st, rec = obs.stations, obs.station_obs
    assert set(st["network"]) == {"CMA", "PLATEAU", "SOILNET"}
    assert st["station_id"].is_unique
    ten = st.loc[st["st_sampling"] == "10min", "station_id"]
    assert len(ten) >= 1
    one = rec[(rec["station_id"] == ten.iloc[0]) & (rec["variable"] == "st")]
    steps = one.groupby("depth_from", observed=True)["time"].diff().dropna()
    assert steps.min() == pd.Timedelta("10min")
    hourly = rec[(rec["station_id"] == st["station_id"].iloc[0])]
    assert hourly.groupby(["variable", "depth_from"], observed=True)["time"].diff().dropna().min() == pd.Timedelta("1h")
    # the surface temperature sensor has a diurnal cycle of several K
    surf = rec[(rec["variable"] == "st") & (rec["depth_from"] == 0)]
    day_range = surf.groupby([surf["station_id"], surf["time"].dt.floor("D")], observed=True)["value"].agg(np.ptp)
    assert day_range.median() > 3.0


def _fault_free(world, **changes):
    model = StationErrorModel(fault_rates={k: 0.0 for k in FAULTS}, **changes)
    return observe_stations(world, model=model)


@pytest.fixture(scope="module")
def clean(world):
    """The same stations without injected faults (noise and gaps unchanged)."""
    return _fault_free(world)


def _mask_of(labels: pd.DataFrame, rec: pd.DataFrame) -> np.ndarray:
    """True for the records inside any labelled window of their own sensor."""
    keys = ["station_id", "variable", "depth_from", "depth_to"]
    rc = rec.groupby(keys, observed=True, sort=False).ngroup().to_numpy()
    first = rec[keys].assign(code=rc).drop_duplicates(keys)
    lc = labels[keys].merge(first, on=keys, how="left")["code"].fillna(-1).to_numpy("int64")
    n_codes = int(rc.max()) + 1 if rc.size else 0
    t = rec["time"].to_numpy()
    order = np.lexsort((t, rc))
    inside = np.zeros(len(rec), bool)
    bounds = np.searchsorted(rc[order], np.arange(n_codes + 1))
    for code, start, end in zip(lc, labels["start"].to_numpy(), labels["end"].to_numpy(), strict=True):
        if code < 0:
            continue
        idx = order[bounds[code]:bounds[code + 1]]
        ti = t[idx]
        inside[idx[np.searchsorted(ti, start, side="left"):np.searchsorted(ti, end, side="right")]] = True
    return inside


def test_observe_stations__every_fault_labelled(obs, clean):
    """Records differ from a fault-free run exactly inside the labelled fault windows."""
    rec = obs.station_obs
    ref = clean["observations"]
    assert len(rec) == len(ref)  # faults never add or remove records
    assert (rec["time"].to_numpy() == ref["time"].to_numpy()).all()
    diff = ~np.isclose(rec["value"].to_numpy(), ref["value"].to_numpy(), atol=1e-6)
    injected = obs.station_faults[obs.station_faults["fault"] != "frozen"]
    inside = _mask_of(injected, rec)
    assert diff.any()
    assert not (diff & ~inside).any(), "a record was changed outside every labelled fault"
    counts = injected["fault"].value_counts()
    assert set(counts.index) == set(FAULTS)
    assert (counts >= 20).all()
    # labels are separated in time on each sensor (at least the configured separation)
    keys = ["station_id", "variable", "depth_from", "depth_to"]
    lab = injected.sort_values([*keys, "start"]).reset_index(drop=True)
    same = (lab[keys].shift() == lab[keys]).all(axis=1).to_numpy()[1:]
    gaps = lab["start"].to_numpy()[1:] - lab["end"].to_numpy()[:-1]
    assert gaps[same].min() >= np.timedelta64(3, "D")


def test_observe_stations__frozen_readings_labelled(world, clean):
    """Soil moisture collapses only in the labelled frozen spells."""
    thawed = _fault_free(world, frozen_fraction=1.0)
    both = clean
    rec = both["observations"]
    diff = ~np.isclose(rec["value"].to_numpy(), thawed["observations"]["value"].to_numpy(), atol=1e-6)
    frozen = both["faults"][both["faults"]["fault"] == "frozen"]
    assert len(frozen) > 0 and diff.any()
    assert not (diff & ~_mask_of(frozen, rec)).any()
    assert (rec.loc[diff, "variable"] == "sm").all()
    ratio = rec["value"].to_numpy()[diff] / thawed["observations"]["value"].to_numpy()[diff]
    assert np.median(ratio) < 0.5


def test_observe_stations__bias_matches_configured(obs):
    """Estimated sensor bias (clean days) against the configured calibration: r > 0.9."""
    keys = ["station_id", "variable", "depth_from", "depth_to"]
    rec = obs.station_obs
    faulty = _mask_of(obs.station_faults, rec)
    clean = rec[~faulty]
    daily = clean.assign(time=clean["time"].dt.floor("D")).groupby([*keys, "time"], observed=True)["value"].mean()
    both = daily.rename("obs").reset_index().merge(obs.station_truth, on=[*keys, "time"])
    est = (both["obs"] - both["value"]).groupby([both[k] for k in keys], observed=True).median()
    mean_truth = both.groupby(keys, observed=True)["value"].mean()
    sens = obs.station_sensors.set_index(keys)
    for var, zero in (("sm", 0.0), ("st", 273.15)):
        idx = [k for k in est.index if k[1] == var]
        conf = (sens.loc[idx, "offset"] + (sens.loc[idx, "gain"] - 1) * (mean_truth.loc[idx] - zero)
                + sens.loc[idx, "repr_bias"] * sens.loc[idx, "gain"])
        r = np.corrcoef(est.loc[idx].to_numpy(), conf.to_numpy())[0, 1]
        assert r > 0.9, (var, r)
        assert np.std(conf.to_numpy()) > (0.02 if var == "sm" else 0.5)


def test_observe_stations__gaps_and_truth(obs, figures):
    st = figures["stations"]
    assert 0.01 < st["missing_fraction"] < 0.2
    assert len(obs.station_truth) == len(obs.station_sensors) * 120
    sm_truth = obs.station_truth[obs.station_truth["variable"] == "sm"]["value"]
    assert sm_truth.between(0.0, 0.6).all()
    assert 0.01 < st["daily_sm"]["rmse"] < 0.15
    assert 0.5 < st["daily_st"]["rmse"] < 5.0


# ---------------------------------------------------------------------- reanalysis
def test_observe_grids__reanalysis_errors_in_range(obs, figures):
    rea = figures["reanalysis"]
    ranges = {"t2m": (0.5, 3.0), "sm_0-7cm": (0.01, 0.10), "sm_7-28cm": (0.01, 0.10),
              "st_0-7cm": (0.5, 4.0), "tp": (0.1, 5.0), "ssrd": (1.0, 30.0)}
    for name, (lo, hi) in ranges.items():
        assert lo < rea[name]["rmse"] < hi, (name, rea[name])
        assert rea[name]["r"] > 0.8, (name, rea[name])
    ds = obs.reanalysis
    assert ds.sizes["y"] == ds.sizes["x"] == 32
    assert ds["layer"].values.tolist() == ["0-7cm", "7-28cm", "28-100cm", "100-289cm"]


@pytest.mark.parametrize("block_bytes", [None, 1])
def test_observe_grids__blocks_of_days_equal_whole_period(world, obs, block_bytes, monkeypatch):
    # 7-day time chunks: 18 blocks, each carrying one day over for the reanalysis lag;
    # with a 1-byte budget, blocks of one day.
    import soilfuse.twin.observe_grids as grids_module

    if block_bytes is not None:
        monkeypatch.setattr(grids_module, "_BLOCK_BYTES", block_bytes)
    chunked = dataclasses.replace(world, truth=world.truth.chunk({"time": 7}),
                                  forcing=world.forcing.chunk({"time": 7}))
    grids = observe_grids(chunked)
    for key, ds in (("reanalysis", obs.reanalysis), ("cci", obs.cci), ("smap", obs.smap)):
        ref = obs.truth_on_grids[key]
        for name in ds.data_vars:
            np.testing.assert_array_equal(grids[key][name].values, ds[name].values, err_msg=f"{key} {name}")
        for name in ref.data_vars:
            np.testing.assert_array_equal(grids[f"{key}_truth"][name].values, ref[name].values,
                                          err_msg=f"{key} truth {name}")


def test_observe_grids__reanalysis_biases_have_the_configured_shape(world, obs):
    rea, ref = obs.reanalysis, obs.truth_on_grids["reanalysis"]
    # damped soil-moisture variability
    std_rea = rea["sm"].isel(depth=0).std("time").mean().item()
    std_ref = ref["sm"].isel(depth=0).std("time").mean().item()
    assert std_rea < 0.85 * std_ref
    # colder where higher: the temperature error decreases with elevation
    err = (rea["t2m"] - ref["t2m"]).mean("time").values.ravel()
    acc = AreaAccumulator(world.config.grid, reanalysis_grid(world.config.region))
    acc.reset(())
    acc.add(np.asarray(world.static["elevation"].values, "float64"), slice(0, 64), slice(0, 64))
    elev = acc.result()[0].ravel()
    slope = np.polyfit(elev / 1000.0, err, 1)[0]
    assert -2.0 < slope < -0.5
    # a one-day lag: the reanalysis correlates better with yesterday's truth than plain smoothing would
    sm_rea = rea["sm"].isel(depth=0).values
    sm_ref = ref["sm"].isel(depth=0).values
    d_rea = np.diff(sm_rea, axis=0).ravel()
    r_now = np.corrcoef(d_rea, np.diff(sm_ref, axis=0).ravel())[0, 1]
    r_lag = np.corrcoef(d_rea[sm_rea[0].size:], np.diff(sm_ref, axis=0)[:-1].ravel())[0, 1]
    assert r_lag > 0.2 and r_now > 0.2


# ---------------------------------------------------------------------- satellites
def test_observe_grids__cci_gaps_and_flags(obs, figures):
    cci = figures["cci"]
    assert 0.25 < cci["valid_fraction"] < 0.8
    assert 0.02 < cci["rmse"] < 0.08 and cci["r"] > 0.7
    flags = cci["flag_fraction"]
    assert 0.01 < flags["4"] < 0.06 and 0.02 < flags["16"] < 0.09
    assert flags["1"] > 0.02  # frozen / snow on the plateau in March
    frozen = obs.truth_on_grids["cci"]["frozen_fraction"].values >= 0.2
    flag = obs.cci["flag"].values
    assert ((flag[frozen] & 1) > 0).all()
    assert np.isnan(obs.cci["sm"].values[(flag & 7) > 0]).all()
    # no-overpass gaps are more frequent in the first (winter) month than in the last
    no_obs = (flag == 0) & np.isnan(obs.cci["sm"].values)
    land = np.isfinite(obs.truth_on_grids["cci"]["sm"].values)
    march, june = no_obs[:31][land[:31]].mean(), no_obs[-30:][land[-30:]].mean()
    assert march > june + 0.05


def test_observe_grids__smap_seams_move_daily(obs, figures):
    swath = obs.truth_on_grids["smap"]["swath"].values
    land = np.isfinite(obs.truth_on_grids["smap"]["sm"].values[0])
    seen = swath[:, land]
    changes = (seen[1:] != seen[:-1]).mean(axis=1)
    assert changes.mean() > 0.3  # seams move every day
    revisit = seen.mean(axis=0)
    assert 0.25 < revisit.mean() < 0.6  # seen every 2-3 days
    assert np.array_equal(seen[:8], seen[8:16])  # 8-day exact repeat
    smap = figures["smap"]
    assert smap["valid_fraction_frozen"] < smap["valid_fraction_unfrozen"]
    assert 0.1 < smap["valid_fraction"] < 0.5
    assert 0.02 < smap["rmse"] < 0.08 and smap["bias"] < -0.005


def test_swath_mask__coverage_fraction_at_31N():
    from soilfuse.grid import Grid

    grid = Grid.ease2("36km").subset((80.0, 120.0, 30.0, 33.0))
    times = pd.date_range("2019-01-01", periods=16)
    mask = swath_mask(grid, times, SMAPModel(), seed=0)
    # 1000 km swath every 24.6 degrees of longitude at ~31.5N: about 43 % per day
    assert mask.mean() == pytest.approx(1000 / (360 / 14.625 * 111.32 * np.cos(np.deg2rad(31.5))), abs=0.04)


# ---------------------------------------------------------------------- optical
def test_observe_optical__clouds_follow_rain(figures):
    m = figures["modis"]
    assert m["cloud_rain"] > m["cloud_dry"] + 0.3
    assert 0.3 < m["cloud"] < 0.8


def test_observe_optical__qc_bits_match_gaps(obs):
    m = obs.modis.isel(time=slice(0, 40)).compute()
    qc = m["qc_day"].values
    lst = m["lst_day"].values
    produced = (qc & 3) <= 1
    assert np.array_equal(np.isfinite(lst), produced)
    assert np.array_equal(qc & 3 == 2, m["cloud"].values)
    assert set(np.unique(qc)) == {0, 2, 3, 133}
    assert np.array_equal(np.isfinite(m["refl_b1"].values), produced)
    assert mod11_qc(np.array([0, 1, 2, 3], dtype="uint8")).tolist() == [0, 133, 2, 3]


def test_observe_optical__errors_and_composites(world, obs, figures):
    m = figures["modis"]
    assert 0.7 < m["lst_day_rmse"] < 2.0 and m["lst_day_bias"] < 0
    assert 0.02 < m["other_quality"] < 0.1
    # composites fill most cloud gaps: far more valid than a single day
    assert m["ndvi_valid"] > m["lst_day_valid"] + 0.3 and m["lai_valid"] > m["lst_day_valid"]
    ndvi = obs.modis["ndvi"].values
    assert obs.modis.sizes["time_16d"] == 9 and obs.modis.sizes["time_8d"] == 16
    truth_max = world.truth["ndvi"].isel(time=slice(9, 25)).max("time").values
    assert np.nanmean(ndvi[1] - truth_max) < 0.05  # a maximum-value composite is never far above


def test_observe_optical__independent_of_tiling(world, obs, monkeypatch):
    """The same pixels get the same values with other tiles and block-wise cloud masks."""
    from soilfuse.twin import observe_optical as optical

    monkeypatch.setattr(optical, "_PERSIST_LIMIT", 0)  # the large-domain path: per-block masks
    small_tiles = dataclasses.replace(world, config=dataclasses.replace(world.config, tile=24))
    other = observe_optical(small_tiles)
    for name in ("lst_day", "qc_night", "ndvi", "lai", "albedo"):
        a = obs.modis[name].isel({obs.modis[name].dims[0]: slice(0, 6)}).values
        b = other[name].isel({other[name].dims[0]: slice(0, 6)}).values
        assert np.array_equal(a, b, equal_nan=True), name


def test_observe_stations__no_stations_gives_empty_tables(world):
    empty = dataclasses.replace(world, config=dataclasses.replace(world.config, n_stations=0))
    tables = observe_stations(empty)
    assert all(len(t) == 0 for t in tables.values())
    assert list(tables["observations"].columns) == [
        "station_id", "time", "depth_from", "depth_to", "variable", "value", "flag"]
