"""Files of the synthetic twin: written atomically and reproducibly, in formats the
soilfuse readers read back to the values that were written (within packing precision).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.grid import Grid
from soilfuse.io.describe import describe
from soilfuse.io.geotiff import open_raster
from soilfuse.io.ismn import read_ismn
from soilfuse.io.products import read_cci, read_era5
from soilfuse.io.products.modis import read_modis
from soilfuse.io.products.smap import read_smap
from soilfuse.io.stations import read_stations
from soilfuse.twin import TwinConfig, evaluate, generate, make_world, observe, write_twin
from soilfuse.twin import write as twin_write
from soilfuse.twin.observe_grids import observe_grids
from soilfuse.twin.observe_scores import GridScores
from soilfuse.twin.observe_stations import plan_stations, station_batches


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """The ``small`` twin (seed 0): world, observations and the written folder."""
    world = make_world(TwinConfig.from_size("small", seed=0))
    obs = observe(world)
    out = tmp_path_factory.mktemp("twin") / "small"
    files = write_twin(world, obs, out, figures=evaluate(world, obs))
    return world, obs, out, files


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- layout
def test_write_twin__every_listed_file_exists(twin):
    _, _, out, files = twin
    manifest = json.loads((out / "twin.json").read_text())
    assert set(manifest["files"]) | {"twin.json"} == set(files)
    assert all(p.exists() for p in files.values())
    assert not out.with_name(out.name + ".partial").exists()
    listed = set(manifest["files"])
    assert {"reanalysis/era5land_2019.nc", "static/sand.tif", "stations/stations.csv",
            "stations/observations.parquet", "stations/faults.csv", "stations/station_truth.parquet",
            "modis/MOD11A1_LST_Day_1km_2019.tif", "modis/MCD15A2H_Lai_2019.tif",
            "truth.zarr", "static.zarr", "forcing.zarr"} <= listed
    assert sum(f.startswith("satellite/cci/ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-2019") for f in listed) == 120
    assert sum(f.startswith("satellite/smap/Twin_2019-") for f in listed) == 120
    assert any(f.startswith("stations/ismn/PLATEAU/") and f.endswith(".stm") for f in listed)
    assert manifest["seed"] == 0 and manifest["grid"]["shape"] == [64, 64]
    assert manifest["figures"]["stations"]["n_stations"] == 40


def test_write_twin__interrupted_run_leaves_only_partial(twin, tmp_path, monkeypatch):
    world, obs, _, _ = twin

    def boom(*args, **kwargs):
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(twin_write, "_write_modis", boom)
    out = tmp_path / "killed"
    with pytest.raises(OSError, match="disk full"):
        write_twin(world, obs, out, figures={"stations": {}})
    assert not out.exists()
    assert (tmp_path / "killed.partial" / "static" / "elevation.tif").exists()


@pytest.mark.slow
def test_generate__same_seed_identical_files_other_seed_different(twin, tmp_path):
    _, _, out, _ = twin
    same = tmp_path / "same"
    generate("small", same, seed=0)
    h0, h1 = _hashes(out), _hashes(same)
    assert h0.keys() == h1.keys()
    differing = sorted(k for k in h0 if h0[k] != h1[k])
    assert differing == []
    other = tmp_path / "other"
    generate("small", other, seed=1)
    h2 = _hashes(other)
    same_files = [k for k in h0 if k in h2 and h0[k] == h2[k] and not k.endswith(("zarr.json", "twin.json"))]
    coords = ("time", "x", "y", "depth", "depth_bnds", "depth_sm", "depth_sm_bnds", "depth_st",
              "depth_st_bnds", "layer", "layer_sm", "layer_st")
    for k in same_files:  # only coordinates and days without any SMAP overpass may coincide
        if ".zarr/" in k:
            assert k.split("/")[1] in coords, k
        else:
            assert k.startswith("satellite/smap/"), k
            with xr.open_dataset(out / k) as ds:
                assert ds.sizes["index"] == 0, k
    assert len(same_files) < 0.2 * len(h0)


# ---------------------------------------------------------------------- readers
def test_read_era5__gives_back_the_reanalysis(twin):
    _, obs, out, _ = twin
    ds = read_era5(out / "reanalysis" / "era5land_2019.nc").load()
    rea = obs.reanalysis
    assert Grid.from_dataset(ds) == Grid.from_dataset(rea)
    for name, tol in (("t2m", 1e-4), ("tp", 1e-4), ("ssrd", 1e-3), ("e", 1e-4), ("sd", 1e-6)):
        assert np.allclose(ds[name].values, rea[name].values, atol=tol, equal_nan=True), name
    assert np.allclose(ds["sm"].values, rea["sm"].values, atol=1e-6)
    assert np.allclose(ds["st"].values, rea["st"].values, atol=1e-4)
    assert ds["sm"]["layer"].values.tolist() == ["0-7cm", "7-28cm", "28-100cm", "100-289cm"]
    assert ds["tp"].attrs["units"] == "mm day-1" and ds["e"].attrs["units"] == "mm day-1"


def test_read_cci__gives_back_values_and_flags(twin):
    _, obs, out, _ = twin
    files = sorted((out / "satellite" / "cci").glob("*.nc"))[:40]
    raw = read_cci(files, flags="none").load()
    strict = read_cci(files).load()
    cci = obs.cci.isel(time=slice(0, 40))
    assert Grid.from_dataset(raw) == Grid.from_dataset(cci)
    assert np.allclose(raw["sm"].values, cci["sm"].values, atol=1e-7, equal_nan=True)
    flag = raw["flag"].values
    valid = np.isfinite(cci["sm"].values)
    assert np.array_equal(flag[valid], cci["flag"].values[valid])
    assert np.isnan(strict["sm"].values[flag > 0]).all()
    assert np.isfinite(strict["sm"].values[(flag == 0) & valid]).all()


def test_read_smap__gives_back_the_point_lists(twin):
    _, obs, out, _ = twin
    ds = read_smap(sorted((out / "satellite" / "smap").glob("*.nc"))).load()
    sm = obs.smap["sm"]
    got = ds["sm"].reindex(time=sm["time"].values)
    assert got.sizes["time"] == 120
    sub = sm.sel(y=ds["y"], x=ds["x"], method="nearest", tolerance=100.0)
    assert np.allclose(got.values, sub.values, atol=1e-7, equal_nan=True)
    assert np.isfinite(got.values).sum() == np.isfinite(sm.values).sum()


def test_read_modis__gives_back_packed_values(twin):
    _, obs, out, _ = twin
    modis = obs.modis
    ds = read_modis(sorted((out / "modis").glob("MOD11A1_*")), qc="any").load()
    assert np.allclose(ds["lst_day"].values, modis["lst_day"].values, atol=0.011, equal_nan=True)
    assert np.array_equal(ds["qc_night"].values, modis["qc_night"].values)
    good = read_modis(sorted((out / "modis").glob("MOD11A1_*")), qc="good")["lst_day"].values
    assert np.isnan(good[modis["qc_day"].values == 133]).all()
    vi = read_modis(sorted((out / "modis").glob("MOD13A2_*")), qc=None).load()
    assert np.allclose(vi["ndvi"].values, modis["ndvi"].values, atol=5.1e-5, equal_nan=True)
    assert [str(t)[:10] for t in vi["time"].values[:2]] == ["2019-02-18", "2019-03-06"]
    lai = read_modis(out / "modis" / "MCD15A2H_Lai_2019.tif", qc=None).load()
    assert np.allclose(lai["lai"].values, modis["lai"].values, atol=0.051, equal_nan=True)
    refl = read_modis(out / "modis" / "MOD09GA_sur_refl_b02_2019.tif", qc=None).load()
    assert np.allclose(refl["refl_b2"].values, modis["refl_b2"].values, atol=5.1e-5, equal_nan=True)
    albedo = open_raster(out / "modis" / "MCD43A3_Albedo_2019.tif").load()
    assert np.allclose(albedo["albedo"].values, modis["albedo"].values, atol=5.1e-4, equal_nan=True)


def test_open_raster__static_maps(twin):
    world, _, out, _ = twin
    sand = open_raster(out / "static" / "sand.tif").load()
    assert sand["layer"].values.tolist() == ["0-5cm", "5-15cm", "15-30cm", "30-60cm", "60-100cm"]
    assert np.allclose(sand["sand"].values, world.static["sand"].values, atol=1e-5)
    lc = open_raster(out / "static" / "land_cover.tif").load()
    assert np.array_equal(lc["land_cover"].values, world.static["land_cover"].values)
    assert Grid.from_dataset(lc) == world.config.grid


def test_read_stations__and_ismn_give_back_the_records(twin):
    _, obs, out, _ = twin
    data = read_stations(out / "stations")
    assert data.n_stations == 40
    rec = obs.station_obs
    keys = ["station_id", "variable", "depth_from", "depth_to", "time"]
    back = data.observations.astype({"station_id": str, "variable": str}).sort_values(keys)
    mine = rec.astype({"station_id": str, "variable": str}).sort_values(keys)
    assert len(back) == len(mine)
    assert np.array_equal(back["time"].to_numpy(), mine["time"].to_numpy())
    assert np.allclose(back["value"].to_numpy(), mine["value"].to_numpy(), atol=1e-6)
    assert set(back["flag"].astype(str)) <= {"G", "C01", "C02"}
    ismn = read_ismn(out / "stations" / "ismn")
    ids = obs.stations.loc[obs.stations["ismn"], "station_id"]
    assert ismn.n_stations == len(ids)
    sm = ismn.observations[ismn.observations["variable"] == "sm"]
    one = sm["station_id"].iloc[0]
    sid = one.split(":")[-1]
    mine = rec[(rec["station_id"] == sid) & (rec["variable"] == "sm")]
    theirs = sm[sm["station_id"] == one]
    merged = mine.merge(theirs, on=["time", "depth_from", "depth_to"], suffixes=("", "_ismn"))
    assert len(merged) == len(mine)
    assert np.allclose(merged["value"], merged["value_ismn"], atol=5.1e-5)
    st = ismn.observations[ismn.observations["variable"] == "st"]
    if len(st):
        assert st["value"].between(230.0, 330.0).all()  # degC in the file, K once read


def test_station_tables__faults_and_truth_round_trip(twin):
    _, obs, out, _ = twin
    faults = pd.read_csv(out / "stations" / "faults.csv", parse_dates=["start", "end"])
    assert len(faults) == len(obs.station_faults)
    assert (faults["end"] >= faults["start"]).all()
    truth = pd.read_parquet(out / "stations" / "station_truth.parquet")
    assert np.array_equal(truth["value"].to_numpy(), obs.station_truth["value"].to_numpy())


def test_stream_stations__same_files_and_figures_as_in_memory_tables(twin, tmp_path, monkeypatch):
    # Small row groups and batches, so that row groups straddle batches of sensors.
    world, obs, out, _ = twin
    monkeypatch.setattr(twin_write, "_ROW_GROUP", 50_000)
    monkeypatch.setattr(twin_write, "_STATION_BATCH", 37)
    plan = plan_stations(world)
    batches = list(station_batches(plan, batch=37))
    assert len(batches) > 3 and sum(len(b.truth) for b in batches) == len(obs.station_sensors)
    streamed = dataclasses.replace(obs, station_obs=pd.DataFrame(), station_truth=pd.DataFrame(),
                                   station_faults=pd.DataFrame(), station_plan=plan)
    twin_write._write_stations(streamed, tmp_path / "stream")
    expected = tmp_path / "expected"
    expected.mkdir()
    obs.station_obs.to_parquet(expected / "observations.parquet", index=False, row_group_size=50_000)
    obs.station_truth.to_parquet(expected / "station_truth.parquet", index=False, row_group_size=50_000)
    assert obs.station_obs.shape[0] > 10 * 50_000
    for name in ("observations.parquet", "station_truth.parquet"):
        assert (tmp_path / "stream" / name).read_bytes() == (expected / name).read_bytes(), name
    for name in ("stations.csv", "faults.csv", "sensors.csv"):
        assert (tmp_path / "stream" / name).read_bytes() == (out / "stations" / name).read_bytes(), name
    ismn = sorted(p.relative_to(tmp_path / "stream") for p in (tmp_path / "stream" / "ismn").rglob("*.stm"))
    assert ismn and all((tmp_path / "stream" / p).read_bytes() == (out / "stations" / p).read_bytes()
                        for p in ismn)
    assert streamed.station_summary is not None
    figures = evaluate(world, streamed)
    assert figures["stations"] == evaluate(world, obs)["stations"]


def test_stream_grids__same_files_and_figures_as_in_memory_products(tmp_path):
    # Blocks of 4 days across a new year: the yearly reanalysis files are written piece by piece.
    world = make_world(TwinConfig.from_size("small", start="2018-12-22", end="2019-01-08"))
    chunked = dataclasses.replace(world, truth=world.truth.chunk({"time": 4}),
                                  forcing=world.forcing.chunk({"time": 4}))
    streamed = observe(chunked, stream_stations=True, stream_grids=True)
    assert streamed.grid_plan is not None and "t2m" not in streamed.reanalysis
    grids = observe_grids(world)
    in_memory = dataclasses.replace(streamed, reanalysis=grids["reanalysis"], cci=grids["cci"],
                                    smap=grids["smap"], grid_plan=None)
    files = twin_write._write_grids(chunked, streamed, tmp_path / "stream")
    expected = twin_write._write_grids(world, in_memory, tmp_path / "memory")
    rel = sorted(p.relative_to(tmp_path / "stream") for p in files)
    assert rel == sorted(p.relative_to(tmp_path / "memory") for p in expected)
    assert {"reanalysis/era5land_2018.nc", "reanalysis/era5land_2019.nc"} <= {p.as_posix() for p in rel}
    for p in rel:
        with xr.open_dataset(tmp_path / "stream" / p) as a, xr.open_dataset(tmp_path / "memory" / p) as b:
            assert a.load().identical(b.load()), p
    assert in_memory.grid_scores is None and streamed.grid_scores is not None
    assert streamed.grid_scores.result() == GridScores().add(grids).result()


def test_describe__works_on_every_kind_of_file(twin):
    _, _, out, _ = twin
    paths = [out / "reanalysis" / "era5land_2019.nc",
             next((out / "satellite" / "cci").glob("*.nc")),
             next((out / "satellite" / "smap").glob("*.nc")),
             out / "modis" / "MOD11A1_LST_Day_1km_2019.tif",
             out / "static" / "clay.tif",
             next((out / "stations" / "ismn").rglob("*.stm")),
             out / "stations" / "observations.parquet",
             out / "truth.zarr"]
    for p in paths:
        info = describe(p, nan_fraction=False)
        assert info["kind"] and info["size_bytes"] > 0, p
    assert describe(out / "reanalysis" / "era5land_2019.nc")["time"]["count"] == 120
