"""Tests of the quadtree partition, the rotated-quadtree ensemble and the layer cascade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from soilfuse.exceptions import DataError, NotFittedError
from soilfuse.models import LayerCascade, QuadtreeEnsemble, QuadtreePartition, screen_vif


def _cluster(rng: np.random.Generator, n: int, lon0: float, lat0: float, spread: float = 0.4) -> np.ndarray:
    return np.column_stack([lon0 + rng.uniform(-spread, spread, n), lat0 + rng.uniform(-spread, spread, n)])


def test_partition__split_only_if_every_child_meets_threshold() -> None:
    rng = np.random.default_rng(0)
    region = (0.0, 4.0, 0.0, 4.0)
    full = np.vstack([_cluster(rng, 40, x, y) for x, y in [(1, 1), (3, 1), (1, 3), (3, 3)]])
    part = QuadtreePartition(threshold=30, max_depth=1, region=region).fit(full[:, 0], full[:, 1])
    assert part.n_leaves == 4
    assert sorted(part.counts_.tolist()) == [40, 40, 40, 40]
    # one quadrant below the threshold blocks the split, however full the others are
    short = np.vstack([full[:120], _cluster(rng, 29, 3, 3)])
    part = QuadtreePartition(threshold=30, max_depth=1, region=region).fit(short[:, 0], short[:, 1])
    assert part.n_leaves == 1 and part.counts_.tolist() == [149]
    # an empty quadrant blocks it too: no empty leaves
    empty = full[:120]
    part = QuadtreePartition(threshold=1, max_depth=3, region=region).fit(empty[:, 0], empty[:, 1])
    assert part.counts_.min() >= 1


def test_partition__adaptive_depth_and_every_leaf_at_threshold() -> None:
    rng = np.random.default_rng(1)
    dense = _cluster(rng, 800, 3.0, 3.0, spread=0.9)  # dense north-east
    sparse = rng.uniform(0, 4, size=(200, 2))
    pts = np.vstack([dense, sparse])
    part = QuadtreePartition(threshold=30, max_depth=6, region=(0, 4, 0, 4)).fit(pts[:, 0], pts[:, 1])
    assert part.counts_.min() >= 30
    assert part.counts_.sum() == len(np.unique(pts, axis=0))
    levels = np.array([leaf.level for leaf in part.leaves_])
    assert levels.max() > levels.min()  # finer leaves where stations are dense
    leaf_ne = part.assign([3.0], [3.0])[0]
    leaf_sw = part.assign([0.5], [0.5])[0]
    assert part.leaves_[leaf_ne].level > part.leaves_[leaf_sw].level


@pytest.mark.parametrize("angle", [0.0, 15.0, 30.0, 45.0, 60.0, 75.0])
def test_partition__rotations_cover_domain(angle: float) -> None:
    rng = np.random.default_rng(2)
    pts = rng.uniform(0, 4, size=(600, 2))
    part = QuadtreePartition(threshold=30, max_depth=5, angle=angle, region=(0, 4, 0, 4)).fit(pts[:, 0], pts[:, 1])
    gx, gy = np.meshgrid(np.linspace(-1, 5, 50), np.linspace(-1, 5, 50))
    leaf = part.assign(gx.ravel(), gy.ravel())
    assert leaf.min() >= 0 and leaf.max() < part.n_leaves  # every point, even outside, has a leaf
    assert part.counts_.min() >= 30
    assert len(part.leaf_outlines()) == part.n_leaves


def test_partition__rotation_changes_leaves() -> None:
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 4, size=(900, 2))
    a = QuadtreePartition(threshold=30, max_depth=4, angle=0, region=(0, 4, 0, 4)).fit(pts[:, 0], pts[:, 1])
    b = QuadtreePartition(threshold=30, max_depth=4, angle=45, region=(0, 4, 0, 4)).fit(pts[:, 0], pts[:, 1])
    la, lb = a.assign(pts[:, 0], pts[:, 1]), b.assign(pts[:, 0], pts[:, 1])
    # the 45° leaves are not a relabelling of the 0° leaves
    assert len(np.unique(la * 1000 + lb)) > max(a.n_leaves, b.n_leaves)


def test_partition__errors() -> None:
    with pytest.raises(DataError, match="at least one station"):
        QuadtreePartition().fit([np.nan], [np.nan])
    with pytest.raises(NotFittedError, match="not fitted"):
        QuadtreePartition().assign([0.0], [0.0])


def _regional_data(seed: int = 0, n_stations: int = 240, n_days: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    slon, slat = rng.uniform(100, 104, n_stations), rng.uniform(30, 34, n_stations)
    lon, lat = np.repeat(slon, n_days), np.repeat(slat, n_days)
    t2m = rng.normal(285, 6, lon.size)
    evi = rng.uniform(0, 0.8, lon.size)
    X = pd.DataFrame({"lon": lon, "lat": lat, "t2m": t2m, "evi": evi})
    # the response to evi flips sign between east and west: a global model struggles
    y = t2m + np.where(lon > 102, 6.0, -6.0) * evi + 0.3 * rng.normal(size=lon.size)
    return X, y


def test_quadtree_ensemble__local_models_beat_global() -> None:
    X, y = _regional_data()
    Xt, yt = _regional_data(seed=9)
    model = QuadtreeEnsemble(
        threshold=30, n_splits=3, max_depth_tree=4, param_grid={"n_estimators": [60], "max_depth": [3]},
        random_state=0,
    ).fit(X, y)
    rmse_ens = float(np.sqrt(np.mean((model.predict(Xt) - yt) ** 2)))
    rmse_glob = float(np.sqrt(np.mean((model.predict_global(Xt) - yt) ** 2)))
    assert rmse_ens < 0.9 * rmse_glob
    table = model.leaf_table_
    assert set(table["angle"]) == {0.0, 15.0, 30.0, 45.0, 60.0, 75.0}
    assert (table["stations"] >= 30).all()
    assert model.n_fallback_ == int(table["fallback"].sum())
    spread = model.predict_rotations(Xt).std(axis=0)
    assert spread.shape == (len(Xt),) and spread.max() > 0


def test_quadtree_ensemble__fallback_counted() -> None:
    X, y = _regional_data(n_stations=120)
    model = QuadtreeEnsemble(threshold=10, angles=(0.0,), min_blocks=50, n_splits=2,
                             param_grid={"n_estimators": [20]}).fit(X, y)
    assert model.n_fallback_ == len(model.leaf_table_) > 1
    np.testing.assert_allclose(model.predict(X), model.predict_global(X))


def test_quadtree_ensemble__save_load_roundtrip(tmp_path: Path) -> None:
    X, y = _regional_data(n_stations=100, n_days=10)
    model = QuadtreeEnsemble(threshold=20, angles=(0.0, 45.0), n_splits=2, param_grid={"n_estimators": [20]},
                             random_state=1).fit(X, y)
    folder = model.save(tmp_path / "m")
    assert all(p.suffix in {".ubj", ".json", ".csv"} for p in folder.iterdir())
    again = QuadtreeEnsemble.load(folder)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_quadtree_ensemble__missing_coords_column() -> None:
    X, y = _regional_data(n_stations=20, n_days=2)
    with pytest.raises(DataError, match="'lon'"):
        QuadtreeEnsemble().fit(X.drop(columns=["lon"]).assign(x=1.0), y)


def test_layer_cascade__crossfit_upper_is_out_of_fold() -> None:
    rng = np.random.default_rng(4)
    n = 400
    X = pd.DataFrame({"lon": rng.uniform(0, 5, n), "lat": rng.uniform(0, 5, n), "t2m": rng.normal(280, 5, n)})
    Y = pd.DataFrame({"0cm": X["t2m"] + rng.normal(0, 2, n), "5cm": X["t2m"] + rng.normal(0, 2, n)})
    # a 1-nearest-neighbour model reproduces its training rows exactly: in-sample
    # upper estimates would equal the observations, out-of-fold ones cannot
    cas = LayerCascade(KNeighborsRegressor(n_neighbors=1), depths=("0cm", "5cm"), surface_features=(),
                       cv=5).fit(X, Y)
    oof = cas.upper_oof_["0cm"].to_numpy()
    assert np.isfinite(oof).all()
    assert np.mean(np.abs(oof - Y["0cm"].to_numpy()) < 1e-9) < 0.05
    in_sample = cas.estimators_[0].predict(X)
    np.testing.assert_allclose(in_sample, Y["0cm"].to_numpy())


def test_layer_cascade__replaces_surface_features_and_handles_missing_depths() -> None:
    rng = np.random.default_rng(5)
    n = 600
    X = pd.DataFrame({"lon": rng.uniform(0, 4, n), "lat": rng.uniform(0, 4, n), "t2m": rng.normal(280, 5, n),
                      "lst_mean": rng.normal(282, 5, n), "evi": rng.uniform(0, 1, n)})
    y0 = 0.5 * X["t2m"] + 0.5 * X["lst_mean"] + rng.normal(0, 0.5, n)
    Y = pd.DataFrame({"0cm": y0, "5cm": 0.9 * y0 + 28 + rng.normal(0, 0.3, n)})
    Y.loc[::4, "0cm"] = np.nan  # not every station measures every depth
    for upper in ("crossfit", "observed"):
        cas = LayerCascade(LinearRegression(), depths=("0cm", "5cm"), upper=upper).fit(X, Y)
        deep = cas.estimators_[1]
        assert "t2m" not in deep.feature_names_in_ and "st_upper" in deep.feature_names_in_
        pred = cas.predict(X)
        rmse = np.sqrt(np.nanmean((pred - Y.to_numpy()) ** 2, axis=0))
        assert rmse[0] < 0.6 and rmse[1] < 0.8


def test_layer_cascade__offset_features_per_depth_extrapolate_with_their_reference() -> None:
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(6)
    n = 500
    X = pd.DataFrame({"lon": rng.uniform(0, 4, n), "lat": rng.uniform(0, 4, n), "evi": rng.uniform(0, 1, n),
                      "ref0": rng.uniform(270, 290, n)})
    X["ref5"] = X["ref0"] - 1.0
    # each depth is its reference plus a function of EVI
    Y = pd.DataFrame({"0cm": X["ref0"] + 2 * X["evi"], "5cm": X["ref5"] + 3 * X["evi"]})
    new = X.iloc[:50].assign(ref0=300.0, ref5=299.0)  # warmer than any training row
    truth = np.column_stack([300 + 2 * new["evi"], 299 + 3 * new["evi"]])
    cas = LayerCascade(DecisionTreeRegressor(max_depth=6, random_state=0), depths=("0cm", "5cm"),
                       surface_features=(), target="offset", offset_features=("ref0", "ref5"), cv=3).fit(X, Y)
    assert np.abs(cas.predict(new) - truth).max() < 0.2
    absolute = LayerCascade(DecisionTreeRegressor(max_depth=6, random_state=0), depths=("0cm", "5cm"),
                            surface_features=(), cv=3).fit(X, Y)
    assert (absolute.predict(new)[:, 0] < 293).all()  # trees clip to the training range
    with pytest.raises(DataError, match="one column per depth"):
        LayerCascade(LinearRegression(), depths=("0cm", "5cm"), target="offset", offset_features=("ref0",)).fit(X, Y)


def test_screen_vif__paper_exceptions() -> None:
    rng = np.random.default_rng(6)
    n = 800
    t2m = rng.normal(285, 8, n)
    ssr = rng.normal(150, 40, n)
    sand = rng.uniform(10, 70, n)
    clay = rng.uniform(5, 30, n)
    X = pd.DataFrame({
        "t2m": t2m, "lst_mean": t2m + rng.normal(0, 1, n), "ssr": ssr,
        "strd": 2.0 * ssr + rng.normal(0, 2, n), "sand": sand, "clay": clay, "silt": 100 - sand - clay,
        "evi": rng.uniform(0, 1, n),
    })
    selected, table = screen_vif(X, threshold=10, keep=("t2m", "lst_mean"), drop=("silt",))
    assert "silt" not in selected and ("strd" not in selected) != ("ssr" not in selected)
    assert {"t2m", "lst_mean", "sand", "clay", "evi"} <= set(selected)
    row = table.set_index("feature")
    assert row.loc["t2m", "vif_final"] > 10 and row.loc["t2m", "reason"] == "kept (configured exception)"
    # VIF of t2m: 1 / (1 - R^2) with R^2 of t2m on lst_mean ~ var(t2m)/(var(t2m)+1) -> ~65
    assert 40 < row.loc["t2m", "vif_initial"] < 100


@parametrize_with_checks(
    [
        QuadtreeEnsemble(coords=(0, 1), use_coords=True, threshold=3, angles=(0.0, 45.0), n_splits=2, max_depth_tree=2,
                         param_grid={"n_estimators": [5], "max_depth": [2]}, block_size=0.5, random_state=0),
        LayerCascade(LinearRegression(), depths=("d0",), surface_features=(), coords=None, cv=3),
    ],
    expected_failed_checks=lambda est: {} if isinstance(est, QuadtreeEnsemble) else {
        # The number of outputs is fixed by the `depths` parameter, not by y.
        "check_regressor_multioutput": "outputs are the configured depths",
    },
)
def test_sklearn_compatible(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]
