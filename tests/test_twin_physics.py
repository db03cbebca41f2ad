"""Physics of the synthetic twin: pedotransfer, heat conduction, water balance, surface truth.

Numbers asserted here are either hand-computed (stated next to the assertion) or
properties every physically based truth must have (damping and lag with depth,
mass-balance closure, bounds, signs of the soil-moisture signals the recipes use).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.linalg import solve_banded

from soilfuse.twin.config import TwinConfig
from soilfuse.twin.forcing import snow_step, toa_shortwave
from soilfuse.twin.pedotransfer import ThermalParameters, saxton_rawls, unsaturated_conductivity
from soilfuse.twin.soil_heat import NODE_DEPTHS_M, conduct, node_index, solve_tridiagonal
from soilfuse.twin.surface import broadband_albedo, vegetation_indices
from soilfuse.twin.water_balance import (
    THICKNESS_MM,
    SoilLayers,
    layer_sum,
    priestley_taylor,
    report_layers,
    root_fractions,
    water_step,
)
from soilfuse.twin.world import make_world, simulate_tile

# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small_world():
    """The default small world (120 days, 64 x 64 cells), in memory."""
    return make_world(TwinConfig.from_size("small"))


@pytest.fixture(scope="module")
def long_column():
    """Two years of a 3 x 3 window of the small world, with the daily water budget."""
    cfg = TwinConfig.from_size("small", start="2019-01-01", end="2020-12-31")
    blocks: dict[str, list[np.ndarray]] = {}

    def emit(t0, t1, arrays):
        for name, value in arrays.items():
            blocks.setdefault(name, []).append(value)

    budget: dict[str, np.ndarray] = {}
    maps = simulate_tile(cfg, slice(30, 33), slice(40, 43), emit, budget=budget)
    out = {name: np.concatenate(parts).astype("float64") for name, parts in blocks.items()}
    return cfg, maps, out, budget


def _soil_dominated(world):
    tr, fo = world.truth, world.forcing
    land = (world.static["land_cover"].values != 5)[None]
    return land & (fo["sd"].values == 0) & ~tr["frozen"].values & (tr["lai"].values < 1.0)


def _anomaly(values, mask):
    """Values minus their per-pixel mean over ``mask`` (removes static differences)."""
    masked = np.where(mask, values, np.nan)
    counts = mask.sum(axis=0, keepdims=True)
    mean = np.where(counts > 0, np.nansum(masked, axis=0, keepdims=True) / np.maximum(counts, 1), 0.0)
    return (values - mean)[mask]


# ---------------------------------------------------------------------- pedotransfer
def test_saxton_rawls__loam_matches_hand_computed():
    # Loam: sand 40 %, clay 20 %, OM 2.5 % (Saxton & Rawls 2006, Table 1 equations):
    # θ1500t = -0.024*0.4 + 0.487*0.2 + 0.006*2.5 + 0.005*0.4*2.5 - 0.013*0.2*2.5 + 0.068*0.4*0.2 + 0.031
    #        = 0.13774; θ1500 = θ1500t + (0.14 θ1500t - 0.02) = 0.13702
    # θ33t = 0.28244; θ33 = θ33t + (1.283 θ33t² - 0.374 θ33t - 0.015) = 0.27961
    # θS-33t = 0.22136; θS-33 = 0.17567; θS = θ33 + θS-33 - 0.097*0.4 + 0.043 = 0.45948
    # B = ln(1500/33) / ln(θ33/θ1500) = 5.3512; Ks = 1930 (θS - θ33)^(3 - 1/B) = 15.48 mm/h
    p = saxton_rawls(np.array([40.0]), np.array([20.0]), np.array([2.5]))
    assert p.wilting_point[0] == pytest.approx(0.13702, abs=0.005)
    assert p.field_capacity[0] == pytest.approx(0.27961, abs=0.005)
    assert p.porosity[0] == pytest.approx(0.45948, abs=0.005)
    assert p.b[0] == pytest.approx(5.3512, abs=0.01)
    assert p.ksat[0] == pytest.approx(15.48, abs=0.1)
    assert p.bulk_density[0] == pytest.approx(1.432, abs=0.005)  # (1 - θS) 2.65 g cm-3
    # and the rounded values of Saxton & Rawls (2006) Table 3 for loam (14/28/46 %v)
    assert abs(p.wilting_point[0] - 0.14) < 0.005
    assert abs(p.field_capacity[0] - 0.28) < 0.005
    assert abs(p.porosity[0] - 0.46) < 0.005


def test_saxton_rawls__sand_drains_faster_and_holds_less_than_clay():
    p = saxton_rawls(np.array([85.0, 20.0]), np.array([5.0, 45.0]), np.array([1.5, 1.5]))
    assert p.ksat[0] > 5 * p.ksat[1]
    assert p.field_capacity[0] < p.field_capacity[1] - 0.15
    assert np.all(p.residual < p.wilting_point)
    k = unsaturated_conductivity(p.field_capacity, p.porosity, p.ksat, p.b)
    assert np.all(k < 0.02 * p.ksat)  # conductivity at field capacity is tiny


def test_thermal_parameters__conductivity_and_capacity():
    p = saxton_rawls(np.array([40.0]), np.array([20.0]), np.array([2.5]))
    th = ThermalParameters.from_soil(p.porosity, np.array([40.0]), p.bulk_density)
    theta = np.array([0.02, 0.1, 0.2, 0.3, 0.45])
    k = th.conductivity(theta)
    assert np.all(np.diff(k) > 0)
    # dry soil: Peters-Lidard dry conductivity (0.135*1432 + 64.7)/(2700 - 0.947*1432) = 0.1920
    assert th.k_dry[0] == pytest.approx(0.1920, abs=0.001)
    assert k[0] == pytest.approx(th.k_dry[0]) and 1.3 < k[-1] < 2.0  # Ke = 0 below Sr = 0.1
    # de Vries: C = 1.92e6 (1 - 0.4595) + 4.18e6 * 0.3
    assert th.capacity(np.array([0.3]))[0] == pytest.approx(1.92e6 * 0.54052 + 4.18e6 * 0.3, rel=1e-3)
    frozen = th.conductivity(np.array([0.45]), np.array([True]))
    assert frozen[0] > k[-1]  # ice conducts better than water


# ---------------------------------------------------------------------- heat conduction
def test_solve_tridiagonal__matches_scipy():
    rng = np.random.default_rng(1)
    n, m = 12, 5
    lower, upper = -rng.uniform(0.1, 1, (n, m)), -rng.uniform(0.1, 1, (n, m))
    diag = 2.5 + rng.uniform(0, 1, (n, m))
    rhs = rng.normal(size=(n, m))
    x = solve_tridiagonal(lower, diag, upper, rhs)
    for j in range(m):
        ab = np.zeros((3, n))
        ab[0, 1:], ab[1], ab[2, :-1] = upper[:-1, j], diag[:, j], lower[1:, j]
        np.testing.assert_allclose(x[:, j], solve_banded((1, 1), ab, rhs[:, j]), rtol=1e-12)


def _harmonic_response(period_days, dt, n_sub, theta):
    """Amplitude ratio and lag (days) at 5, 10, 20, 40 cm for a sinusoidal surface forcing."""
    k, c = 1.0, 2.0e6  # W m-1 K-1, J m-3 K-1 -> diffusivity 5e-7 m2 s-1
    period = period_days * 86400.0
    omega = 2 * np.pi / period
    n = NODE_DEPTHS_M.size
    temp = np.full((n, 1), 280.0)
    cap, cond = np.full((n, 1), c), np.full((n, 1), k)
    times = np.arange(1, round(8 * period / dt) + 1) * dt
    record = np.empty((times.size, n))
    for i, t in enumerate(times):
        top = np.array([280.0 + 5.0 * np.sin(omega * t)])
        temp, _ = conduct(temp, cap, cond, top, np.array([280.0]), dt=dt, n_sub=n_sub, theta=theta)
        record[i] = temp[:, 0]
    keep = times > 5 * period
    design = np.column_stack([np.ones(keep.sum()), np.sin(omega * times[keep]), np.cos(omega * times[keep])])
    coef = np.linalg.lstsq(design, record[keep], rcond=None)[0]
    amp, phase = np.hypot(coef[1], coef[2]), np.arctan2(coef[2], coef[1])
    idx = [node_index(z) for z in (5.0, 10.0, 20.0, 40.0)]
    damping = np.sqrt(2 * k / c / omega)
    z = np.array([0.05, 0.10, 0.20, 0.40])
    return (amp[idx] / amp[0], (phase[0] - phase[idx]) / omega / 86400.0,
            np.exp(-z / damping), z / (omega * damping) / 86400.0)


@pytest.mark.parametrize(("theta", "lag_tol"), [(1.0, 0.02), (0.5, 0.03)])
def test_conduct__matches_analytic_half_space(theta, lag_tol):
    # Homogeneous half-space, surface T = T0 + A sin(ωt), period 10 days: amplitude
    # A exp(-z/d) and lag z/(ω d), d = sqrt(2κ/ω) = 0.371 m. Hourly steps: amplitude
    # ratio within 0.005 and lag within 0.02 day (backward Euler) / 0.03 day (CN).
    ratio, lag, ratio_exact, lag_exact = _harmonic_response(10.0, 3600.0, 1, theta)
    np.testing.assert_allclose(ratio, ratio_exact, atol=0.005)
    np.testing.assert_allclose(lag, lag_exact, atol=lag_tol)


def test_conduct__daily_steps_follow_annual_wave():
    # The world's stepping (1 day, 3 sub-steps) on the annual wave (d = 2.24 m):
    # amplitude within 0.005 of exp(-z/d), lag within 0.5 day of z/(ωd) (10.4 d at 40 cm).
    ratio, lag, ratio_exact, lag_exact = _harmonic_response(365.25, 86400.0, 3, 1.0)
    np.testing.assert_allclose(ratio, ratio_exact, atol=0.005)
    np.testing.assert_allclose(lag, lag_exact, atol=0.5)


def test_simulate_tile__soil_temperature_damps_and_lags_with_depth(long_column):
    cfg, _, out, _ = long_column
    st = out["st"]  # (time, depth, pixels), depths 0, 5, 10, 15, 20, 40 cm
    t = np.arange(st.shape[0])
    omega = 2 * np.pi / 365.25
    design = np.column_stack([np.ones(t.size), np.cos(omega * t), np.sin(omega * t)])
    coef = np.linalg.lstsq(design, st.reshape(t.size, -1), rcond=None)[0].reshape(3, 6, -1)
    amp = np.hypot(coef[1], coef[2])
    lag = (np.arctan2(coef[2], coef[1]) - np.arctan2(coef[2, 0], coef[1, 0])) / omega
    assert np.all(np.diff(amp, axis=0) < 0)  # amplitude decreases with depth
    assert np.all(np.diff(lag, axis=0) > 0)  # phase lag increases with depth
    assert np.all(lag[-1] > 4.0)  # days at 40 cm (analytic ~10 d for κ = 5e-7 m2 s-1)
    assert np.all(amp[-1] / amp[0] < 0.95)
    january = cfg.times.month == 1
    july = cfg.times.month == 7
    winter, summer = st[january].mean(axis=0), st[july].mean(axis=0)
    assert np.all(np.diff(winter, axis=0) > 0)  # winter profile warmer at depth
    assert np.all(np.diff(summer, axis=0) < 0)  # summer profile cooler at depth


# ---------------------------------------------------------------------- water balance
def _column_soils():
    sand = np.array([85.0, 40.0, 15.0, 60.0])
    clay = np.array([5.0, 20.0, 45.0, 10.0])
    p = saxton_rawls(np.repeat(sand[None], 11, 0), np.repeat(clay[None], 11, 0), np.full((11, 4), 2.0))
    return SoilLayers.from_properties(p, 4)


def test_water_step__bounded_and_closes_over_a_year():
    soil = _column_soils()
    rng = np.random.default_rng(7)
    theta = soil.wilting_point + 0.5 * (soil.field_capacity - soil.wilting_point)
    roots = root_fractions(np.array([1, 2, 3, 4]))
    worst = 0.0
    for day in range(400):
        rain = np.where(rng.random(4) < 0.3, rng.exponential(15.0, 4), 0.0)
        rain[3] = 120.0 if day == 200 else rain[3]  # a cloudburst
        melt = np.where(day < 30, 5.0, 0.0) * np.ones(4)
        frozen = np.zeros((11, 4), dtype=bool)
        frozen[:3] = day < 40
        new, flux = water_step(
            theta, soil, rain=rain, melt=melt, pet=np.full(4, 4.0 + 2.0 * np.sin(day / 58.0)),
            lai=np.array([4.0, 2.0, 1.0, 0.1]), roots=roots, frozen=frozen,
            open_water=np.array([False, False, False, day > 300]),
        )
        worst = max(worst, float(np.abs(flux.closure(theta, new)).max()))
        assert np.all(new >= soil.residual - 1e-12)
        assert np.all(new <= soil.porosity + 1e-12)
        for name in ("inflow", "interception", "soil_evaporation", "transpiration", "runoff", "drainage"):
            assert np.all(getattr(flux, name) >= 0.0)
        theta = new
    assert worst < 1e-6  # mm: P - ET - runoff - drainage (+ lake inflow) = ΔS


def test_water_step__frozen_ground_runs_off():
    soil = _column_soils()
    theta = soil.field_capacity.copy()
    kw: dict[str, Any] = {"rain": np.full(4, 30.0), "melt": np.zeros(4), "pet": np.zeros(4), "lai": np.zeros(4),
          "roots": root_fractions(np.array([2, 2, 2, 2])), "open_water": np.zeros(4, bool)}
    _, thawed = water_step(theta, soil, frozen=np.zeros((11, 4), bool), **kw)
    _, frozen = water_step(theta, soil, frozen=np.ones((11, 4), bool), **kw)
    assert np.all(frozen.runoff >= thawed.runoff)
    assert frozen.runoff.sum() > thawed.runoff.sum() + 20.0  # mm over the four soils
    assert np.all(frozen.drainage <= thawed.drainage)


def test_water_step__drainage_over_short_step_matches_conductivity():
    # Over 1/100 day a single wet layer drains ≈ K(θ) dt (unit gradient).
    soil = _column_soils()
    theta = np.repeat((0.5 * (soil.field_capacity[:1] + soil.porosity[:1])), 11, axis=0)
    theta[:-1] = soil.residual[:-1]  # only the bottom layer is wet: its loss leaves the column
    kw: dict[str, Any] = {"rain": np.zeros(4), "melt": np.zeros(4), "pet": np.zeros(4), "lai": np.zeros(4),
          "roots": root_fractions(np.array([2, 2, 2, 2])), "open_water": np.zeros(4, bool),
          "frozen": np.zeros((11, 4), bool)}
    _, flux = water_step(theta, soil, n_drain=1, **kw)
    k_day = 24.0 * unsaturated_conductivity(theta[-1], soil.porosity[-1], soil.ksat[-1], soil.b[-1])
    assert np.all(flux.drainage <= k_day)  # conductivity falls as the layer drains
    _, short = water_step(theta, soil, n_drain=100, **kw)
    assert np.all(short.drainage <= flux.drainage + 1e-9)


def test_simulate_tile__water_budget_closes(long_column):
    _, _, _, b = long_column
    soil = np.diff(b["soil_storage"], axis=0)
    balance = (b["rain"] + b["melt"] + b["inflow"] - b["et"] - b["runoff"] - b["drainage"])[1:]
    assert np.abs(balance - soil).max() < 1e-6  # mm
    snow = np.diff(b["snow_storage"], axis=0)
    assert np.abs((b["snowfall"] - b["melt"])[1:] - snow).max() < 1e-6
    annual = {k: v.sum(axis=0) / 2.0 for k, v in b.items() if k not in ("soil_storage", "snow_storage")}
    precip = annual["rain"] + annual["snowfall"]
    assert np.all(annual["et"] < precip) and np.all(annual["et"] > 0.3 * precip)


def test_report_layers__0_10_is_thickness_weighted():
    theta = np.linspace(0.1, 0.4, 11)[:, None]
    rep = report_layers(theta)
    assert rep.shape == (11, 1)
    assert rep[0, 0] == theta[0, 0]
    assert rep[1, 0] == pytest.approx(0.5 * theta[0, 0] + 0.5 * theta[1, 0])  # 5 cm + 5 cm
    np.testing.assert_array_equal(rep[2:], theta[2:])
    assert layer_sum(THICKNESS_MM)[0] == 1000.0


def test_root_fractions__sum_to_one_and_forest_deeper():
    r = root_fractions(np.array([1, 2]))
    np.testing.assert_allclose(r.sum(axis=0), 1.0)
    assert r[:3, 0].sum() < r[:3, 1].sum()  # forest roots deeper than grass


def test_priestley_taylor__hand_computed():
    # Rn 150 W m-2, 20 °C, sea level: Δ = 4098*2.3383/257.3² = 0.14474 kPa/K,
    # γ = 0.665e-3*101.3 = 0.067365, energy = 150*0.0864/2.45 = 5.2898 mm,
    # PET = 1.26 * 0.68240 * 5.2898 = 4.548 mm/day
    pet = priestley_taylor(np.array([150.0, -50.0]), np.array([293.15, 293.15]), np.array([0.0, 0.0]))
    assert pet[0] == pytest.approx(4.548, abs=0.005)
    assert pet[1] == 0.0


# ---------------------------------------------------------------------- forcing kernels
def test_toa_shortwave__fao56_example():
    # FAO-56 Example 8: 20° S on 3 September (day 246): Ra = 32.2 MJ m-2 day-1 = 372.7 W m-2
    ra = toa_shortwave(np.array([-20.0]), np.array([246.0]))
    assert ra[0, 0] == pytest.approx(32.2e6 / 86400.0, rel=0.005)


def test_snow_step__accumulates_below_freezing_and_melts_by_degree_days():
    swe, rain, melt = snow_step(np.array([0.0, 10.0]), np.array([5.0, 2.0]), np.array([268.15, 275.15]))
    np.testing.assert_allclose(swe, [5.0, 10.0 - 7.0])  # 3.5 mm/K/day * 2 K
    np.testing.assert_allclose(rain, [0.0, 2.0])
    np.testing.assert_allclose(melt, [0.0, 7.0])


def test_vegetation_indices__hand_computed():
    refl = np.array([[0.05], [0.40], [0.03], [0.08], [0.38], [0.22], [0.10]])
    ndvi, evi = vegetation_indices(refl)
    assert ndvi[0] == pytest.approx(0.35 / 0.45)
    assert evi[0] == pytest.approx(2.5 * 0.35 / (0.40 + 0.30 - 0.225 + 1.0))
    # Liang (2001): 0.160*0.05 + 0.291*0.40 + 0.243*0.03 + 0.116*0.08 + 0.112*0.38 + 0.081*0.10 - 0.0015
    assert broadband_albedo(refl)[0] == pytest.approx(0.19013, abs=1e-6)


# ---------------------------------------------------------------------- truth of the world
def test_make_world__soil_moisture_within_bounds(small_world):
    sm = small_world.truth["sm"].values
    res = small_world.static["residual"].values.min(axis=0)
    por = small_world.static["porosity"].values.max(axis=0)
    assert np.all(sm >= res[None, None] - 1e-6)
    assert np.all(sm <= por[None, None] + 1e-6)


def test_make_world__surface_moisture_rises_after_rain_and_dries_between(small_world):
    sm0 = small_world.truth["sm"].isel(depth_sm=0).values
    tp = small_world.forcing["tp"].values
    change = np.diff(sm0, axis=0)
    assert change[tp[1:] > 5.0].mean() > 0.01
    assert change[tp[1:] == 0.0].mean() < -0.003


def test_make_world__deeper_layers_vary_less(small_world):
    sm = small_world.layered("sm")["sm"]
    std = sm.std("time").mean(("y", "x")).values  # 0-5, 0-10, 10-20 ... 90-100 cm
    assert np.all(np.diff(std) < 0)


def test_make_world__day_night_range_anticorrelates_with_surface_moisture(small_world):
    # Partial correlation (per-pixel anomalies, radiation partialled out) on snow-free land.
    tr, fo = small_world.truth, small_world.forcing
    ok = (small_world.static["land_cover"].values != 5)[None] & (fo["sd"].values == 0) & ~tr["frozen"].values
    dtr = _anomaly((tr["lst_day"] - tr["lst_night"]).values, ok)
    sm0 = _anomaly(tr["sm"].isel(depth_sm=0).values, ok)
    rad = _anomaly(fo["ssrd"].values, ok)

    def residual(y):
        return y - np.polyval(np.polyfit(rad, y, 1), rad)

    r = np.corrcoef(residual(dtr), residual(sm0))[0, 1]
    assert r < -0.3


def test_make_world__moisture_indices_track_surface_moisture(small_world):
    # Soil-dominated pixels (LAI < 1, no snow/frost/water): NMDI falls (r < -0.3),
    # NSDSI and LSWI rise (r > 0.3) with 0-5 cm moisture.
    tr = small_world.truth
    ok = _soil_dominated(small_world)
    b = {k: tr[f"refl_b{k}"].values.astype("float64") for k in (2, 6, 7)}
    nmdi = (b[2] - (b[6] - b[7])) / (b[2] + (b[6] - b[7]))
    nsdsi = (b[6] - b[7]) / b[6]
    lswi = (b[2] - b[6]) / (b[2] + b[6])
    sm0 = tr["sm"].isel(depth_sm=0).values[ok]
    assert np.corrcoef(nmdi[ok], sm0)[0, 1] < -0.3
    assert np.corrcoef(nsdsi[ok], sm0)[0, 1] > 0.3
    assert np.corrcoef(lswi[ok], sm0)[0, 1] > 0.3


def test_make_world__ndvi_tracks_lai_and_snow_brightens(small_world):
    tr, fo = small_world.truth, small_world.forcing
    land = (small_world.static["land_cover"].values != 5)[None] & (fo["sd"].values == 0)
    assert np.corrcoef(tr["ndvi"].values[land], tr["lai"].values[land])[0, 1] > 0.8
    snowy = fo["sd"].values > 0.02
    assert tr["albedo"].values[snowy].mean() > tr["albedo"].values[~snowy].mean() + 0.2


def test_make_world__soil_surface_warmer_than_air_in_sunny_bare_places(small_world):
    tr, fo = small_world.truth, small_world.forcing
    bare = _soil_dominated(small_world) & (fo["ssr"].values > 200.0)
    excess = (tr["st"].isel(depth_st=0) - fo["t2m"]).values[bare]
    assert excess.mean() > 2.0
    night = (tr["lst_night"] - fo["t2m"]).values[bare]
    assert night.mean() < 0.0
