"""Tests of soilfuse.validate.metrics: hand arithmetic, pytesmo agreement, CI coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pytesmo import metrics as pm
from pytesmo.metrics import pairwise as pw
from pytesmo.metrics.confidence_intervals import with_analytical_ci
from scipy import stats

from soilfuse.exceptions import DataError
from soilfuse.validate import metrics as m

# obs and pred of the hand-computed cases; the last two pairs are incomplete and ignored.
OBS = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 6.0])
PRED = np.array([2.0, 2.0, 4.0, 5.0, 7.0, np.nan])


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    obs = rng.gamma(4.0, 0.05, 400)
    pred = 0.8 * obs + 0.03 + rng.normal(0, 0.03, obs.size)
    return obs, pred


# ---------------------------------------------------------------------- hand arithmetic
def test_bias__hand_computed() -> None:
    # valid pairs (1,2) (2,2) (3,4) (4,5): differences pred - obs = 1, 0, 1, 1 -> mean 0.75
    assert m.bias(OBS, PRED) == pytest.approx(0.75, abs=1e-15)
    assert m.n_pairs(OBS, PRED) == 4


def test_rmse__hand_computed() -> None:
    # squared differences 1, 0, 1, 1 -> mean 0.75 -> sqrt(0.75)
    assert m.rmse(OBS, PRED) == pytest.approx(np.sqrt(0.75), abs=1e-15)


def test_ubrmse__hand_computed() -> None:
    # differences minus their mean 0.75: 0.25, -0.75, 0.25, 0.25 -> squares sum 0.75 -> /4 = 0.1875
    assert m.ubrmse(OBS, PRED) == pytest.approx(np.sqrt(0.1875), abs=1e-15)
    # identity ubRMSE^2 = RMSE^2 - bias^2 = 0.75 - 0.5625
    assert m.ubrmse(OBS, PRED) ** 2 == pytest.approx(m.rmse(OBS, PRED) ** 2 - m.bias(OBS, PRED) ** 2, abs=1e-15)


def test_mae__hand_computed() -> None:
    # |1| + |0| + |1| + |1| = 3 over 4 pairs; median of (0, 1, 1, 1) is 1
    assert m.mae(OBS, PRED) == pytest.approx(0.75, abs=1e-15)
    assert m.mad(OBS, PRED) == pytest.approx(1.0, abs=1e-15)


def test_pearson_r__hand_computed() -> None:
    # obs deviations (-1.5, -0.5, 0.5, 1.5), sum sq 5; pred mean 3.25, deviations
    # (-1.25, -1.25, 0.75, 1.75), sum sq 6.75; cross products sum 5.5
    r = 5.5 / np.sqrt(5.0 * 6.75)
    assert m.pearson_r(OBS, PRED) == pytest.approx(r, abs=1e-14)
    assert m.r_squared(OBS, PRED) == pytest.approx(r**2, abs=1e-14)


def test_nse__hand_computed() -> None:
    # 1 - SSE/SST = 1 - 3 / 5
    assert m.nse(OBS, PRED) == pytest.approx(0.4, abs=1e-15)
    assert m.r_squared(OBS, PRED, kind="determination") == pytest.approx(0.4, abs=1e-15)


def test_kge__hand_computed_2009_and_2012() -> None:
    r = 5.5 / np.sqrt(5.0 * 6.75)
    alpha = np.sqrt(6.75 / 5.0)  # std ratio (population stds, the 4s cancel)
    beta = 3.25 / 2.5  # mean ratio
    assert m.kge(OBS, PRED) == pytest.approx(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2), abs=1e-14)
    gamma = (np.sqrt(6.75 / 4) / 3.25) / (np.sqrt(5.0 / 4) / 2.5)  # ratio of coefficients of variation
    assert m.kge(OBS, PRED, version=2012) == pytest.approx(
        1 - np.sqrt((r - 1) ** 2 + (gamma - 1) ** 2 + (beta - 1) ** 2), abs=1e-14
    )


def test_mse_decomposition__hand_computed() -> None:
    # population stds sqrt(5/4), sqrt(6.75/4); mse = 0.75
    so, sp = np.sqrt(5 / 4), np.sqrt(6.75 / 4)
    r = 5.5 / np.sqrt(5.0 * 6.75)
    mse, corr, bias2, var = m.mse_decomposition(OBS, PRED)
    assert mse == pytest.approx(0.75, abs=1e-14)
    assert corr == pytest.approx(2 * so * sp * (1 - r), abs=1e-14)
    assert bias2 == pytest.approx(0.5625, abs=1e-15)
    assert var == pytest.approx((sp - so) ** 2, abs=1e-15)


def test_g_down__hand_computed() -> None:
    obs = np.array([1.0, 2.0, 3.0, 4.0])
    fine = obs + 0.5  # R = 1, slope 1, bias 0.5
    coarse = 2.0 * obs  # R = 1, slope 2, bias 2.5
    parts = m.g_down_components(obs, fine, coarse)
    assert parts["G_R"] == 0.0  # both correlations perfect: no gain, no loss
    assert parts["G_B"] == pytest.approx((2.5 - 0.5) / (2.5 + 0.5), abs=1e-14)
    assert parts["G_S"] == pytest.approx((1.0 - 0.0) / (1.0 + 0.0), abs=1e-14)
    assert parts["G_down"] == pytest.approx((0.0 + 2.0 / 3.0 + 1.0) / 3.0, abs=1e-14)


def test_g_down__sign_on_constructed_cases() -> None:
    rng = np.random.default_rng(3)
    obs = rng.uniform(0.05, 0.40, (50, 200))  # 50 stations x 200 days
    good = obs + rng.normal(0, 0.01, obs.shape)
    poor = 0.5 * obs.mean(axis=1, keepdims=True) + 0.1 + rng.normal(0, 0.05, obs.shape)
    better = m.g_down(obs, good, poor)
    worse = m.g_down(obs, poor, good)
    assert better.shape == (50,)
    assert (better > 0).all() and (worse < 0).all()
    np.testing.assert_allclose(better, -worse, atol=1e-12)  # the gain is antisymmetric
    assert (m.g_down(obs, good, good) == 0).all()


def test_g_down_table__per_station() -> None:
    obs = np.tile([1.0, 2.0, 3.0, 4.0], 2)
    fine = obs + 0.5
    coarse = np.concatenate([2.0 * obs[:4], obs[4:] + 0.5])
    table = m.g_down_table(obs, fine, coarse, ["a"] * 4 + ["b"] * 4, min_obs=4)
    assert table.loc["a", "G_down"] == pytest.approx(5.0 / 9.0, abs=1e-14)
    assert table.loc["b", "G_down"] == 0.0
    assert table["n_obs"].tolist() == [4.0, 4.0]


# ---------------------------------------------------------------------- pytesmo agreement
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (m.pearson_r, lambda o, p: pm.pearson_r(o, p)),
        (m.spearman_rho, lambda o, p: pm.spearman_r(o, p)),
        (m.rmse, lambda o, p: pm.rmsd(o, p)),
        (m.ubrmse, lambda o, p: pm.ubrmsd(o, p)),
        (m.bias, lambda o, p: pm.bias(p, o)),
        (m.nse, lambda o, p: pm.nash_sutcliffe(o, p)),
        (m.mae, lambda o, p: pm.aad(o, p)),
        (m.mad, lambda o, p: pm.mad(o, p)),
    ],
)
def test_metrics__match_pytesmo(pair: tuple[np.ndarray, np.ndarray], ours, theirs) -> None:
    obs, pred = pair
    assert float(ours(obs, pred)) == pytest.approx(float(theirs(obs, pred)), abs=1e-10)


def test_mse_decomposition__matches_pytesmo(pair: tuple[np.ndarray, np.ndarray]) -> None:
    obs, pred = pair
    np.testing.assert_allclose(m.mse_decomposition(obs, pred), pm.mse_decomposition(obs, pred), atol=1e-10)


def test_confidence_intervals__match_pytesmo(pair: tuple[np.ndarray, np.ndarray]) -> None:
    obs, pred = pair
    _, lo, hi = with_analytical_ci(pm.pearson_r, obs, pred, alpha=0.1)
    np.testing.assert_allclose(m.pearson_r_ci(obs, pred, alpha=0.1), (lo, hi), atol=1e-10)
    _, lo, hi = with_analytical_ci(pm.bias, pred, obs)
    np.testing.assert_allclose(m.bias_ci(obs, pred), (lo, hi), atol=1e-10)
    _, lo, hi = with_analytical_ci(pm.ubrmsd, obs, pred)
    np.testing.assert_allclose(m.ubrmse_ci(obs, pred), (lo, hi), atol=1e-10)
    _, lo, hi = with_analytical_ci(pm.spearman_r, obs, pred)
    np.testing.assert_allclose(m.spearman_rho_ci(obs, pred), (lo, hi), atol=1e-10)


def test_pvalues__match_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    obs, pred = pair
    short = slice(0, 15)  # a weak correlation so that the p-values are not ~0
    noisy = pred[short] + np.linspace(-0.2, 0.2, 15)[::-1]
    assert float(m.pearson_r_pvalue(obs[short], noisy)) == pytest.approx(
        stats.pearsonr(obs[short], noisy).pvalue, abs=1e-10
    )
    table = m.metrics_table(obs[short], noisy, min_obs=3)
    assert table["p_rho"].iloc[0] == pytest.approx(stats.spearmanr(obs[short], noisy).pvalue, abs=1e-10)


def test_rmse_ci__chi_square_with_n_degrees(pair: tuple[np.ndarray, np.ndarray]) -> None:
    obs, pred = pair
    n = obs.size
    msd = pw.msd(obs, pred)
    expected = (np.sqrt(n * msd / stats.chi2.ppf(0.975, n)), np.sqrt(n * msd / stats.chi2.ppf(0.025, n)))
    np.testing.assert_allclose(m.rmse_ci(obs, pred), expected, atol=1e-12)


# ---------------------------------------------------------------------- statistical coverage
def test_confidence_intervals__cover_truth_at_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    reps, n, sigma, rho = 4000, 60, 0.04, 0.6
    obs = rng.normal(0.25, 0.05, (reps, n))
    err = rng.normal(0.0, sigma, (reps, n))
    cover_rmse = np.mean((lambda lo_hi: (lo_hi[0] <= sigma) & (sigma <= lo_hi[1]))(m.rmse_ci(obs, obs + err)))
    cover_ub = np.mean((lambda lo_hi: (lo_hi[0] <= sigma) & (sigma <= lo_hi[1]))(m.ubrmse_ci(obs, obs + 0.1 + err)))
    cover_bias = np.mean((lambda lo_hi: (lo_hi[0] <= 0.1) & (0.1 <= lo_hi[1]))(m.bias_ci(obs, obs + 0.1 + err)))
    z = rng.normal(size=(reps, n))
    y = rho * (obs - 0.25) / 0.05 + np.sqrt(1 - rho**2) * z
    lo, hi = m.pearson_r_ci(obs, y)
    cover_r = np.mean((lo <= rho) & (rho <= hi))
    # 4000 replicates: the standard error of a 95 % coverage estimate is 0.0034
    for cover in (cover_rmse, cover_ub, cover_bias, cover_r):
        assert 0.93 < cover < 0.97


# ---------------------------------------------------------------------- vectorisation
def test_metrics__vectorised_rows_equal_loop() -> None:
    rng = np.random.default_rng(5)
    obs = rng.normal(size=(6, 50))
    pred = obs + rng.normal(0, 0.5, obs.shape)
    obs[rng.random(obs.shape) < 0.2] = np.nan
    pred[rng.random(obs.shape) < 0.2] = np.nan
    for name, func in m.METRICS.items():
        rows = func(obs, pred)
        for i in range(obs.shape[0]):
            ok = np.isfinite(obs[i]) & np.isfinite(pred[i])
            assert rows[i] == pytest.approx(float(func(obs[i][ok], pred[i][ok])), abs=1e-12), name
        cols = func(obs.T, pred.T, axis=0)
        np.testing.assert_allclose(cols, rows, atol=1e-12, err_msg=name)


def test_metrics__too_few_pairs_give_nan() -> None:
    assert np.isnan(m.pearson_r([1.0, np.nan], [2.0, 3.0]))
    assert np.isnan(m.rmse([np.nan], [1.0]))
    lo, hi = m.pearson_r_ci([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert np.isnan(lo) and np.isnan(hi)


# ---------------------------------------------------------------------- tables
def test_metrics_table__columns_and_values(pair: tuple[np.ndarray, np.ndarray]) -> None:
    obs, pred = pair
    table = m.metrics_table(obs, pred)
    for col in (
        "R",
        "p_R",
        "rho",
        "p_rho",
        "BIAS",
        "RMSD",
        "urmsd",
        "mse",
        "mse_corr",
        "mse_bias",
        "mse_var",
        "RSS",
        "n_obs",
        "R_ci_lower",
        "R_ci_upper",
        "BIAS_ci_lower",
        "urmsd_ci_upper",
        "RMSD_ci_lower",
        "R2",
        "MAE",
        "NSE",
        "KGE",
    ):
        assert col in table.columns
    row = table.loc["all"]
    assert row["RMSD"] == pytest.approx(pm.rmsd(obs, pred), abs=1e-12)
    assert row["urmsd"] == pytest.approx(pm.ubrmsd(obs, pred), abs=1e-12)
    assert row["RSS"] == pytest.approx(pm.RSS(obs, pred), abs=1e-10)
    assert row["n_obs"] == obs.size


def test_metrics_table__groups_and_min_obs() -> None:
    obs = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 5.0])
    pred = np.array([2.0, 2.0, 4.0, 5.0, 1.0, 3.0, 5.0])
    table = m.metrics_table(obs, pred, ["b", "b", "b", "b", "a", "a", "c"], min_obs=2)
    assert table.index.tolist() == ["a", "b", "c"]
    assert table.loc["b", "BIAS"] == pytest.approx(0.75, abs=1e-15)
    assert table.loc["a", "BIAS"] == pytest.approx(0.5, abs=1e-15)
    assert table.loc["c", "n_obs"] == 1 and np.isnan(table.loc["c", "BIAS"])


def test_pooled_and_median__differ_on_constructed_case() -> None:
    # Two stations far apart in level; inside each station the estimate runs backwards.
    t = np.linspace(0.0, 1.0, 20)
    obs = np.concatenate([0.10 + 0.02 * t, 0.40 + 0.02 * t])
    pred = np.concatenate([0.10 + 0.02 * t[::-1], 0.40 + 0.02 * t[::-1]])
    station = np.repeat(["a", "b"], 20)
    table = m.pooled_and_median(obs, pred, station)
    assert table.loc["pooled", "R"] > 0.99  # between-station contrast dominates
    assert table.loc["station_median", "R"] == pytest.approx(-1.0, abs=1e-12)
    assert table.loc["station_median", "n_obs"] == 2
    assert table.loc["pooled", "urmsd"] > table.loc["station_median", "urmsd"] - 1e-12


def test_metrics__bad_input_raises() -> None:
    with pytest.raises(DataError, match="broadcastable"):
        m.rmse(np.ones(3), np.ones(4))
    with pytest.raises(DataError, match="alpha"):
        m.bias_ci(np.ones(5), np.ones(5), alpha=1.5)
    with pytest.raises(DataError, match="groups"):
        m.metrics_table(np.ones(3), np.ones(3), groups=["a", "b"])
    with pytest.raises(DataError, match="version"):
        m.kge(np.ones(3), np.ones(3), version=2010)  # type: ignore[arg-type]
    assert isinstance(m.metrics_table(np.ones(3), np.ones(3), min_obs=1), pd.DataFrame)


# ---------------------------------------------------------------------- running scores
def test_running_scores__batches_match_one_pass_metrics() -> None:
    from soilfuse.validate import RunningScores

    rng = np.random.default_rng(2)
    obs = rng.uniform(0.05, 0.4, 500)
    pred = obs + rng.normal(0.02, 0.03, 500)
    obs[::7] = np.nan
    s = RunningScores().add(obs[:250], pred[:250]).add(obs[250:], pred[250:]).scores()
    assert s["n"] == np.isfinite(obs).sum()
    assert s["ubRMSE"] == pytest.approx(float(m.ubrmse(obs, pred, axis=None)), rel=1e-9)
    assert s["bias"] == pytest.approx(float(np.nanmean(pred - obs)), rel=1e-9)
    assert s["RMSE"] == pytest.approx(float(m.rmse(obs, pred, axis=None)), rel=1e-9)
    assert s["R"] == pytest.approx(float(m.pearson_r(obs, pred, axis=None)), rel=1e-9)


def test_running_scores__large_means_and_few_pairs() -> None:
    from soilfuse.validate import RunningScores

    # temperatures in K: the centred merge keeps R exact where raw sums of squares would not
    ref = 290.0 + np.array([0.0, 1.0, 2.0, 3.0]) * 1e-3
    est = ref + np.array([1e-4, -1e-4, 1e-4, -1e-4])
    s = RunningScores().add(ref[:2], est[:2]).add(ref[2:], est[2:]).scores()
    assert s["R"] == pytest.approx(float(np.corrcoef(ref, est)[0, 1]), rel=1e-6)
    assert np.isnan(RunningScores().add([1.0], [2.0]).scores()["R"])
    assert np.isnan(RunningScores().add([1.0, 2.0], [1.0, 2.5]).scores(min_n=3)["RMSE"])
