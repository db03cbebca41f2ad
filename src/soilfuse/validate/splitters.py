"""Cross-validation splitters for spatio-temporal station data, in scikit-learn's mould.

Random K-fold on station-days leaks: neighbouring stations and consecutive days are
nearly copies of each other, so a model looks better than it is at an unseen place or
year. These splitters hold out whole spatial blocks, years or stations, and plug into
``GridSearchCV``, ``cross_validate`` and friends like any scikit-learn splitter:
``__init__`` only stores its arguments, everything is checked in :meth:`split`.

Each splitter finds its labels either in ``groups`` (passed the scikit-learn way,
``search.fit(X, y, groups=...)``), which wins when given, or in a named column of a
DataFrame ``X`` (``lat``/``lon``, ``time``, ``station_id``...).

=======================  ===================================================  ==========================
splitter                 holds out                                            paper
=======================  ===================================================  ==========================
SpatialBlockKFold        all samples of a block of ``block_size`` degrees     Wang et al. (2025): 1°
YearToYearSplit          whole years (given test years, or year blocks)       Li et al. (2022)
StationToStationSplit    a random third of the stations, repeated             Li et al. (2022)
RepeatedHoldOut          a random 10 % of samples, repeated 10 times          Liu et al. (2024)
KSStratifiedSplit        half of every date, re-drawn until KS p > alpha      Rao et al. (2023)
=======================  ===================================================  ==========================

Block assignment is the pure function :func:`soilfuse.sample.block_id` (as in verde's
``block_split``, re-exported here), so the training table carries the same ``block``
column.

Usage
-----
>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"lat": [30.2, 30.7, 31.5, 35.1], "lon": [100.1, 100.9, 100.5, 104.0],
...                   "ndvi": [0.2, 0.3, 0.4, 0.5]})
>>> block_id(X["lat"], X["lon"]).tolist()
[30000100, 30000100, 31000100, 35000104]
>>> cv = SpatialBlockKFold(n_splits=3)
>>> [sorted(test.tolist()) for _, test in cv.split(X)]
[[0, 1], [2], [3]]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, GroupShuffleSplit, ShuffleSplit
from sklearn.utils import check_random_state

from soilfuse._typing import IntArray
from soilfuse.exceptions import ConfigError, DataError, MissingVariableError
from soilfuse.models.window import ks_stratified_split as _window_ks_split  # the one implementation
from soilfuse.sample import block_id

__all__ = [
    "KSStratifiedSplit",
    "RepeatedHoldOut",
    "SpatialBlockKFold",
    "StationToStationSplit",
    "YearToYearSplit",
    "block_id",
    "ks_stratified_split",
]

logger = logging.getLogger(__name__)

Split = tuple[IntArray, IntArray]


# ---------------------------------------------------------------------- helpers
def _labels(X: Any, groups: Any, column: str, what: str, n: int | None = None) -> npt.NDArray[Any]:
    """``groups`` if given, else column ``column`` of a DataFrame ``X``."""
    if groups is not None:
        out = np.asarray(groups)
    elif isinstance(X, pd.DataFrame) and column in X.columns:
        out = X[column].to_numpy()
    else:
        cols = list(X.columns) if isinstance(X, pd.DataFrame) else f"an array of shape {np.shape(X)}"
        msg = (
            f"Cannot find the {what}: no groups were passed and X has no column {column!r} "
            f"(X has {cols}). Pass groups=... to split/fit, or name the column in the splitter."
        )
        raise MissingVariableError(msg)
    n = _n_samples(X) if n is None else n
    if out.shape != (n,):
        msg = f"Expected one {what} label per sample ({n}); got shape {out.shape}."
        raise DataError(msg)
    return out


def _n_samples(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}; got {value!r}."
        raise ConfigError(msg)
    return int(value)


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (float, int, np.floating)) or not 0 < value < 1:
        msg = f"{name} must be a fraction strictly between 0 and 1; got {value!r}."
        raise ConfigError(msg)
    return float(value)


def _assign_folds(codes: IntArray, n_splits: int, rng: np.random.RandomState | None) -> IntArray:
    """Fold of each group: greedy, balanced by sample count (largest first, or in random order)."""
    counts = np.bincount(codes)
    if rng is None:
        order = np.argsort(-counts, kind="stable")
    else:
        order = rng.permutation(counts.size)
    load = np.zeros(n_splits, dtype="int64")
    fold_of_group = np.empty(counts.size, dtype="int64")
    for g in order:
        k = int(np.argmin(load))
        fold_of_group[g] = k
        load[k] += counts[g]
    return fold_of_group


def _years(values: npt.NDArray[Any]) -> IntArray:
    """Years of datetime-like values, or the values themselves when they are whole numbers."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype("int64")
    try:
        return pd.DatetimeIndex(pd.to_datetime(values)).year.to_numpy().astype("int64")
    except (TypeError, ValueError) as err:
        msg = (
            f"Cannot read years from values of dtype {values.dtype} (e.g. {values[:3]!r}); pass dates or integer years."
        )
        raise DataError(msg) from err


# ---------------------------------------------------------------------- splitters
class SpatialBlockKFold(BaseCrossValidator):
    """K-fold over spatial blocks: no block has samples in both train and test.

    Parameters
    ----------
    n_splits : int
        Number of folds (>= 2).
    block_size : float
        Block edge in degrees (see :func:`block_id`).
    lat, lon : str
        Columns of a DataFrame ``X`` with the coordinates in degrees; ignored when
        ``groups`` (block labels) are passed to :meth:`split`.
    shuffle : bool
        If False, blocks are dealt to folds largest first (like ``GroupKFold``); if
        True, in a random order set by ``random_state`` (still balancing counts).
    random_state : int, RandomState or None
        Seed used when ``shuffle`` is True.
    """

    # Ask for ``groups`` under scikit-learn's metadata routing, as GroupKFold does.
    __metadata_request__split: ClassVar[dict[str, bool]] = {"groups": True}

    def __init__(
        self,
        n_splits: int = 5,
        *,
        block_size: float = 1.0,
        lat: str = "lat",
        lon: str = "lon",
        shuffle: bool = False,
        random_state: Any = None,
    ) -> None:
        self.n_splits = n_splits
        self.block_size = block_size
        self.lat = lat
        self.lon = lon
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds."""
        return _check_int(self.n_splits, "n_splits", 2)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:
        """Yield ``(train, test)`` index arrays, one pair per fold.

        Raises
        ------
        MissingVariableError
            If neither ``groups`` nor the ``lat``/``lon`` columns are available.
        DataError
            If there are fewer blocks than folds.
        """
        n_splits = self.get_n_splits()
        if groups is None:
            lat = _labels(X, None, self.lat, "latitude")
            lon = _labels(X, None, self.lon, "longitude")
            labels: npt.NDArray[Any] = block_id(lat, lon, self.block_size)
        else:
            labels = _labels(X, groups, self.lat, "block")
        codes, uniques = pd.factorize(pd.Series(labels), sort=True)
        if len(uniques) < n_splits:
            msg = (
                f"Only {len(uniques)} spatial blocks for n_splits={n_splits}; lower n_splits or "
                f"block_size (now {self.block_size}°)."
            )
            raise DataError(msg)
        rng = check_random_state(self.random_state) if self.shuffle else None
        fold = _assign_folds(codes.astype("int64"), n_splits, rng)[codes]
        idx = np.arange(codes.size)
        for k in range(n_splits):
            test = fold == k
            yield idx[~test], idx[test]


class YearToYearSplit(BaseCrossValidator):
    """Train on some years, test on others (Li et al., 2022: 2010-2017 vs 2018-2020).

    Parameters
    ----------
    test_years : sequence of int, optional
        Years held out in a single split. Without it, the sorted distinct years are cut
        into ``n_splits`` contiguous blocks, each one the test set once (``n_splits=None``
        leaves one year out at a time).
    train_years : sequence of int, optional
        With ``test_years``: the training years (default: every other year).
    n_splits : int, optional
        Number of year blocks when ``test_years`` is not given.
    time : str
        Column of a DataFrame ``X`` with dates (or integer years); ignored when
        ``groups`` (dates or years) are passed.
    """

    # Ask for ``groups`` under scikit-learn's metadata routing, as GroupKFold does.
    __metadata_request__split: ClassVar[dict[str, bool]] = {"groups": True}

    def __init__(
        self,
        test_years: Sequence[int] | None = None,
        *,
        train_years: Sequence[int] | None = None,
        n_splits: int | None = None,
        time: str = "time",
    ) -> None:
        self.test_years = test_years
        self.train_years = train_years
        self.n_splits = n_splits
        self.time = time

    def _blocks(self, years: IntArray) -> list[tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]:
        if self.test_years is not None:
            test_y = np.asarray(list(self.test_years), dtype="int64")
            test = np.isin(years, test_y)
            if self.train_years is None:
                train = ~test
            else:
                train_y = np.asarray(list(self.train_years), dtype="int64")
                if np.intersect1d(train_y, test_y).size:
                    msg = f"train_years and test_years overlap: {sorted(np.intersect1d(train_y, test_y).tolist())}."
                    raise ConfigError(msg)
                train = np.isin(years, train_y)
            if not test.any() or not train.any():
                msg = (
                    f"Year split is empty: test years {sorted(test_y.tolist())} match {int(test.sum())} samples, "
                    f"training years {int(train.sum())}; the data span {sorted(np.unique(years).tolist())}."
                )
                raise DataError(msg)
            return [(train, test)]
        distinct = np.unique(years)
        n_splits = distinct.size if self.n_splits is None else _check_int(self.n_splits, "n_splits", 2)
        if distinct.size < max(n_splits, 2):
            msg = f"Only {distinct.size} distinct years ({distinct.tolist()}) for {n_splits} year blocks."
            raise DataError(msg)
        out = []
        for block in np.array_split(distinct, n_splits):
            test = np.isin(years, block)
            out.append((~test, test))
        return out

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits; needs the data when one year is left out at a time."""
        if self.test_years is not None:
            return 1
        if self.n_splits is not None:
            return _check_int(self.n_splits, "n_splits", 2)
        if X is None and groups is None:
            msg = "YearToYearSplit(n_splits=None) leaves one year out: pass X or groups to count the years."
            raise ConfigError(msg)
        return int(
            np.unique(_years(_labels(X, groups, self.time, "time", None if X is not None else len(groups)))).size
        )

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:
        """Yield ``(train, test)`` index arrays; train and test never share a year."""
        years = _years(_labels(X, groups, self.time, "time"))
        idx = np.arange(years.size)
        for train, test in self._blocks(years):
            yield idx[train], idx[test]


class StationToStationSplit(BaseCrossValidator):
    """Repeated random split of *stations*: e.g. 2/3 train, 1/3 test (Li et al., 2022).

    A thin front to :class:`sklearn.model_selection.GroupShuffleSplit` that reads the
    station column from ``X``.

    Parameters
    ----------
    n_repeats : int
        Number of random splits.
    test_size : float
        Fraction of stations in the test set (rounded up to whole stations).
    station : str
        Column of a DataFrame ``X`` with station ids; ignored when ``groups`` are passed.
    random_state : int, RandomState or None
        Seed of the draws.
    """

    # Ask for ``groups`` under scikit-learn's metadata routing, as GroupKFold does.
    __metadata_request__split: ClassVar[dict[str, bool]] = {"groups": True}

    def __init__(
        self,
        n_repeats: int = 10,
        *,
        test_size: float = 1 / 3,
        station: str = "station_id",
        random_state: Any = None,
    ) -> None:
        self.n_repeats = n_repeats
        self.test_size = test_size
        self.station = station
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of repeats."""
        return _check_int(self.n_repeats, "n_repeats", 1)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:
        """Yield ``(train, test)`` index arrays; no station is in both."""
        n = self.get_n_splits()
        test_size = _check_fraction(self.test_size, "test_size")
        labels = _labels(X, groups, self.station, "station")
        if np.unique(labels).size < 2:
            msg = "StationToStationSplit needs at least two stations."
            raise DataError(msg)
        inner = GroupShuffleSplit(n_splits=n, test_size=test_size, random_state=self.random_state)
        yield from inner.split(np.zeros((labels.size, 1)), None, labels)


class RepeatedHoldOut(BaseCrossValidator):
    """``n_repeats`` random hold-outs of ``test_size`` of the samples (Liu et al., 2024: 10 × 90/10).

    A named front to :class:`sklearn.model_selection.ShuffleSplit`; ``groups`` are ignored.
    """

    def __init__(self, n_repeats: int = 10, *, test_size: float = 0.1, random_state: Any = None) -> None:
        self.n_repeats = n_repeats
        self.test_size = test_size
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of repeats."""
        return _check_int(self.n_repeats, "n_repeats", 1)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:
        """Yield ``(train, test)`` index arrays."""
        inner = ShuffleSplit(
            n_splits=self.get_n_splits(),
            test_size=_check_fraction(self.test_size, "test_size"),
            random_state=self.random_state,
        )
        yield from inner.split(np.zeros((_n_samples(X), 1)))


# ---------------------------------------------------------------------- KS-checked split
def ks_stratified_split(
    y: npt.ArrayLike,
    strata: npt.ArrayLike,
    *,
    test_size: float = 0.5,
    alpha: float = 0.05,
    max_tries: int = 100,
    random_state: Any = None,
) -> tuple[IntArray, IntArray, float]:
    """Stratified random split re-drawn until the train and test targets look alike.

    Rao et al. (2023) split each 16-day window's samples half/half, stratified by
    sampling date, and repeat the draw until the two-sample Kolmogorov–Smirnov test of
    the target gives ``p > 0.05``.

    Parameters
    ----------
    y : array_like
        Target values (NaN not allowed).
    strata : array_like
        Stratum of each sample (e.g. the date).
    test_size : float
        Share of each stratum in the test set.
    alpha : float
        A draw is accepted when the KS p-value exceeds ``alpha``.
    max_tries : int
        Draws before giving up.
    random_state : int, RandomState or None
        Seed; the same seed gives the same split.

    Returns
    -------
    train, test : numpy.ndarray of int
        Sample indices.
    pvalue : float
        KS p-value of the accepted draw.

    Raises
    ------
    DataError
        If no draw passes in ``max_tries`` tries, or ``y`` has missing values.
    """
    st = np.asarray(strata)
    if st.shape != np.shape(y):
        msg = f"strata must have one label per sample; got shape {st.shape} for {np.size(y)} samples."
        raise DataError(msg)
    if not 0.0 < alpha < 1.0:
        msg = f"alpha must lie in (0, 1); got {alpha}."
        raise ConfigError(msg)
    train, test, pvalue, _ = _window_ks_split(y, st, test_size=_check_fraction(test_size, "test_size"), alpha=alpha,
                                    max_tries=_check_int(max_tries, "max_tries", 1), random_state=random_state)
    return train, test, pvalue


class KSStratifiedSplit(BaseCrossValidator):
    """Stratified-by-date random split checked with a two-sample KS test (Rao et al., 2023).

    Parameters
    ----------
    n_splits : int
        Number of accepted draws to yield (each re-drawn independently).
    test_size : float
        Share of every stratum in the test set (0.5 in the paper).
    strata : str
        Column of a DataFrame ``X`` holding the stratum (e.g. ``"time"``); datetimes are
        reduced to their day. Ignored when ``groups`` are passed.
    alpha : float
        Accept a draw when the KS p-value of ``y`` (train vs test) exceeds ``alpha``.
    max_tries : int
        Draws per split before :class:`~soilfuse.exceptions.DataError` is raised.
    random_state : int, RandomState or None
        Seed of the draws.
    """

    # Ask for ``groups`` under scikit-learn's metadata routing, as GroupKFold does.
    __metadata_request__split: ClassVar[dict[str, bool]] = {"groups": True}

    def __init__(
        self,
        n_splits: int = 1,
        *,
        test_size: float = 0.5,
        strata: str = "time",
        alpha: float = 0.05,
        max_tries: int = 100,
        random_state: Any = None,
    ) -> None:
        self.n_splits = n_splits
        self.test_size = test_size
        self.strata = strata
        self.alpha = alpha
        self.max_tries = max_tries
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits."""
        return _check_int(self.n_splits, "n_splits", 1)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:
        """Yield ``(train, test)`` index arrays whose targets pass the KS test.

        Raises
        ------
        ConfigError
            If ``y`` is not given (the KS test needs the target).
        DataError
            If a split cannot pass the KS test in ``max_tries`` draws.
        """
        if y is None:
            msg = "KSStratifiedSplit compares the target of train and test; pass y to split()."
            raise ConfigError(msg)
        strata = _labels(X, groups, self.strata, "stratum")
        if np.issubdtype(strata.dtype, np.datetime64):
            strata = strata.astype("datetime64[D]")
        rng = check_random_state(self.random_state)
        for _ in range(self.get_n_splits()):
            train, test, _p = ks_stratified_split(
                y, strata, test_size=self.test_size, alpha=self.alpha, max_tries=self.max_tries, random_state=rng
            )
            yield train, test
