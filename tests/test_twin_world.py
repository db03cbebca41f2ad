"""The twin world: configuration, random fields, static maps, forcing, tiling and determinism."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time

import dask
import numpy as np
import psutil
import pytest

from soilfuse.exceptions import ConfigError, MissingVariableError
from soilfuse.grid import Grid, crs_of
from soilfuse.twin import world as world_module
from soilfuse.twin.config import TwinConfig
from soilfuse.twin.fields import SmoothSeries, smooth_field
from soilfuse.twin.static import cell_centres, static_maps
from soilfuse.twin.world import make_world

_SHORT_END = "2019-03-20"  # 20 days: enough for structure, fast


@pytest.fixture(scope="module")
def small_world():
    return make_world(TwinConfig.from_size("small"))


def _digest(world) -> str:
    h = hashlib.sha256()
    for ds in (world.static, world.forcing, world.truth):
        for name in sorted(ds.data_vars):
            h.update(name.encode())
            h.update(np.ascontiguousarray(ds[name].values).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------- config
def test_twin_config__presets():
    small = TwinConfig.from_size("small")
    assert small.grid.shape == (64, 64)
    assert len(small.times) == 120 and small.times[0].isoformat() == "2019-03-01T00:00:00"
    assert small.times.dtype == "datetime64[ns]"
    demo = TwinConfig.from_size("demo")
    assert demo.grid.shape == (200, 200) and len(demo.times) == 730 and len(demo.tiles()) == 4
    bench = TwinConfig.from_size("bench")
    assert bench.grid.shape == (2000, 2000) and len(bench.tiles()) == 64
    assert small.grid == Grid.latlon((100.0, 103.2, 30.0, 33.2), 0.05)


def test_twin_config__overrides_and_errors():
    cfg = TwinConfig.from_size("small", seed=5, region=(10.0, 11.0, 40.0, 41.0), start="2020-01-01", end="2020-01-10")
    assert cfg.seed == 5 and cfg.grid.shape == (20, 20) and len(cfg.times) == 10
    with pytest.raises(ConfigError, match="Unknown twin size"):
        TwinConfig.from_size("huge")
    with pytest.raises(ConfigError, match="before start"):
        TwinConfig.from_size("small", start="2019-05-01", end="2019-04-01")
    with pytest.raises(ConfigError, match="region"):
        TwinConfig.from_size("small", region=(103.0, 100.0, 30.0, 33.0))
    tiles = TwinConfig.from_size("small", tile=30).tiles()
    assert [(r.start, r.stop, c.start, c.stop) for r, c in tiles][-1] == (60, 64, 60, 64)


# ---------------------------------------------------------------------- fields
def test_smooth_field__unit_variance_correlated_and_tileable():
    region = (100.0, 104.0, 30.0, 34.0)
    lon = 100.01 + 0.02 * np.arange(200)
    lat = 33.99 - 0.02 * np.arange(200)
    f = smooth_field(3, "test", region, 40.0, lon, lat)
    assert abs(f.mean()) < 0.3 and 0.7 < f.std() < 1.3
    # neighbours 2 km apart nearly identical, cells 200 km apart independent-ish
    assert np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1] > 0.98
    assert abs(np.corrcoef(f[:, :50].ravel(), f[:, 150:].ravel())[0, 1]) < 0.3
    np.testing.assert_array_equal(f[37:91, 120:177], smooth_field(3, "test", region, 40.0, lon[120:177], lat[37:91]))
    assert not np.array_equal(f, smooth_field(4, "test", region, 40.0, lon, lat))
    with pytest.raises(ConfigError, match="outside"):
        smooth_field(3, "test", region, 40.0, lon + 10.0, lat)


def test_smooth_series__ar1_persistence_and_tileable():
    region = (100.0, 103.2, 30.0, 33.2)
    lon = 100.025 + 0.05 * np.arange(64)
    lat = 33.175 - 0.05 * np.arange(64)
    series = SmoothSeries(0, "w", region, 100.0, 0.7, 400, lon, lat)
    v = series.values(0, 400)
    lag1 = np.corrcoef(v[:-1].ravel(), v[1:].ravel())[0, 1]
    assert lag1 == pytest.approx(0.7, abs=0.08)
    assert v.std() == pytest.approx(1.0, abs=0.2)
    part = SmoothSeries(0, "w", region, 100.0, 0.7, 400, lon[10:30], lat[40:64])
    np.testing.assert_array_equal(part.values(100, 164), v[100:164, 40:64, 10:30])


# ---------------------------------------------------------------------- static maps
def test_static_maps__terrain_plateau_hills_plains():
    for size in ("small", "demo"):
        cfg = TwinConfig.from_size(size)
        ny, nx = cfg.grid.shape
        m = static_maps(cfg, slice(0, ny), slice(0, nx))
        z, slope = m["elevation"], m["slope"]
        assert z.max() - z.min() > 1500.0
        assert z[:, : nx // 5].mean() > z[:, -nx // 5:].mean() + 2000.0  # plateau west, plains east
        assert slope.max() < 35.0 and slope.mean() > 0.5
        assert np.all((m["aspect"] >= 0.0) & (m["aspect"] < 360.0))


def test_static_maps__slope_from_metric_spacing():
    # A tilted plane z = 100 m per km eastward has slope atan(0.1) = 5.71° and aspect 270°
    # (facing west, downhill). Check the kernel on the twin's own cell geometry.
    from soilfuse.twin.static import _slope_aspect

    lat = np.array([30.0, 30.05, 30.1])
    dx_km = np.radians(0.05) * 6371.0 * np.cos(np.radians(lat))
    z = np.cumsum(np.ones((5, 5)) * 100.0 * dx_km[1], axis=1)
    slope, aspect = _slope_aspect(z, np.full(3, 30.05), 0.05)
    np.testing.assert_allclose(slope, np.degrees(np.arctan(0.1)), rtol=1e-3)
    np.testing.assert_allclose(aspect, 270.0)


def test_static_maps__land_cover_and_climate(small_world):
    st = small_world.static
    lc, z, slope = st["land_cover"].values, st["elevation"].values, st["slope"].values
    assert set(np.unique(lc)) == {1, 2, 3, 4, 5, 6}
    water = lc == 5
    assert 0.01 < water.mean() < 0.08  # a few %
    assert z[water].mean() < np.median(z) and slope[water].max() < 2.5  # low and flat
    assert z[lc == 4].mean() > z[lc == 3].mean()  # barren high, cropland low
    cz = st["climate_zone"].values
    assert np.all(st["mean_annual_temperature"].values[cz == 5] < 276.15)  # cold highlands
    mapp = st["mean_annual_precipitation"].values
    assert mapp[:, -10:].mean() > 1.5 * mapp[:, :10].mean()  # wetter east
    assert set(np.unique(cz)) >= {3, 4, 5}


def test_static_maps__texture_sums_to_100_and_varies_with_depth(small_world):
    st = small_world.static
    total = st["sand"] + st["silt"] + st["clay"]
    np.testing.assert_allclose(total.values, 100.0, atol=1e-3)  # float32 storage
    maps = static_maps(TwinConfig.from_size("small"), slice(0, 64), slice(0, 64))
    np.testing.assert_allclose(maps["sand"] + maps["silt"] + maps["clay"], 100.0, atol=1e-9)
    clay = st["clay"].mean(("y", "x")).values
    assert np.all(np.diff(clay) > 0)  # clay accumulates with depth
    assert st["layer"].values.tolist() == ["0-5cm", "5-15cm", "15-30cm", "30-60cm", "60-100cm"]
    sand0 = st["sand"].isel(depth=0).values
    assert np.corrcoef(sand0[:, :-1].ravel(), sand0[:, 1:].ravel())[0, 1] > 0.5  # spatially correlated
    for lo, hi in (("residual", "wilting_point"), ("wilting_point", "field_capacity"), ("field_capacity", "porosity")):
        assert np.all(st[lo].values < st[hi].values)
    om = maps["organic_matter"][0]
    assert 0.8 <= om.min() and om.max() <= 3.5


def test_static_maps__tile_equals_domain():
    cfg = TwinConfig.from_size("small")
    whole = static_maps(cfg, slice(0, 64), slice(0, 64))
    part = static_maps(cfg, slice(17, 40), slice(0, 29))
    for name, value in whole.items():
        np.testing.assert_array_equal(part[name], value[..., 17:40, 0:29], err_msg=name)
    lon, lat = cell_centres(cfg.grid, slice(0, 64), slice(0, 64))
    np.testing.assert_array_equal(lon, cfg.grid.x)
    np.testing.assert_array_equal(lat, cfg.grid.y)


# ---------------------------------------------------------------------- forcing
def test_make_world__lapse_rate_of_air_temperature(small_world):
    st, t2m = small_world.static, small_world.forcing["t2m"].values
    z = st["elevation"].values.ravel() / 1000.0
    lat = np.broadcast_to(st["y"].values[:, None], st["elevation"].shape).ravel()
    lon = np.broadcast_to(st["x"].values[None, :], st["elevation"].shape).ravel()
    design = np.column_stack([np.ones(z.size), z, lat, lon])
    slopes = [np.linalg.lstsq(design, day.ravel(), rcond=None)[0][1] for day in t2m]
    assert np.mean(slopes) == pytest.approx(-6.5, abs=1.0)  # K per km
    assert np.all(np.abs(np.array(slopes) + 6.5) < 2.0)


def test_make_world__precipitation_wetter_east_and_intermittent(small_world):
    tp = small_world.forcing["tp"].values
    assert tp[:, :, -21:].mean() > 1.5 * tp[:, :, :21].mean()
    wet = tp > 0.1
    assert 0.15 < wet.mean() < 0.6
    # events are spatially coherent: neighbouring cells share wet days
    assert (wet[:, :, :-1] == wet[:, :, 1:]).mean() > 0.9
    cloud = small_world.forcing["cloud_fraction"].values
    assert cloud[wet].mean() > cloud[~wet].mean() + 0.3


def test_make_world__forcing_ranges_and_persistence(small_world):
    fo = small_world.forcing
    assert np.all(fo["ssr"].values <= fo["ssrd"].values) and np.all(fo["ssrd"].values >= 0.0)
    assert 90.0 < fo["strd"].values.min() and fo["strd"].values.max() < 500.0
    assert np.all((fo["rh"].values > 0.0) & (fo["rh"].values <= 1.0))
    np.testing.assert_allclose(fo["wind10"], np.hypot(fo["u10"], fo["v10"]), rtol=1e-6)
    anomaly = fo["t2m"] - fo["t2m"].mean(("y", "x"))
    a = (anomaly - anomaly.rolling(time=15, center=True, min_periods=1).mean()).values
    assert np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1] > 0.3  # day-to-day persistence
    assert np.all(fo["e"].values <= fo["pev"].values + 1e-3)
    assert fo["sd"].values.max() > 0.0  # some snow on the plateau


# ---------------------------------------------------------------------- datasets
def test_make_world__canonical_layout(small_world):
    w = small_world
    assert crs_of(w.truth).to_epsg() == 4326
    assert Grid.from_dataset(w.forcing) == w.config.grid
    assert w.truth["st"].dims == ("time", "depth_st", "y", "x")
    assert w.truth["st"].attrs["units"] == "K" and w.truth["sm"].attrs["units"] == "m3 m-3"
    assert w.forcing["tp"].attrs["units"] == "mm day-1" and w.static["ksat"].attrs["units"] == "mm h-1"
    assert w.truth["depth_st"].values.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 40.0]
    assert w.truth["layer_sm"].values.tolist()[:3] == ["0-5cm", "0-10cm", "10-20cm"]
    sm = w.layered("sm")
    assert sm["sm"].dims == ("time", "depth", "y", "x")
    assert sm["depth_bnds"].values[1].tolist() == [0.0, 10.0]
    assert w.layered("st")["layer"].values.tolist()[-1] == "40cm"
    assert w.truth["frozen"].dtype == bool and w.truth["frozen"].values.any()
    assert not any(np.isnan(w.truth[n].values).any() for n in w.truth.data_vars if n != "frozen")
    with pytest.raises(MissingVariableError):
        w.layered("lst_day")


@pytest.fixture
def short_spinup(monkeypatch):
    """Shorten the spin-up: tests of determinism and tiling do not need a spun-up state."""
    monkeypatch.setattr(world_module, "SPINUP_DAYS", 5)


def test_make_world__deterministic_and_seeded(short_spinup):
    cfg = TwinConfig.from_size("small", end=_SHORT_END)
    first, again = make_world(cfg), make_world(cfg)
    assert _digest(first) == _digest(again)
    other = make_world(dataclasses.replace(cfg, seed=1))
    assert _digest(other) != _digest(first)
    assert not np.array_equal(other.truth["sm"].values, first.truth["sm"].values)
    assert not np.array_equal(other.static["elevation"].values, first.static["elevation"].values)


def test_make_world__tiles_to_zarr_equal_in_memory(tmp_path, short_spinup):
    cfg = TwinConfig.from_size("small", end="2019-04-10")  # 41 days: two Zarr time chunks
    memory = make_world(cfg)
    tiled = make_world(dataclasses.replace(cfg, tile=32), out=tmp_path)  # 4 tiles
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forcing.zarr", "static.zarr", "truth.zarr"]
    assert tiled.truth["sm"].chunks is not None  # opened lazily with Dask
    for kind in ("static", "forcing", "truth"):
        a, b = getattr(memory, kind), getattr(tiled, kind)
        assert set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{kind}.{name}")
    assert tiled.truth["layer_st"].values.tolist() == memory.truth["layer_st"].values.tolist()


def _peak_rss_increase(func) -> int:
    """Peak resident memory above the starting level while ``func`` runs (sampled every 5 ms)."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        func()
    finally:
        done.set()
        thread.join()
    return peak[0] - base


def test_make_world__tile_memory_independent_of_domain(tmp_path, short_spinup):
    # Demo resolution, 40-cell tiles, 32 days, one Dask worker: 1 and 9 tiles. The
    # peak memory increase must not grow with the number of tiles, and stays far below
    # what holding the 9-tile domain's outputs would take (~80 MB).
    def config(n):
        region = (100.0, 100.0 + 0.8 * n, 30.0, 30.0 + 0.8 * n)
        return TwinConfig.from_size("demo", region=region, start="2018-06-01", end="2018-07-02", tile=40)

    with dask.config.set(scheduler="synchronous"):
        make_world(config(1), out=tmp_path / "warm-up")
        peaks = {n: _peak_rss_increase(lambda n=n: make_world(config(n), out=tmp_path / f"w{n}")) for n in (1, 3)}
    nine = config(3)
    assert len(nine.tiles()) == 9
    domain_bytes = 120 * 120 * len(nine.times) * 45 * 4
    assert peaks[3] < 1.5 * peaks[1] + 5e6
    assert peaks[3] < 0.5 * domain_bytes


def test_make_world__large_in_memory_world_refused():
    with pytest.raises(ConfigError, match="out="):
        make_world(TwinConfig.from_size("bench"))
