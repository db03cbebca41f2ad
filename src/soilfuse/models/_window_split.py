"""Window calendar and KS-checked stratified split of :mod:`soilfuse.models.window`.

Two pure building blocks of the per-16-day-window regression of Rao et al. (2022):

* the MODIS 16-day composite calendar (:func:`window_start`, :func:`window_label`,
  :func:`window_sequence`): windows start on DOY 1, 17, …, 353 of every year and the
  23rd runs to 31 December;
* :func:`ks_stratified_split`: half of every date's samples to the test set, redrawn
  until a two-sample Kolmogorov–Smirnov test finds train and test targets alike.

They live apart from the estimators only to keep modules short; import them from
:mod:`soilfuse.models.window`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from soilfuse._typing import IntArray
from soilfuse.exceptions import ConfigError, DataError

__all__ = ["WINDOW_DAYS", "ks_stratified_split", "window_label", "window_sequence", "window_start"]

logger = logging.getLogger(__name__)

#: Length of a MODIS composite window (days); the year's last window is shorter.
WINDOW_DAYS = 16


# ---------------------------------------------------------------------- calendar
def _as_days(dates: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Dates as ``datetime64[D]`` (UTC day); time zones are converted to UTC first."""
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates).ravel()))
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    if idx.hasnans:
        msg = f"{int(idx.isna().sum())} of {len(idx)} dates are missing (NaT); drop those samples first."
        raise DataError(msg)
    return idx.to_numpy().astype("datetime64[D]")


def window_start(dates: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """First day of the 16-day window holding each date (MODIS calendar).

    Parameters
    ----------
    dates : array_like of datetime-like

    Returns
    -------
    numpy.ndarray of datetime64[D]
        1 January + 16·k days with ``k = (DOY - 1) // 16`` (k = 0…22).

    Examples
    --------
    >>> [str(d) for d in window_start(["2020-01-16", "2020-01-17", "2020-12-31", "2021-01-01"])]
    ['2020-01-01', '2020-01-17', '2020-12-18', '2021-01-01']
    """
    days = _as_days(dates)
    jan1 = days.astype("datetime64[Y]").astype("datetime64[D]")
    k = (days - jan1).astype("int64") // WINDOW_DAYS
    return jan1 + (k * WINDOW_DAYS).astype("timedelta64[D]")


def window_label(starts: npt.ArrayLike) -> list[str]:
    """``YYYYDDD`` labels of window starts (e.g. ``"2016017"``)."""
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(starts).ravel()))
    return [f"{d.year}{d.day_of_year:03d}" for d in idx]


def window_sequence(first: Any, last: Any) -> npt.NDArray[np.datetime64]:
    """Starts of every window from the one holding ``first`` to the one holding ``last``.

    Examples
    --------
    >>> window_label(window_sequence("2019-12-20", "2020-01-20"))
    ['2019353', '2020001', '2020017']
    """
    lo, hi = window_start([first, last])
    years = np.arange(lo.astype("datetime64[Y]"), hi.astype("datetime64[Y]") + 1)
    offsets = (np.arange(23) * WINDOW_DAYS).astype("timedelta64[D]")
    starts = (years.astype("datetime64[D]")[:, None] + offsets[None, :]).ravel()
    return starts[(starts >= lo) & (starts <= hi)]


def _window_end(starts: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
    """Last day of each window (the year's last window ends on 31 December)."""
    next_year = (starts.astype("datetime64[Y]") + 1).astype("datetime64[D]")
    return np.minimum(starts + np.timedelta64(WINDOW_DAYS - 1, "D"), next_year - np.timedelta64(1, "D"))


# ---------------------------------------------------------------------- KS split
def _strata_codes(dates: npt.ArrayLike) -> IntArray:
    """Integer stratum per sample: datetimes by UTC day, other labels as given."""
    values = pd.Series(np.asarray(dates).ravel())
    if pd.api.types.is_datetime64_any_dtype(values) or (
        values.dtype == object and len(values) and all(isinstance(v, pd.Timestamp | np.datetime64) for v in values)
    ):
        values = pd.Series(_as_days(values))
    return pd.factorize(values, sort=True)[0].astype("int64")


def _random_generator(random_state: Any) -> np.random.Generator:
    """A numpy Generator from an int, None, Generator or legacy RandomState."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


def _stratified_test_mask(codes: IntArray, test_size: float, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Random test mask taking ``test_size`` of every stratum.

    A stratum of ``n`` samples gives ``floor(n·test_size)`` samples, plus one for a
    random subset of the strata with a remainder (drawn in proportion to it), so that
    the test set holds ``round(N·test_size)`` samples overall and every date is split
    as evenly as its count allows. numpy/scikit-learn have no per-stratum exact-share
    sampler (``StratifiedShuffleSplit`` rounds globally and needs ≥2 samples per
    class), hence this small kernel.
    """
    counts = np.bincount(codes)
    share = counts * test_size
    n_test = np.floor(share).astype("int64")
    remainder = share - n_test
    n_extra = round(codes.size * test_size) - int(n_test.sum())
    if n_extra > 0:
        candidates = np.flatnonzero(remainder > 0)
        pick = rng.choice(candidates, size=min(n_extra, candidates.size), replace=False,
                          p=remainder[candidates] / remainder[candidates].sum())
        n_test[pick] += 1
    order = np.lexsort((rng.random(codes.size), codes))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(codes.size, dtype="int64")
    rank[order] = np.arange(codes.size) - starts[codes[order]]
    return rank < n_test[codes]


def ks_stratified_split(
    y: npt.ArrayLike,
    dates: npt.ArrayLike,
    *,
    test_size: float = 0.5,
    alpha: float = 0.05,
    max_tries: int = 1000,
    random_state: Any = None,
) -> tuple[IntArray, IntArray, float, int]:
    """Date-stratified random split, redrawn until train and test targets look alike.

    Each date's samples go ``test_size`` to the test set (Rao et al., 2022: half/half);
    the draw is repeated until the two-sample Kolmogorov–Smirnov test
    (:func:`scipy.stats.ks_2samp`) of the target between train and test gives
    ``p > alpha``.

    Parameters
    ----------
    y : array_like of shape (n_samples,)
        Target (finite values).
    dates : array_like of shape (n_samples,)
        Sampling date of each sample; datetimes are reduced to their UTC day, other
        labels are used as given.
    test_size : float
        Share of every date in the test set, in (0, 1).
    alpha : float
        A draw is accepted when the KS p-value exceeds ``alpha``.
    max_tries : int
        Draws before giving up.
    random_state : int, numpy Generator or None
        Seed; the same seed gives the same split.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray of int
        Sorted sample positions.
    p_value : float
        KS p-value of the accepted draw.
    n_tries : int
        Draws made (1 when the first draw passed).

    Raises
    ------
    ConfigError
        If ``test_size``, ``alpha`` or ``max_tries`` is out of range.
    DataError
        If ``y`` has non-finite values, fewer than two samples, lengths differ, or no
        draw passes in ``max_tries`` draws.

    Examples
    --------
    >>> y = np.arange(40.0)
    >>> dates = np.repeat(np.arange(4), 10)
    >>> train, test, p, tries = ks_stratified_split(y, dates, random_state=0)
    >>> len(train), len(test), bool(p > 0.05)
    (20, 20, True)
    """
    if not 0.0 < test_size < 1.0:
        msg = f"test_size must lie in (0, 1); got {test_size}."
        raise ConfigError(msg)
    if not 0.0 <= alpha < 1.0:
        msg = f"alpha must lie in [0, 1); got {alpha}."
        raise ConfigError(msg)
    if int(max_tries) < 1:
        msg = f"max_tries must be at least 1; got {max_tries}."
        raise ConfigError(msg)
    yv = np.asarray(y, dtype="float64").ravel()
    if not np.isfinite(yv).all():
        msg = f"y has {int((~np.isfinite(yv)).sum())} non-finite values; drop those samples before splitting."
        raise DataError(msg)
    codes = _strata_codes(dates)
    if codes.size != yv.size:
        msg = f"dates has {codes.size} values but y has {yv.size}; pass one date per sample."
        raise DataError(msg)
    n_test = round(yv.size * test_size)
    if yv.size < 2 or n_test in (0, yv.size):
        msg = f"Cannot split {yv.size} samples with test_size={test_size} into two non-empty halves."
        raise DataError(msg)
    rng = _random_generator(random_state)
    idx = np.arange(yv.size)
    best = 0.0
    for attempt in range(1, int(max_tries) + 1):
        test = _stratified_test_mask(codes, test_size, rng)
        p = float(stats.ks_2samp(yv[~test], yv[test]).pvalue)
        if p > alpha:
            logger.debug("KS-checked split accepted on draw %d (p=%.3g)", attempt, p)
            return idx[~test], idx[test], p, attempt
        best = max(best, p)
    msg = (
        f"No date-stratified split of {yv.size} samples passed the KS test (p > {alpha}) in {max_tries} draws; "
        f"the best p was {best:.3g}. Raise max_tries, lower alpha, or check the target for extreme values."
    )
    raise DataError(msg)
