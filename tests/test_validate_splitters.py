"""Tests of soilfuse.validate.splitters: leakage-free folds, counts, determinism, GridSearchCV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

from soilfuse.exceptions import ConfigError, DataError, MissingVariableError
from soilfuse.validate.splitters import (
    KSStratifiedSplit,
    RepeatedHoldOut,
    SpatialBlockKFold,
    StationToStationSplit,
    YearToYearSplit,
    block_id,
    ks_stratified_split,
)

N_FEATURES = 24


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """40 stations x 60 days over 4 years, 24 feature columns plus metadata columns."""
    rng = np.random.default_rng(11)
    n_st = 40
    lat = rng.uniform(28.0, 36.0, n_st)
    lon = rng.uniform(98.0, 110.0, n_st)
    days = pd.to_datetime(["2016-01-05", "2017-03-10", "2018-06-20", "2019-09-30"]).repeat(15) + pd.to_timedelta(
        np.tile(np.arange(15), 4), unit="D"
    )
    st = np.repeat(np.arange(n_st), days.size)
    frame = pd.DataFrame(
        {
            "station_id": [f"S{i:03d}" for i in st],
            "lat": lat[st],
            "lon": lon[st],
            "time": np.tile(days.to_numpy(), n_st),
        }
    )
    feats = rng.normal(size=(len(frame), N_FEATURES))
    for j in range(N_FEATURES):
        frame[f"f{j:02d}"] = feats[:, j]
    frame["target"] = feats[:, :3] @ np.array([0.5, -0.2, 0.1]) + 0.05 * rng.normal(size=len(frame))
    return frame


def _features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("f")]


# ---------------------------------------------------------------------- block_id
def test_block_id__floor_of_degrees_and_decoding() -> None:
    codes = block_id([30.2, 30.9, -34.5, 0.5], [100.1, 100.8, 145.9, -0.2])
    assert codes.tolist() == [30_000_100, 30_000_100, -35_000_000 + 145, 0 * 1_000_000 - 1]
    i_lat = np.round(codes / 1e6).astype(int)
    assert i_lat.tolist() == [30, 30, -35, 0]
    assert (codes - i_lat * 1_000_000).tolist() == [100, 100, 145, -1]
    assert block_id([30.2, 30.7], [100.1, 100.1], size=0.5).tolist() == [60_000_200, 61_000_200]


def test_block_id__bad_input_raises() -> None:
    with pytest.raises(DataError, match="missing"):
        block_id([np.nan], [1.0])
    with pytest.raises(DataError, match="size"):
        block_id([1.0], [1.0], size=0.0)


# ---------------------------------------------------------------------- spatial blocks
def test_spatial_block_kfold__no_block_in_train_and_test(table: pd.DataFrame) -> None:
    cv = SpatialBlockKFold(n_splits=5, block_size=2.0)
    blocks = block_id(table["lat"], table["lon"], 2.0)
    tested = np.zeros(len(table), dtype=int)
    splits = list(cv.split(table))
    assert len(splits) == cv.get_n_splits() == 5
    for train, test in splits:
        assert not set(blocks[train]) & set(blocks[test])
        assert len(train) + len(test) == len(table)
        tested[test] += 1
    assert (tested == 1).all()  # every sample is tested exactly once


def test_spatial_block_kfold__groups_override_columns(table: pd.DataFrame) -> None:
    groups = table["station_id"].to_numpy()
    for train, test in SpatialBlockKFold(n_splits=4).split(table[_features(table)], groups=groups):
        assert not set(groups[train]) & set(groups[test])


def test_spatial_block_kfold__shuffle_is_deterministic(table: pd.DataFrame) -> None:
    def folds(seed: int) -> list[list[int]]:
        cv = SpatialBlockKFold(n_splits=5, shuffle=True, random_state=seed)
        return [test.tolist() for _, test in cv.split(table)]

    assert folds(1) == folds(1)
    assert folds(1) != folds(2)


def test_spatial_block_kfold__errors(table: pd.DataFrame) -> None:
    with pytest.raises(MissingVariableError, match="'latitude_deg'"):
        next(SpatialBlockKFold(lat="latitude_deg").split(table))
    with pytest.raises(DataError, match="spatial blocks"):
        next(SpatialBlockKFold(n_splits=5, block_size=50.0).split(table))
    with pytest.raises(ConfigError, match="n_splits"):
        SpatialBlockKFold(n_splits=1).get_n_splits()


# ---------------------------------------------------------------------- years
def test_year_to_year_split__given_test_years(table: pd.DataFrame) -> None:
    years = table["time"].dt.year.to_numpy()
    ((train, test),) = list(YearToYearSplit(test_years=[2018, 2019]).split(table))
    assert set(years[test]) == {2018, 2019} and set(years[train]) == {2016, 2017}
    ((train, test),) = list(YearToYearSplit(test_years=[2019], train_years=[2016]).split(table))
    assert set(years[train]) == {2016} and set(years[test]) == {2019}


def test_year_to_year_split__blocks_and_leave_one_out(table: pd.DataFrame) -> None:
    years = table["time"].dt.year.to_numpy()
    loo = list(YearToYearSplit().split(table))
    assert len(loo) == YearToYearSplit().get_n_splits(table) == 4
    for train, test in loo:
        assert len(set(years[test])) == 1 and not set(years[train]) & set(years[test])
    blocks = list(YearToYearSplit(n_splits=2).split(table[_features(table)], groups=years))
    assert [sorted(set(years[test])) for _, test in blocks] == [[2016, 2017], [2018, 2019]]


def test_year_to_year_split__errors(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="empty"):
        next(YearToYearSplit(test_years=[2030]).split(table))
    with pytest.raises(ConfigError, match="overlap"):
        next(YearToYearSplit(test_years=[2018], train_years=[2017, 2018]).split(table))


# ---------------------------------------------------------------------- stations and hold-out
def test_station_to_station_split__thirds_without_leakage(table: pd.DataFrame) -> None:
    stations = table["station_id"].to_numpy()
    cv = StationToStationSplit(n_repeats=10, random_state=0)
    splits = list(cv.split(table))
    assert len(splits) == 10
    for train, test in splits:
        assert not set(stations[train]) & set(stations[test])
        assert len(set(stations[test])) == 14  # ceil(40 / 3)
    again = [test.tolist() for _, test in StationToStationSplit(n_repeats=10, random_state=0).split(table)]
    assert again == [test.tolist() for _, test in splits]
    assert len({tuple(sorted(set(stations[test]))) for _, test in splits}) > 1  # repeats differ


def test_repeated_hold_out__ten_times_ninety_ten(table: pd.DataFrame) -> None:
    splits = list(RepeatedHoldOut(random_state=3).split(table))
    assert len(splits) == 10
    for train, test in splits:
        assert len(test) == int(np.ceil(0.1 * len(table)))
        assert not set(train) & set(test)
    again = list(RepeatedHoldOut(random_state=3).split(table))
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again, strict=True))


# ---------------------------------------------------------------------- KS-checked split
def test_ks_stratified_split__accepts_only_similar_halves(table: pd.DataFrame) -> None:
    y = table["target"].to_numpy()
    cv = KSStratifiedSplit(n_splits=3, random_state=0)
    days = table["time"].to_numpy()
    for train, test in cv.split(table, y):
        assert stats.ks_2samp(y[train], y[test]).pvalue > 0.05
        # stratified by date: every date has 40 samples, about half of them in the test set
        per_day = pd.Series(np.isin(np.arange(len(y)), test)).groupby(days).mean()
        assert per_day.between(0.3, 0.7).all()
    first = [t.tolist() for _, t in KSStratifiedSplit(random_state=5).split(table, y)]
    assert first == [t.tolist() for _, t in KSStratifiedSplit(random_state=5).split(table, y)]


def test_ks_stratified_split__raises_after_max_tries() -> None:
    # p > 0.9999 needs nearly identical empirical distributions: never met in 20 draws
    y = np.random.default_rng(0).normal(size=2000)
    with pytest.raises(DataError, match="20 draws"):
        ks_stratified_split(y, np.arange(2000) // 10, alpha=0.9999, max_tries=20, random_state=1)
    with pytest.raises(ConfigError, match="pass y"):
        next(KSStratifiedSplit().split(pd.DataFrame({"time": [1, 2]})))


# ---------------------------------------------------------------------- GridSearchCV
@pytest.mark.parametrize(
    "cv",
    [
        SpatialBlockKFold(n_splits=4, block_size=2.0),
        YearToYearSplit(n_splits=2),
        StationToStationSplit(n_repeats=3, random_state=0),
        RepeatedHoldOut(n_repeats=3, random_state=0),
        KSStratifiedSplit(n_splits=2, random_state=0),
    ],
    ids=lambda cv: type(cv).__name__,
)
def test_splitters__run_inside_grid_search(table: pd.DataFrame, cv) -> None:
    feats = _features(table)
    assert len(feats) >= 20
    X = table.drop(columns="target")  # features plus station_id, lat, lon, time
    model = Pipeline([("select", ColumnTransformer([("features", "passthrough", feats)])), ("ridge", Ridge())])
    search = GridSearchCV(model, {"ridge__alpha": [0.1, 100.0]}, cv=cv, scoring="neg_root_mean_squared_error")
    search.fit(X, table["target"])
    assert search.n_splits_ == cv.get_n_splits(X)
    assert search.best_params_ == {"ridge__alpha": 0.1}
    assert -search.best_score_ < 0.1  # noise std is 0.05
    assert repr(cv).startswith(type(cv).__name__)


def test_splitters__groups_passed_the_sklearn_way(table: pd.DataFrame) -> None:
    feats = _features(table)
    scores = cross_val_score(
        Ridge(), table[feats], table["target"], cv=SpatialBlockKFold(n_splits=3), groups=table["station_id"]
    )
    assert scores.shape == (3,)


def test_splitters__groups_reach_split_under_metadata_routing(table: pd.DataFrame) -> None:
    feats = _features(table)
    stations = table["station_id"].to_numpy()
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            Ridge(), {"alpha": [0.1, 1.0]}, cv=SpatialBlockKFold(n_splits=3), return_train_score=False
        )
        search.fit(table[feats], table["target"], groups=stations)  # only groups, no lat/lon columns in X
    assert search.n_splits_ == 3
