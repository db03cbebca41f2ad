"""Tests of the KS-checked split, the per-window model selector and the windowed downscaler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from soilfuse.exceptions import ConfigError, DataError
from soilfuse.models._model_zoo import MODEL_NAMES, MODEL_ZOO, make_model, param_grid
from soilfuse.models.window import (
    WindowedDownscaler,
    WindowModelSelector,
    ks_stratified_split,
    window_label,
    window_sequence,
    window_start,
)

# single-candidate grids except SVR (two, so GridSearchCV runs): fast estimator checks
_TINY = {"MLR": {}, "SVR": {"C": [1.0, 10.0]}, "ANN": {"hidden_layer_sizes": [(8,)], "max_iter": [100]},
         "RF": {"n_estimators": [10], "max_depth": [4]}, "XGB": {"n_estimators": [10], "max_depth": [3]}}
_LIGHT = WindowModelSelector(models=("MLR", "XGB"), grid="test", cv=3)


def _window_frame(counts: dict[str, int], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Samples spread uniformly over the days of each window ``label -> count``."""
    rng = np.random.default_rng(seed)
    parts = []
    for label, n in counts.items():
        start = pd.Timestamp(f"{label[:4]}-01-01") + pd.Timedelta(days=int(label[4:]) - 1)
        parts.append(start + pd.to_timedelta(rng.integers(0, 13, n), "D"))
    time = pd.DatetimeIndex(np.concatenate(parts))
    n = len(time)
    X = pd.DataFrame({"time": time, "x1": rng.uniform(-3, 3, n), "x2": rng.uniform(-2, 2, n)})
    y = 0.2 + 0.05 * np.sin(1.5 * X["x1"].to_numpy()) + 0.03 * X["x2"].to_numpy() ** 2 + 0.005 * rng.normal(size=n)
    return X, y


# ---------------------------------------------------------------------- KS split
def test_ks_stratified_split__every_date_halved_and_ks_passes() -> None:
    rng = np.random.default_rng(0)
    sizes = [1, 2, 3, 7, 10, 25, 40, 41]  # odd counts included
    dates = np.repeat(pd.date_range("2020-01-01", periods=len(sizes)).to_numpy(), sizes)
    y = rng.gamma(2.0, 0.05, dates.size)
    train, test, p, tries = ks_stratified_split(y, dates, random_state=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(y.size))
    assert len(test) == round(y.size / 2)
    for d in np.unique(dates):
        n_tr, n_te = int(np.sum(dates[train] == d)), int(np.sum(dates[test] == d))
        assert abs(n_tr - n_te) <= 1
    assert p > 0.05 and tries >= 1
    assert p == pytest.approx(stats.ks_2samp(y[train], y[test]).pvalue)


def test_ks_stratified_split__redraws_until_alpha() -> None:
    y = np.random.default_rng(1).normal(size=400)
    dates = np.repeat(np.arange(20), 20)
    _, _, p, tries = ks_stratified_split(y, dates, alpha=0.99, random_state=0)
    # a single draw passes p > 0.99 with probability ~0.01: several draws were needed,
    # and the same seed with one draw fewer allowed fails
    assert p > 0.99 and tries > 1
    with pytest.raises(DataError, match=f"in {tries - 1} draws"):
        ks_stratified_split(y, dates, alpha=0.99, max_tries=tries - 1, random_state=0)


def test_ks_stratified_split__deterministic_with_seed() -> None:
    y = np.random.default_rng(2).normal(size=300)
    dates = np.repeat(pd.date_range("2021-03-01", periods=10), 30)
    a = ks_stratified_split(y, dates, random_state=7)
    b = ks_stratified_split(y, dates, random_state=7)
    c = ks_stratified_split(y, dates, random_state=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:] == b[2:]
    assert not np.array_equal(a[1], c[1])


def test_ks_stratified_split__error_after_max_tries() -> None:
    # p > 0.999 needs a train/test KS distance below ~0.02 for 1000 + 1000 samples; a
    # random half split reaches it with probability ~0.001 per draw, so 25 draws fail
    y = np.random.default_rng(3).normal(size=2000)
    dates = np.repeat(np.arange(10), 200)
    with pytest.raises(DataError, match=r"in 25 draws; the best p was"):
        ks_stratified_split(y, dates, alpha=0.999, max_tries=25, random_state=0)
    with pytest.raises(DataError, match="Cannot split 1 samples"):
        ks_stratified_split([0.1], ["2020-01-01"])
    with pytest.raises(DataError, match="non-finite"):
        ks_stratified_split([0.1, np.nan, 0.2], [1, 1, 1])
    with pytest.raises(ConfigError, match="test_size"):
        ks_stratified_split([0.1, 0.2], [1, 1], test_size=1.0)


# ---------------------------------------------------------------------- model zoo
def test_model_zoo__codes_grids_and_prefixes() -> None:
    assert MODEL_NAMES == ("MLR", "SVR", "ANN", "RF", "XGB")
    assert [MODEL_ZOO[m].code for m in MODEL_NAMES] == [0, 1, 2, 3, 4]
    for name in MODEL_NAMES:
        model = make_model(name, random_state=0)
        for profile in ("paper", "demo", "test"):
            model.set_params(**{k: v[0] for k, v in param_grid(name, profile).items()})  # keys are valid
    assert make_model("RF").get_params()["max_depth"] == 16  # bounded, not scikit-learn's None
    assert make_model("XGB").get_params()["tree_method"] == "hist"
    with pytest.raises(ConfigError, match="Unknown model 'GBM'"):
        make_model("GBM")


# ---------------------------------------------------------------------- selector
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([WindowModelSelector(grid=_TINY, cv=2, random_state=0)])
def test_window_model_selector__sklearn_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


def _linear_window(seed: int = 1, n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"time": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 16, n), "D"),
                      "a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = 0.25 + 0.03 * X["a"].to_numpy() - 0.02 * X["b"].to_numpy() + 0.02 * rng.normal(size=n)
    return X, y


def test_window_model_selector__paper_and_test_rules_differ() -> None:
    # linear truth + noise: an unregularised deep XGB memorises the training half
    X, y = _linear_window()
    overfit = {"n_estimators": [300], "max_depth": [10], "learning_rate": [0.3], "subsample": [1.0],
               "colsample_bytree": [1.0], "min_child_weight": [0.0], "reg_lambda": [0.0]}
    grid = {"MLR": {}, "XGB": overfit}
    paper = WindowModelSelector(models=("MLR", "XGB"), grid=grid, selection="paper", random_state=0).fit(X, y)
    test = WindowModelSelector(models=("MLR", "XGB"), grid=grid, selection="test", random_state=0).fit(X, y)
    s = paper.scores_.set_index("model")
    assert s.loc["XGB", "train_rmse"] < 0.05 * s.loc["XGB", "test_rmse"]
    assert s.loc["MLR", "test_rmse"] < s.loc["XGB", "test_rmse"]  # MLR generalises better (~0.021 vs ~0.028)
    assert s.loc["XGB", "mean_rmse"] < s.loc["MLR", "mean_rmse"]  # but its train/test mean is lower
    assert paper.selected_ == "XGB"
    assert test.selected_ == "MLR"
    # noise sd is 0.02: MLR's test RMSE is near it
    assert s.loc["MLR", "test_rmse"] == pytest.approx(0.02, abs=0.003)


def test_window_model_selector__trees_beat_mlr_on_nonlinear() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    X = pd.DataFrame({"time": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 16, n), "D"),
                      "x1": rng.uniform(-3, 3, n), "x2": rng.uniform(-2, 2, n), "x3": rng.normal(size=n)})
    y = np.sin(1.5 * X["x1"].to_numpy()) + X["x2"].to_numpy() ** 2 + 0.1 * rng.normal(size=n)
    sel = WindowModelSelector(models=("MLR", "RF", "XGB"), grid="test", random_state=0).fit(X, y)
    s = sel.scores_.set_index("model")
    assert s.loc["XGB", "test_rmse"] < 0.2 * s.loc["MLR", "test_rmse"]  # ~0.14 vs ~1.34
    assert s.loc["RF", "test_rmse"] < 0.5 * s.loc["MLR", "test_rmse"]  # ~0.49 vs ~1.34
    assert sel.selected_ == "XGB"
    assert (sel.n_train_, sel.n_test_) == (1000, 1000)
    assert sel.ks_pvalue_ > 0.05
    # scores are the definitions applied to the halves
    pred = sel.predict_all(X)
    test = sel.test_index_
    rmse = float(np.sqrt(np.mean((pred["RF"].to_numpy()[test] - y[test]) ** 2)))
    assert rmse == pytest.approx(s.loc["RF", "test_rmse"], rel=1e-12)
    r = float(np.corrcoef(pred["RF"].to_numpy()[test], y[test])[0, 1])
    assert r == pytest.approx(s.loc["RF", "test_r"], rel=1e-12)
    np.testing.assert_array_equal(sel.predict(X), pred["XGB"].to_numpy())
    assert list(sel.scores_.columns) == ["model", "train_r", "train_rmse", "test_r", "test_rmse", "mean_rmse",
                                         "cv_rmse", "best_params"]


def test_window_model_selector__refit_train_or_all() -> None:
    X, y = _linear_window(seed=4, n=200)
    features = X.drop(columns="time").to_numpy()
    half = WindowModelSelector(models=("MLR",), refit="train", random_state=0).fit(X, y)
    full = WindowModelSelector(models=("MLR",), refit="all", random_state=0).fit(X, y)
    on_train = LinearRegression().fit(features[half.train_index_], y[half.train_index_]).predict(features)
    on_all = LinearRegression().fit(features, y).predict(features)
    np.testing.assert_allclose(half.predict(X), on_train, atol=1e-12)
    np.testing.assert_allclose(full.predict(X), on_all, atol=1e-12)
    pd.testing.assert_frame_equal(half.scores_, full.scores_)  # scores describe the split either way


def test_window_model_selector__dates_column_or_argument() -> None:
    X, y = _linear_window(seed=5, n=200)
    by_column = WindowModelSelector(models=("MLR", "XGB"), grid="test", random_state=1).fit(X, y)
    by_arg = WindowModelSelector(models=("MLR", "XGB"), grid="test", random_state=1).fit(
        X.drop(columns="time"), y, dates=X["time"].to_numpy())
    pd.testing.assert_frame_equal(by_column.scores_, by_arg.scores_)
    assert list(by_column.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(by_column.predict(X), by_column.predict(X.drop(columns="time")))
    with pytest.raises(ConfigError, match="both as column 'time'"):
        WindowModelSelector(models=("MLR",)).fit(X, y, dates=X["time"])
    with pytest.raises(ConfigError, match="models must be distinct names"):
        WindowModelSelector(models=("MLR", "GBM")).fit(X, y)
    with pytest.raises(ConfigError, match="selection must be"):
        WindowModelSelector(selection="best").fit(X, y)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_window_model_selector__save_load_roundtrip(tmp_path: Path) -> None:
    X, y = _linear_window(seed=6, n=160)
    sel = WindowModelSelector(grid=_TINY, cv=2, random_state=0).fit(X, y)
    folder = sel.save(tmp_path / "sel")
    assert {p.suffix for p in folder.iterdir()} == {".ubj", ".skops", ".json", ".csv"}
    again = WindowModelSelector.load(folder)
    pd.testing.assert_frame_equal(again.predict_all(X), sel.predict_all(X))
    assert again.selected_ == sel.selected_


# ---------------------------------------------------------------------- calendar
def test_window_start__doy_edges_and_year_boundaries() -> None:
    dates = ["2020-01-01", "2020-01-16", "2020-01-17", "2020-12-17", "2020-12-18", "2020-12-31",
             "2019-12-18", "2019-12-19", "2019-12-31", "2021-01-01"]
    # DOY: 1, 16, 17, 352, 353, 366 (leap), 352, 353, 365, 1
    assert window_label(window_start(dates)) == [
        "2020001", "2020001", "2020017", "2020337", "2020353", "2020353",
        "2019337", "2019353", "2019353", "2021001",
    ]
    seq = window_label(window_sequence("2019-12-19", "2021-01-01"))
    assert len(seq) == 1 + 23 + 1
    assert seq[:3] == ["2019353", "2020001", "2020017"] and seq[-2:] == ["2020353", "2021001"]
    tz = pd.DatetimeIndex(["2020-01-17 02:00"]).tz_localize("Asia/Shanghai")  # 2020-01-16 18:00 UTC
    assert window_label(window_start(tz)) == ["2020001"]


# ---------------------------------------------------------------------- downscaler
def test_windowed_downscaler__reuse_previous_model_when_sparse() -> None:
    counts = {"2019353": 30, "2020001": 150, "2020017": 40, "2020049": 150}  # 2020033 empty
    X, y = _window_frame(counts)
    down = WindowedDownscaler(_LIGHT, progress=False, random_state=0).fit(X, y)
    w = down.windows_.set_index("window")
    assert list(w.index) == ["2019353", "2020001", "2020017", "2020033", "2020049"]
    assert w["n_samples"].tolist() == [30, 150, 40, 0, 150]
    assert w["reused"].tolist() == [True, False, True, True, False]
    # first window reuses the next fitted one; later sparse ones the previous fitted one
    assert w["source"].tolist() == ["2020001", "2020001", "2020001", "2020001", "2020049"]
    assert w.loc["2020001", "n_train"] + w.loc["2020001", "n_test"] == 150
    assert w.loc["2020017", "status"].startswith("too few samples")
    assert np.isnan(w.loc["2020017", "XGB_test_rmse"]) and np.isfinite(w.loc["2020001", "XGB_test_rmse"])
    assert w.loc["2019353", "end"] == pd.Timestamp("2019-12-31")
    # dispatch: rows of a reused window get the source window's model
    rows = (X["time"] >= "2020-01-17") & (X["time"] < "2020-02-02")
    np.testing.assert_array_equal(down.predict(X[rows]), down.selectors_["2020001"].predict(X[rows]))
    # flags per date, including dates past the fitted period
    dates = pd.to_datetime(["2019-12-25", "2020-01-05", "2020-01-20", "2020-02-20", "2020-06-01"])
    code, reused = down.model_flag(dates)
    sel = {lab: MODEL_ZOO[s.selected_].code for lab, s in down.selectors_.items()}
    assert code.tolist() == [sel["2020001"], sel["2020001"], sel["2020001"], sel["2020049"], sel["2020049"]]
    assert reused.tolist() == [True, False, True, False, True]
    assert code.dtype == np.int8
    # the fit recovers the signal (noise sd 0.005 m3/m3)
    own = w[~w["reused"]]
    best = [own.loc[lab, f"{s}_test_rmse"] for lab, s in own["selected"].items()]
    assert max(best) < 0.02


def test_windowed_downscaler__record_failed_window() -> None:
    X, y = _window_frame({"2020001": 120, "2020017": 120, "2020033": 120}, seed=1)
    y = y.copy()
    y[130] = np.nan  # a sample of window 2020017
    with pytest.raises(DataError, match="Fitting window 2020017 failed"):
        WindowedDownscaler(_LIGHT, progress=False, random_state=0).fit(X, y)
    down = WindowedDownscaler(_LIGHT, on_error="record", progress=False, random_state=0).fit(X, y)
    w = down.windows_.set_index("window")
    assert w.loc["2020017", "status"].startswith("failed:") and w.loc["2020017", "source"] == "2020001"
    with pytest.raises(DataError, match="No 16-day window has 500 samples"):
        WindowedDownscaler(_LIGHT, min_samples=500, progress=False).fit(X, np.nan_to_num(y))
    with pytest.raises(DataError, match="No sampling dates"):
        WindowedDownscaler(_LIGHT, progress=False).fit(X.drop(columns="time"), y)


@pytest.mark.slow  # starts two joblib worker processes (~5-15 s on a busy 2-core machine)
def test_windowed_downscaler__parallel_equals_serial() -> None:
    X, y = _window_frame({"2020001": 120, "2020017": 130, "2020033": 110}, seed=2)
    serial = WindowedDownscaler(_LIGHT, n_jobs=1, progress=False, random_state=5).fit(X, y)
    parallel = WindowedDownscaler(_LIGHT, n_jobs=2, progress=False, random_state=5).fit(X, y)
    pd.testing.assert_frame_equal(serial.windows_, parallel.windows_)
    np.testing.assert_array_equal(serial.predict(X), parallel.predict(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_windowed_downscaler__ranking_table_and_save_load(tmp_path: Path) -> None:
    X, y = _window_frame({"2020001": 150, "2020017": 60, "2020033": 150}, seed=3)
    down = WindowedDownscaler(WindowModelSelector(grid="test", cv=2), progress=False, random_state=0).fit(X, y)
    table = down.ranking_table().set_index("model")
    own = down.windows_[~down.windows_["reused"]]
    assert table.loc["RF", "test_rmse"] == pytest.approx(own["RF_test_rmse"].mean())
    assert table.loc["MLR", "train_r"] == pytest.approx(own["MLR_train_r"].mean())
    assert sorted(table["rank"].dropna().tolist()) == [1, 2, 3, 4, 5]
    assert table.loc["MLR", "rank"] == 5  # a straight line cannot follow sin + square
    assert table.loc[["SVR", "RF", "XGB"], "rank"].max() == 3  # the kernel and tree models lead
    assert table.loc["Combination", "n_selected"] == 2 and np.isnan(table.loc["Combination", "rank"])
    assert table["n_selected"].drop("Combination").sum() == 2
    combo = np.mean([own.iloc[i][f"{s}_test_rmse"] for i, s in enumerate(own["selected"])])
    assert table.loc["Combination", "test_rmse"] == pytest.approx(combo)
    baselines = down.predict_all(X)
    assert list(baselines.columns) == list(MODEL_NAMES)

    folder = down.save(tmp_path / "models")
    suffixes = {p.suffix for p in folder.rglob("*") if p.is_file()}
    assert suffixes == {".ubj", ".skops", ".json", ".csv"}  # no pickle
    again = WindowedDownscaler.load(folder)
    np.testing.assert_array_equal(again.predict(X), down.predict(X))
    pd.testing.assert_frame_equal(again.predict_all(X), baselines)
    for a, b in zip(again.model_flag(X["time"]), down.model_flag(X["time"]), strict=True):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(again.windows_, down.windows_, check_dtype=False)
