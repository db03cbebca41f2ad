"""Tests of trends, partial correlation, triple collocation, summaries, importance and doctests."""

from __future__ import annotations

import doctest
import importlib
from typing import Any

import dask
import numpy as np
import pandas as pd
import pymannkendall as pmk
import pytest
import xarray as xr
from pytesmo.metrics import tcol_metrics
from scipy import stats
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression

from soilfuse.exceptions import ConfigError, DataError, MissingVariableError
from soilfuse.validate import (
    drop_column_importance,
    mann_kendall,
    partial_correlation,
    partial_correlation_map,
    permutation_importance_table,
    season_of,
    station_metrics,
    stratified_metrics,
    trend_test,
    triple_collocation,
    triple_collocation_map,
)


def _raise_on_compute(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    msg = "a Dask graph was computed"
    raise RuntimeError(msg)


# ---------------------------------------------------------------------- trends
def test_mann_kendall__equals_pymannkendall_with_ties_and_nans() -> None:
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(40, 25)) + np.linspace(0, 1.5, 25), 1)  # rounding makes ties
    x[rng.random(x.shape) < 0.15] = np.nan
    res = mann_kendall(x)
    for i in range(x.shape[0]):
        ref = pmk.original_test(x[i])
        assert res.s[i] == ref.s
        assert res.var_s[i] == pytest.approx(ref.var_s, abs=1e-9)
        assert res.z[i] == pytest.approx(ref.z, abs=1e-12)
        assert res.p[i] == pytest.approx(ref.p, abs=1e-12)
        assert res.tau[i] == pytest.approx(ref.Tau, abs=1e-12)
        assert res.slope[i] == pytest.approx(ref.slope, abs=1e-12)
        assert res.intercept[i] == pytest.approx(ref.intercept, abs=1e-12)
        assert res.trend[i] == {"increasing": 1, "decreasing": -1, "no trend": 0}[ref.trend]
    assert (res.n == np.isfinite(x).sum(axis=1)).all()


def test_mann_kendall__hamed_rao_equals_pymannkendall_on_autocorrelated_series() -> None:
    rng = np.random.default_rng(1)
    n_pix, n_t = 25, 40
    x = np.zeros((n_pix, n_t))
    for t in range(1, n_t):  # AR(1) with phi 0.7 plus a weak trend
        x[:, t] = 0.7 * x[:, t - 1] + rng.normal(size=n_pix)
    x += 0.03 * np.arange(n_t)
    res = mann_kendall(x, correction="hamed_rao")
    plain = mann_kendall(x)
    changed = 0
    for i in range(n_pix):
        ref = pmk.hamed_rao_modification_test(x[i])
        assert res.var_s[i] == pytest.approx(ref.var_s, rel=1e-10)
        assert res.p[i] == pytest.approx(ref.p, abs=1e-10)
        changed += res.var_s[i] != plain.var_s[i]
    assert changed > n_pix // 2  # the correction is active on most autocorrelated series


def test_mann_kendall__known_trend_and_short_series() -> None:
    x = np.array([[1.0, 2.0, 2.0, 4.0, 5.0], [3.0, np.nan, np.nan, np.nan, 1.0]])
    res = mann_kendall(x, t=[2000.0, 2001.0, 2002.0, 2003.0, 2004.0])
    assert res.slope[0] == 1.0 and res.s[0] == 9  # 10 pairs, one tie
    assert res.var_s[0] == pytest.approx((5 * 4 * 15 - 2 * 1 * 9) / 18)
    assert np.isnan(res.p[1]) and res.trend[1] == 0 and res.n[1] == 2
    with pytest.raises(ConfigError, match="correction"):
        mann_kendall(x, correction="yue_wang")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="strictly increasing"):
        mann_kendall(x, t=[0, 1, 1, 2, 3])


def test_trend_test__lazy_and_equal_to_kernel() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(30, 6, 7)) + 0.05 * np.arange(30)[:, None, None]
    time = pd.date_range("1990-01-01", periods=30, freq="YS")
    da = xr.DataArray(data, dims=("time", "y", "x"), coords={"time": time}, attrs={"units": "m3 m-3"})
    lazy = da.chunk({"time": 10, "y": 4, "x": 3})
    with dask.config.set(scheduler=_raise_on_compute):
        out = trend_test(lazy, per="year")
    assert out["slope"].chunks is not None
    computed = out.compute()
    ref = mann_kendall(np.moveaxis(data, 0, -1), t=(time - time[0]).days.to_numpy() / 365.25)
    np.testing.assert_allclose(computed["slope"].values, ref.slope, atol=1e-12)
    np.testing.assert_array_equal(computed["trend"].values, ref.trend)
    assert computed["slope"].attrs["units"] == "m3 m-3 per year"
    np.testing.assert_allclose(trend_test(da)["p"].values, mann_kendall(np.moveaxis(data, 0, -1)).p, atol=1e-12)


# ---------------------------------------------------------------------- partial correlation
def _residual_partial(y: np.ndarray, xs: np.ndarray, j: int) -> float:
    others = np.column_stack([np.ones(y.size), np.delete(xs, j, axis=0).T])
    ry = y - others @ np.linalg.lstsq(others, y, rcond=None)[0]
    rx = xs[j] - others @ np.linalg.lstsq(others, xs[j], rcond=None)[0]
    return float(np.corrcoef(ry, rx)[0, 1])


def test_partial_correlation__equals_regression_residual_definition() -> None:
    rng = np.random.default_rng(4)
    n_pix, n = 5, 120
    xs = rng.normal(size=(n_pix, 3, n))
    xs[:, 1] += 0.6 * xs[:, 0]  # correlated drivers
    y = 0.7 * xs[:, 0] - 0.4 * xs[:, 1] + 0.2 * xs[:, 2] + 0.5 * rng.normal(size=(n_pix, n))
    y[2, :10] = np.nan
    r, p, count = partial_correlation(y, xs)
    assert r.shape == (n_pix, 3) and count.tolist() == [120, 120, 110, 120, 120]
    for i in range(n_pix):
        ok = np.isfinite(y[i])
        for j in range(3):
            expected = _residual_partial(y[i][ok], xs[i][:, ok], j)
            assert r[i, j] == pytest.approx(expected, abs=1e-10)
            dof = ok.sum() - 3 - 1
            t = expected * np.sqrt(dof / (1 - expected**2))
            assert p[i, j] == pytest.approx(2 * stats.t.sf(abs(t), dof), abs=1e-10)


def test_partial_correlation_map__lazy_and_named() -> None:
    rng = np.random.default_rng(5)
    shape = (60, 4, 5)
    tp, t2m = rng.normal(size=shape), rng.normal(size=shape)
    sm = 0.5 * tp - 0.2 * t2m + 0.3 * rng.normal(size=shape)
    dims = ("time", "y", "x")
    das = {k: xr.DataArray(v, dims=dims).chunk({"y": 2}) for k, v in {"tp": tp, "t2m": t2m}.items()}
    with dask.config.set(scheduler=_raise_on_compute):
        out = partial_correlation_map(xr.DataArray(sm, dims=dims).chunk({"y": 2}), das)
    out = out.compute()
    assert out["partial_r"].dims == ("y", "x", "driver") and out["driver"].values.tolist() == ["tp", "t2m"]
    r, _, _ = partial_correlation(
        np.moveaxis(sm, 0, -1), np.stack([np.moveaxis(tp, 0, -1), np.moveaxis(t2m, 0, -1)], axis=-2)
    )
    np.testing.assert_allclose(out["partial_r"].values, r, atol=1e-12)
    assert (out["partial_r"].sel(driver="tp") > 0.5).all() and (out["partial_r"].sel(driver="t2m") < 0).all()


def test_partial_correlation__degenerate_pixel_is_nan() -> None:
    y = np.vstack([np.arange(10.0), np.arange(10.0) ** 0.5])
    xs = np.stack([np.ones((2, 10)), np.random.default_rng(0).normal(size=(2, 10))], axis=-2)
    r, p, _ = partial_correlation(y, xs)
    assert np.isnan(r).all() and np.isnan(p).all()  # a constant driver has no partial correlation


# ---------------------------------------------------------------------- triple collocation
def test_triple_collocation__recovers_known_errors() -> None:
    rng = np.random.default_rng(6)
    n = 200_000
    truth = rng.normal(0.25, 0.06, n)
    sig = np.array([0.02, 0.01, 0.03])
    x = truth + rng.normal(0, sig[0], n)
    y = 0.05 + 0.5 * truth + rng.normal(0, sig[1], n)
    z = 1.5 * truth + rng.normal(0, sig[2], n)
    res = triple_collocation(x, y, z)
    # sampling error of a std estimate from 2e5 points is well below 1 %; allow 3 %
    np.testing.assert_allclose(res.err_std, sig, rtol=0.03)
    np.testing.assert_allclose(res.sensitivity, [0.06, 0.03, 0.09], rtol=0.03)
    snr_true = 10 * np.log10(np.array([0.06, 0.03, 0.09]) ** 2 / sig**2)
    np.testing.assert_allclose(res.snr_db, snr_true, atol=0.3)
    np.testing.assert_allclose(res.beta, [1.0, 2.0, 1.0 / 1.5], rtol=0.02)


def test_triple_collocation__matches_pytesmo() -> None:
    rng = np.random.default_rng(8)
    truth = rng.normal(0.2, 0.05, 500)
    x, y, z = (a * truth + rng.normal(0, s, 500) for a, s in ((1.0, 0.02), (0.8, 0.03), (1.2, 0.015)))
    for ref in (0, 1, 2):
        snr, err, beta = tcol_metrics(x, y, z, ref_ind=ref)
        res = triple_collocation(x, y, z, ref=ref)
        np.testing.assert_allclose(res.snr_db, snr, atol=1e-10)
        np.testing.assert_allclose(res.err_std_scaled, err, atol=1e-10)
        np.testing.assert_allclose(res.beta, beta, atol=1e-10)


def test_triple_collocation_map__pixels_match_kernel() -> None:
    rng = np.random.default_rng(9)
    truth = rng.normal(size=(300, 3, 4))
    arrays = [truth + rng.normal(0, s, truth.shape) for s in (0.2, 0.4, 0.6)]
    arrays[1][:20, 0, 0] = np.nan
    das = [
        xr.DataArray(a, dims=("time", "y", "x"), name=n).chunk({"x": 2})
        for a, n in zip(arrays, ("smap", "era5", "sfu"), strict=True)
    ]
    with dask.config.set(scheduler=_raise_on_compute):
        out = triple_collocation_map(*das)
    out = out.compute()
    assert out["product"].values.tolist() == ["smap", "era5", "sfu"]
    res = triple_collocation(*(np.moveaxis(a, 0, -1) for a in arrays))
    np.testing.assert_allclose(out["err_std"].transpose("product", "y", "x").values, res.err_std, atol=1e-12)
    assert out["n"].values[0, 0] == 280


# ---------------------------------------------------------------------- summaries
@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    rng = np.random.default_rng(10)
    time = pd.date_range("2020-01-01", "2020-12-31", freq="D")
    rows = []
    for i, (lc, lat) in enumerate([(1, 30.0), (1, 31.0), (2, 32.0), (3, -33.0)]):
        obs = 0.2 + 0.05 * np.sin(np.arange(time.size) / 30.0) + 0.01 * i
        pred = obs + rng.normal(0, 0.01 * (i + 1), time.size) + 0.01 * i
        rows.append(
            pd.DataFrame(
                {
                    "station_id": f"s{i}",
                    "time": time,
                    "layer": "0-5cm",
                    "obs": obs,
                    "pred": pred,
                    "land_cover": lc,
                    "lat": lat,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_season_of__months_and_hemispheres() -> None:
    t = pd.to_datetime(["2020-12-01", "2020-03-31", "2020-06-15", "2020-11-30"])
    assert season_of(t).tolist() == ["DJF", "MAM", "JJA", "SON"]
    assert season_of(t, lat=[-10, -10, 10, 10], hemisphere_aware=True).tolist() == [
        "summer",
        "autumn",
        "summer",
        "autumn",
    ]
    with pytest.raises(DataError, match="lat"):
        season_of(t, hemisphere_aware=True)


def test_stratified_metrics__pooled_and_station_median(pairs: pd.DataFrame) -> None:
    pooled = stratified_metrics(pairs, "land_cover")
    assert pooled.index.tolist() == [1, 2, 3]
    sub = pairs[pairs["land_cover"] == 1]
    assert pooled.loc[1, "RMSD"] == pytest.approx(np.sqrt(np.mean((sub["pred"] - sub["obs"]) ** 2)), abs=1e-12)
    assert pooled.loc[1, "n_stations"] == 2 and pooled.loc[1, "n_obs"] == len(sub)
    med = stratified_metrics(pairs, "land_cover", how="station_median")
    per = [np.sqrt(np.mean((g["pred"] - g["obs"]) ** 2)) for _, g in sub.groupby("station_id")]
    assert med.loc[1, "RMSD"] == pytest.approx(np.median(per), abs=1e-12)
    two = stratified_metrics(pairs.assign(season=season_of(pairs["time"])), ["layer", "season"])
    assert two.index.names == ["layer", "season"] and len(two) == 4
    with pytest.raises(MissingVariableError, match="climate_zone"):
        stratified_metrics(pairs, "climate_zone")


def test_station_metrics__one_row_per_station_with_coordinates(pairs: pd.DataFrame) -> None:
    stations = pd.DataFrame(
        {
            "station_id": ["s0", "s1", "s2", "s3"],
            "lat": [30, 31, 32, -33],
            "lon": [100, 101, 102, 150],
            "network": "X",
            "climate_zone": [1, 2, 3, 4],
        }
    )
    table = station_metrics(pairs.drop(columns=["lat"]), stations, by="layer")
    assert table["station_id"].tolist() == ["s0", "s1", "s2", "s3"]
    assert {"lat", "lon", "network", "climate_zone", "R", "urmsd"} <= set(table.columns)
    s3 = pairs[pairs["station_id"] == "s3"]
    assert table.loc[3, "BIAS"] == pytest.approx((s3["pred"] - s3["obs"]).mean(), abs=1e-12)


# ---------------------------------------------------------------------- importance
@pytest.fixture(scope="module")
def regression() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12)
    n = 400
    block = np.repeat(np.arange(20), 20)
    X = pd.DataFrame(
        {
            "ndvi": rng.normal(size=n),
            "lst": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "elevation": np.repeat(rng.normal(size=20), 20),
        }
    )
    y = 2.0 * X["ndvi"] + 1.0 * X["lst"] + 1.5 * X["elevation"] + 0.1 * rng.normal(size=n)
    return X, y.to_numpy(), block


def test_permutation_importance_table__plain_delegates_to_sklearn(regression) -> None:
    X, y, _ = regression
    model = LinearRegression().fit(X, y)
    table = permutation_importance_table(model, X, y, n_repeats=4, random_state=0)
    ref = permutation_importance(model, X, y, n_repeats=4, random_state=0)
    np.testing.assert_allclose(table.loc[list(X.columns), "importance_mean"], ref["importances_mean"], atol=1e-12)
    assert table.index[0] == "ndvi" and table.loc["noise", "importance_mean"] < 0.01
    assert table["baseline_score"].iloc[0] == pytest.approx(model.score(X, y))


def test_permutation_importance_table__within_blocks_and_feature_groups(regression) -> None:
    X, y, block = regression
    model = LinearRegression().fit(X, y)
    blocked = permutation_importance_table(model, X, y, groups=block, n_repeats=3, random_state=0)
    # elevation is constant inside each block: shuffling within blocks changes nothing
    assert blocked.loc["elevation", "importance_mean"] == 0.0
    assert blocked.loc["ndvi", "importance_mean"] > 1.0
    grouped = permutation_importance_table(
        model, X, y, feature_groups={"optical": ["ndvi", "lst"], "other": ["noise"]}, n_repeats=3, random_state=0
    )
    assert grouped.index.tolist() == ["optical", "other"]
    assert grouped.loc["optical", "importance_mean"] > blocked.loc["ndvi", "importance_mean"]
    with pytest.raises(MissingVariableError, match="soil"):
        permutation_importance_table(model, X, y, feature_groups={"soil": ["clay"]})


def test_drop_column_importance__refits_without_each_feature(regression) -> None:
    X, y, block = regression
    from soilfuse.validate import SpatialBlockKFold

    table = drop_column_importance(LinearRegression(), X, y, cv=SpatialBlockKFold(n_splits=4), groups=block)
    assert table.index[0] == "ndvi"
    assert table.loc["noise", "importance"] == pytest.approx(0.0, abs=0.01)
    assert table.loc["ndvi", "importance"] > 0.2
    assert (table["baseline_score"] > 0.99).all()


# ---------------------------------------------------------------------- doctests
@pytest.mark.parametrize(
    "module",
    [
        "soilfuse.validate",
        "soilfuse.validate.metrics",
        "soilfuse.validate.splitters",
        "soilfuse.validate.summaries",
        "soilfuse.validate.importance",
        "soilfuse.validate.trends",
        "soilfuse.validate.partial",
        "soilfuse.validate.running",
        "soilfuse.validate.collocation",
        "soilfuse.validate.compare",
        "soilfuse.sample",
        "soilfuse.report",
        "soilfuse.report.figures",
    ],
)
def test_docstring_examples__run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
