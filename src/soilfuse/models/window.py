"""Multi-model regression per 16-day window (Rao et al., 2022).

Rao et al. (2022) downscale coarse satellite soil moisture by regressing it on 1 km
surface variables, one regression per 16-day period. In each period the valid samples
are split half/half, stratified by sampling date, and the draw is repeated until a
two-sample Kolmogorov–Smirnov test finds train and test targets alike (p > 0.05).
Five models (MLR, SVR, ANN, RF, XGB; :mod:`soilfuse.models._model_zoo`) are tuned by
grid-search CV on the training half, scored by R and RMSE on both halves, and the one
with the smallest mean of train and test RMSE predicts the period's days. Periods
with fewer than 100 samples get no model and use the previous period's.

Building blocks
---------------
* :func:`ks_stratified_split` — the KS-checked stratified 50/50 split (a pure function;
  ``soilfuse.validate`` may wrap it, models never import validate).
* :class:`WindowModelSelector` — one window: split, tune, score, select.
* :class:`WindowedDownscaler` — the sequence of windows: assignment, per-window fits
  in parallel (joblib) with a progress bar, reuse, dispatch, model flags, ranking.
* :func:`window_start`, :func:`window_label`, :func:`window_sequence` — the calendar.

Window calendar
---------------
Windows follow the MODIS 16-day composite calendar: they start on day-of-year 1, 17,
33, …, 353 of every year, and the 23rd window runs from DOY 353 to 31 December (13
days, 14 in leap years); 1 January always opens a new window. A window is labelled
``YYYYDDD`` (its start; ``"2016017"`` as in the paper).

Dates
-----
Both estimators take the sampling dates from the column ``date_column`` (default
``"time"``) of a DataFrame ``X``, which is then dropped from the predictors; this keeps
``fit(X, y)``/``predict(X)`` usable by scikit-learn tools. They may instead be passed as
``fit(X, y, dates=...)`` (and ``predict(X, dates=...)`` for the downscaler). A
:class:`WindowModelSelector` given no dates treats all samples as one stratum.

Reuse rule
----------
A window with fewer than ``min_samples`` samples (or, with ``on_error="record"``, whose
fit failed) has no model of its own. It uses the model of the closest earlier window
that has one; windows before the first fitted window use the first fitted window's
model. Prediction dates outside the fitted period follow the same rule (after the last
window: the last model; before the first: the first), and are flagged as reused.

Combination and flags
---------------------
The paper's "combination" is simply the selected model of every window:
:meth:`WindowedDownscaler.predict`. :meth:`WindowedDownscaler.predict_all` gives each
model's own predictions (per-model baselines), :meth:`WindowedDownscaler.model_flag`
the per-date model code (0 MLR, 1 SVR, 2 ANN, 3 RF, 4 XGB) and reuse flag for a
product's provenance layer, and :meth:`WindowedDownscaler.ranking_table` the models'
mean scores over windows (paper, Table 4).

Persistence
-----------
``save(folder)``/``load(folder)`` write XGBoost models in XGBoost's UBJSON format and
scikit-learn models with ``skops`` (no pickle), plus JSON/CSV tables.

Usage
-----
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> n = 600
>>> X = pd.DataFrame({"time": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 32, n), "D"),
...                   "lst": rng.normal(300, 5, n), "ndvi": rng.uniform(0, 1, n)})
>>> y = 0.3 - 0.01 * (X["lst"] - 300) + 0.1 * X["ndvi"] ** 2
>>> down = WindowedDownscaler(WindowModelSelector(models=("MLR", "XGB"), grid="test", cv=3),
...                           progress=False, random_state=0).fit(X, y)
>>> down.windows_["window"].tolist()
['2020001', '2020017']
>>> down.predict(X).shape
(600,)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from soilfuse._typing import FloatArray, IntArray, OnError
from soilfuse.exceptions import ConfigError, DataError
from soilfuse.models._model_zoo import (
    MODEL_NAMES,
    MODEL_ZOO,
    Grid,
    load_model,
    make_model,
    param_grid,
    save_model,
)
from soilfuse.models._window_split import (
    _as_days,
    _random_generator,
    _window_end,
    ks_stratified_split,
    window_label,
    window_sequence,
    window_start,
)

__all__ = [
    "WindowModelSelector",
    "WindowedDownscaler",
    "ks_stratified_split",
    "window_label",
    "window_sequence",
    "window_start",
]

logger = logging.getLogger(__name__)

_METRICS = ("train_r", "train_rmse", "test_r", "test_rmse")


# ---------------------------------------------------------------------- one window
def _r_rmse(y: FloatArray, pred: FloatArray) -> tuple[float, float]:
    """Pearson R and RMSE (Rao et al. 2022, Eqs. 7-8); R is NaN for constant series.

    Written here because models must not import ``soilfuse.validate`` (downstream).
    """
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    if y.size < 2 or np.ptp(y) == 0 or np.ptp(pred) == 0:
        return float("nan"), rmse
    return float(np.corrcoef(y, pred)[0, 1]), rmse


def _split_dates(X: Any, dates: Any, date_column: str | None) -> tuple[Any, Any]:
    """Predictors without the date column, and the dates (from the column or ``dates``)."""
    if isinstance(X, pd.DataFrame) and date_column is not None and date_column in X.columns:
        if dates is not None:
            msg = f"Dates were given both as column {date_column!r} of X and as dates=; pass only one."
            raise ConfigError(msg)
        return X.drop(columns=[date_column]), X[date_column].to_numpy()
    return X, dates


def _take(X: Any, rows: npt.NDArray[Any]) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]


class WindowModelSelector(RegressorMixin, BaseEstimator):
    """Tune several regressors on one window's samples and keep the best (Rao et al., 2022).

    ``fit`` splits the samples with :func:`ks_stratified_split` (stratified on date),
    tunes every model of ``models`` by ``GridSearchCV`` (scoring
    ``neg_root_mean_squared_error``, ``KFold(cv, shuffle=True)``) on the training half,
    scores each tuned model (refitted on the whole training half) by R and RMSE on
    both halves, and selects one by ``selection``.

    Parameters
    ----------
    models : sequence of str
        Models of :data:`~soilfuse.models._model_zoo.MODEL_ZOO` to fit
        (``"MLR"``, ``"SVR"``, ``"ANN"``, ``"RF"``, ``"XGB"``).
    grid : {"paper", "demo", "test"} or mapping
        Grid profile for every model, or ``{model: {param: values}}`` with bare
        parameter names; models missing from the mapping use the ``"paper"`` profile.
    selection : {"paper", "test"}
        ``"paper"``: smallest mean of train and test RMSE (Rao et al., 2022, Eq. 9);
        ``"test"``: smallest test RMSE.
    refit : {"train", "all"}
        ``"train"`` (paper): every model predicts as fitted on the training half.
        ``"all"``: after scoring and selection, every model is refitted with its tuned
        parameters on all samples (more data; the recorded scores still describe the
        train/test evaluation).
    date_column : str or None
        Column of a DataFrame ``X`` holding the sampling dates (dropped from the
        predictors). Without it, dates may be passed as ``fit(X, y, dates=...)``; with
        neither, all samples form one stratum.
    test_size : float
        Share of every date in the test half (paper: 0.5).
    alpha : float
        KS acceptance level (paper: 0.05).
    max_tries : int
        Split draws before :class:`~soilfuse.exceptions.DataError`.
    cv : int
        Folds of the tuning CV (fewer when the training half is smaller).
    n_jobs : int
        Threads of RF and XGB (the grid search itself runs serially).
    random_state : int, Generator or None
        Seed of the split, the CV folds and the models.

    Attributes
    ----------
    estimators_ : dict
        Fitted model per name.
    scores_ : pandas.DataFrame
        One row per model: ``model``, ``train_r``, ``train_rmse``, ``test_r``,
        ``test_rmse``, ``mean_rmse``, ``cv_rmse`` (best CV RMSE; NaN when nothing was
        tuned), ``best_params`` (JSON text).
    selected_ : str
        Name of the selected model.
    n_train_, n_test_ : int
        Sizes of the two halves.
    ks_pvalue_ : float
        KS p-value of the accepted split.
    ks_tries_ : int
        Split draws made.
    train_index_, test_index_ : numpy.ndarray of int
        Sample positions of the halves.

    Notes
    -----
    Passes :func:`sklearn.utils.estimator_checks.parametrize_with_checks`. The ANN's
    early stopping holds out 10 % of each fit; when the smallest tuning fit has fewer
    than 20 samples (tiny windows only; windows of ≥100 samples never do), early
    stopping is switched off because the hold-out would have under two samples.
    """

    def __init__(
        self,
        models: Sequence[str] = MODEL_NAMES,
        grid: str | Mapping[str, Grid] = "paper",
        selection: Literal["paper", "test"] = "paper",
        refit: Literal["train", "all"] = "train",
        date_column: str | None = "time",
        test_size: float = 0.5,
        alpha: float = 0.05,
        max_tries: int = 1000,
        cv: int = 5,
        n_jobs: int = 1,
        random_state: Any = None,
    ) -> None:
        self.models = models
        self.grid = grid
        self.selection = selection
        self.refit = refit
        self.date_column = date_column
        self.test_size = test_size
        self.alpha = alpha
        self.max_tries = max_tries
        self.cv = cv
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self) -> list[str]:
        names = [str(m).upper() for m in self.models]
        unknown = [m for m in names if m not in MODEL_ZOO]
        if unknown or not names or len(set(names)) != len(names):
            msg = f"models must be distinct names from {list(MODEL_NAMES)}; got {list(self.models)}."
            raise ConfigError(msg)
        if self.selection not in ("paper", "test"):
            msg = f"selection must be 'paper' (mean of train and test RMSE) or 'test'; got {self.selection!r}."
            raise ConfigError(msg)
        if self.refit not in ("train", "all"):
            msg = f"refit must be 'train' (paper) or 'all'; got {self.refit!r}."
            raise ConfigError(msg)
        if int(self.cv) < 2:
            msg = f"cv must be at least 2 folds; got {self.cv}."
            raise ConfigError(msg)
        if not isinstance(self.grid, str):
            extra = sorted(set(self.grid) - set(names))
            if extra:
                msg = f"grid has entries for models not in models={names}: {extra}."
                raise ConfigError(msg)
        return names

    def _grid_for(self, name: str) -> dict[str, list[Any]]:
        if isinstance(self.grid, str):
            return param_grid(name, self.grid)
        return param_grid(name, self.grid.get(name, "paper"))

    def fit(self, X: Any, y: npt.ArrayLike, dates: npt.ArrayLike | None = None) -> WindowModelSelector:
        """Split, tune, score and select.

        Parameters
        ----------
        X : pandas.DataFrame or array of shape (n_samples, n_features)
            Predictors, plus the ``date_column`` if X is a DataFrame holding it.
        y : array of shape (n_samples,)
            Target (e.g. coarse soil moisture, m³ m⁻³); finite values.
        dates : array_like, optional
            Sampling dates when X has no date column.

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            On invalid parameters.
        DataError
            If the KS-checked split fails (see :func:`ks_stratified_split`).
        """
        names = self._check_params()
        X_feat, dates = _split_dates(X, dates, self.date_column)
        Xa, ya = validate_data(self, X_feat, y, reset=True, dtype="float64", y_numeric=True, ensure_min_samples=4)
        strata = np.zeros(ya.size, dtype="int64") if dates is None else dates
        rng = _random_generator(self.random_state)
        split_seed, cv_seed = (int(s) for s in rng.integers(2**31, size=2))
        model_seeds = dict(zip(MODEL_NAMES, (int(s) for s in rng.integers(2**31, size=len(MODEL_NAMES))), strict=True))
        train, test, self.ks_pvalue_, self.ks_tries_ = ks_stratified_split(
            ya, strata, test_size=self.test_size, alpha=self.alpha, max_tries=self.max_tries, random_state=split_seed,
        )
        self.train_index_, self.test_index_ = train, test
        self.n_train_, self.n_test_ = int(train.size), int(test.size)
        self.estimators_: dict[str, Any] = {}
        rows = []
        for name in names:
            est, params, cv_rmse = self._tune(name, Xa[train], ya[train], cv_seed, model_seeds[name])
            train_r, train_rmse = _r_rmse(ya[train], np.asarray(est.predict(Xa[train]), dtype="float64"))
            test_r, test_rmse = _r_rmse(ya[test], np.asarray(est.predict(Xa[test]), dtype="float64"))
            rows.append({
                "model": name, "train_r": train_r, "train_rmse": train_rmse, "test_r": test_r,
                "test_rmse": test_rmse, "mean_rmse": 0.5 * (train_rmse + test_rmse), "cv_rmse": cv_rmse,
                "best_params": json.dumps(params, sort_keys=True, default=list),
            })
            self.estimators_[name] = est
        self.scores_ = pd.DataFrame(rows)
        criterion = self.scores_["mean_rmse" if self.selection == "paper" else "test_rmse"].to_numpy()
        if not np.isfinite(criterion).any():
            msg = f"No model gave a finite RMSE on this window ({self.n_train_} train / {self.n_test_} test samples)."
            raise DataError(msg)
        self.selected_ = str(self.scores_["model"].iloc[int(np.nanargmin(criterion))])
        if self.refit == "all":
            self.estimators_ = {name: clone(est).fit(Xa, ya) for name, est in self.estimators_.items()}
        logger.info(
            "window selector: %d train / %d test (KS p=%.3g after %d draws), selected %s",
            self.n_train_, self.n_test_, self.ks_pvalue_, self.ks_tries_, self.selected_,
        )
        return self

    def _tune(
        self, name: str, X: FloatArray, y: FloatArray, cv_seed: int, model_seed: int
    ) -> tuple[Any, dict[str, Any], float]:
        spec = MODEL_ZOO[name]
        est = make_model(name, random_state=model_seed, n_jobs=self.n_jobs)
        n_splits = min(int(self.cv), y.size)
        if name == "ANN" and y.size * (n_splits - 1) / n_splits < 20:
            est.set_params(**{f"{spec.prefix}early_stopping": False})
        grid = self._grid_for(name)
        n_candidates = int(np.prod([len(v) for v in grid.values()])) if grid else 1
        if n_candidates == 1 or n_splits < 2:
            params = {k: v[0] for k, v in grid.items()}
            est.set_params(**params)
            est.fit(X, y)
            cv_rmse = float("nan")
        else:
            search = GridSearchCV(
                est, grid, scoring="neg_root_mean_squared_error",
                cv=KFold(n_splits, shuffle=True, random_state=cv_seed), refit=True, n_jobs=1, error_score="raise",
            )
            search.fit(X, y)
            est, params, cv_rmse = search.best_estimator_, dict(search.best_params_), -float(search.best_score_)
        return est, {k.removeprefix(spec.prefix): v for k, v in params.items()}, cv_rmse

    def _features(self, X: Any) -> FloatArray:
        check_is_fitted(self, "selected_")
        X_feat, _ = _split_dates(X, None, self.date_column)
        return np.asarray(validate_data(self, X_feat, reset=False, dtype="float64"))

    def predict(self, X: Any) -> FloatArray:
        """Prediction of the selected model, shape ``(n_samples,)``.

        ``X`` may hold the date column; it is ignored.
        """
        arr = self._features(X)
        return np.asarray(self.estimators_[self.selected_].predict(arr), dtype="float64")

    def predict_all(self, X: Any) -> pd.DataFrame:
        """Prediction of every model (one column per model), for per-model baselines."""
        arr = self._features(X)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(
            {name: np.asarray(est.predict(arr), dtype="float64") for name, est in self.estimators_.items()},
            index=index,
        )

    def save(self, folder: str | Path) -> Path:
        """Write the models (XGBoost UBJSON, scikit-learn via skops), scores and a JSON index."""
        check_is_fitted(self, "selected_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {name: save_model(est, folder, name).name for name, est in self.estimators_.items()}
        index = {
            "params": {k: v for k, v in self.get_params().items() if _jsonable(v)},
            "files": files, "selected": self.selected_, "n_train": self.n_train_, "n_test": self.n_test_,
            "ks_pvalue": self.ks_pvalue_, "ks_tries": self.ks_tries_,
            "train_index": self.train_index_.tolist(), "test_index": self.test_index_.tolist(),
            "n_features_in": self.n_features_in_,
            "feature_names_in": [str(c) for c in getattr(self, "feature_names_in_", [])],
        }
        (folder / "index.json").write_text(json.dumps(index, default=list))
        self.scores_.to_csv(folder / "scores.csv", index=False)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> WindowModelSelector:
        """Read a selector written by :meth:`save`."""
        folder = Path(folder)
        index = json.loads((folder / "index.json").read_text())
        params = dict(index["params"])
        params["models"] = tuple(params.get("models", MODEL_NAMES))
        est = cls(**params)
        est.estimators_ = {name: load_model(folder / file) for name, file in index["files"].items()}
        est.selected_ = index["selected"]
        est.n_train_, est.n_test_ = index["n_train"], index["n_test"]
        est.ks_pvalue_, est.ks_tries_ = index["ks_pvalue"], index["ks_tries"]
        est.train_index_ = np.asarray(index["train_index"], dtype="int64")
        est.test_index_ = np.asarray(index["test_index"], dtype="int64")
        est.n_features_in_ = index["n_features_in"]
        if index["feature_names_in"]:
            est.feature_names_in_ = np.asarray(index["feature_names_in"], dtype=object)
        est.scores_ = pd.read_csv(folder / "scores.csv")
        return est


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v, default=list)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------- windows
def _fit_window(
    label: str, selector: WindowModelSelector, X: Any, y: FloatArray, dates: Any, on_error: OnError
) -> tuple[str, WindowModelSelector | None, str]:
    """Fit one window's selector (runs in a joblib worker)."""
    try:
        selector.fit(X, y, dates=dates)
    except ValueError as err:  # DataError, XGBoostError and numerical failures are ValueErrors
        if on_error == "raise":
            msg = f"Fitting window {label} failed: {err}"
            raise DataError(msg) from err
        logger.warning("window %s: fit failed (%s); it will reuse another window's model", label, err)
        return label, None, f"failed: {err}"
    return label, selector, "fitted"


class WindowedDownscaler(RegressorMixin, BaseEstimator):
    """One :class:`WindowModelSelector` per 16-day window, with reuse for sparse windows.

    Parameters
    ----------
    selector : WindowModelSelector, optional
        Template cloned for every window (default ``WindowModelSelector()``: all five
        models, paper grids, paper selection). Its ``random_state`` is replaced per
        window (see ``random_state``).
    date_column : str
        Column of a DataFrame ``X`` holding the sampling dates (dropped from the
        predictors); otherwise pass ``dates=`` to :meth:`fit`/:meth:`predict`.
    min_samples : int
        Windows with fewer samples get no model and reuse another window's (paper:
        100; see the module docstring for the rule).
    n_jobs : int
        Windows fitted in parallel (joblib processes); each window then runs its
        models single-threaded.
    progress : bool
        Show a tqdm progress bar over windows.
    on_error : {"raise", "record"}
        A window whose fit fails either aborts ``fit`` or is recorded (``status``) and
        treated like a sparse window.
    random_state : int or None
        Base seed; each window's seed is derived from it and the window's start date,
        so a window's result does not depend on the other windows or on ``n_jobs``.

    Attributes
    ----------
    windows_ : pandas.DataFrame
        One row per window from the first to the last training date: ``window``
        (label), ``start``, ``end``, ``n_samples``, ``n_train``, ``n_test``,
        ``ks_pvalue``, ``ks_tries``, ``status``, ``selected``, ``selected_code``,
        ``reused``, ``source`` (label of the window whose model is used) and, per
        model, ``<model>_train_r``, ``<model>_train_rmse``, ``<model>_test_r``,
        ``<model>_test_rmse``.
    selectors_ : dict
        Fitted :class:`WindowModelSelector` per window label (fitted windows only).
    models_ : tuple of str
        Model names fitted in every window.
    seed_ : int
        Base seed used (``random_state``, or the one drawn when it is None; record it
        in the run manifest to repeat the run).

    Notes
    -----
    Dates are required, so the scikit-learn estimator checks (numpy ``X`` without
    dates) do not apply; ``get_params``/``set_params``/``clone`` work as usual.
    """

    def __init__(
        self,
        selector: WindowModelSelector | None = None,
        date_column: str = "time",
        min_samples: int = 100,
        n_jobs: int = 1,
        progress: bool = True,
        on_error: OnError = "raise",
        random_state: int | None = None,
    ) -> None:
        self.selector = selector
        self.date_column = date_column
        self.min_samples = min_samples
        self.n_jobs = n_jobs
        self.progress = progress
        self.on_error = on_error
        self.random_state = random_state

    def _dates(self, X: Any, dates: Any) -> tuple[Any, npt.NDArray[np.datetime64]]:
        X_feat, d = _split_dates(X, dates, self.date_column)
        if d is None:
            msg = (f"No sampling dates: X has no column {self.date_column!r} and dates= was not given; "
                   "add the column or pass dates.")
            raise DataError(msg)
        days = _as_days(d)
        n = len(X_feat)
        if days.size != n:
            msg = f"Got {days.size} dates for {n} samples; pass one date per sample."
            raise DataError(msg)
        return X_feat, days

    def fit(self, X: Any, y: npt.ArrayLike, dates: npt.ArrayLike | None = None) -> WindowedDownscaler:
        """Fit a selector in every window holding at least ``min_samples`` samples.

        Parameters
        ----------
        X : pandas.DataFrame or array of shape (n_samples, n_features)
            Predictors of all windows, plus the date column.
        y : array of shape (n_samples,)
            Target (m³ m⁻³).
        dates : array_like, optional
            Sampling dates when X has no date column.

        Raises
        ------
        DataError
            If dates are missing, or no window has ``min_samples`` samples, or (with
            ``on_error="raise"``) a window's fit fails.
        """
        if self.on_error not in ("raise", "record"):
            msg = f"on_error must be 'raise' or 'record'; got {self.on_error!r}."
            raise ConfigError(msg)
        if int(self.min_samples) < 4:
            msg = f"min_samples must be at least 4 (two per half); got {self.min_samples}."
            raise ConfigError(msg)
        template = self.selector if self.selector is not None else WindowModelSelector()
        self.models_ = tuple(template._check_params())
        X_feat, days = self._dates(X, dates)
        ya = np.asarray(y, dtype="float64").ravel()
        if ya.size != days.size:
            msg = f"y has {ya.size} values for {days.size} samples."
            raise DataError(msg)
        starts = window_start(days)
        seq = window_sequence(days.min(), days.max())
        labels = window_label(seq)
        n_samples = np.array([int(np.count_nonzero(starts == s)) for s in seq], dtype="int64")
        base = self.random_state if self.random_state is not None else int(np.random.default_rng().integers(2**31))
        self.seed_ = int(base)
        overrides: dict[str, Any] = {"date_column": self.date_column}
        if self.n_jobs != 1:
            overrides["n_jobs"] = 1
        big = [i for i in range(seq.size) if n_samples[i] >= self.min_samples]
        jobs = []
        for i in big:
            rows = np.flatnonzero(starts == seq[i])
            seed = int(np.random.SeedSequence([base, int(labels[i])]).generate_state(1)[0] >> 1)
            sel = clone(template).set_params(random_state=seed, **overrides)
            jobs.append(delayed(_fit_window)(labels[i], sel, _take(X_feat, rows), ya[rows], days[rows], self.on_error))
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs)
        status = {lab: f"too few samples (< {self.min_samples})" for lab in labels}
        self.selectors_: dict[str, WindowModelSelector] = {}
        for label, sel, state in tqdm(results, total=len(jobs), desc="16-day windows", disable=not self.progress):
            status[label] = state
            if sel is not None:
                self.selectors_[label] = sel
        if not self.selectors_:
            if jobs:
                msg = (f"The fit failed in all {len(jobs)} windows with at least {self.min_samples} samples; "
                       f"first failure: {status[labels[big[0]]]}")
            else:
                msg = (f"No 16-day window has {self.min_samples} samples to fit a model (largest: "
                       f"{n_samples.max()}); lower min_samples or add samples.")
            raise DataError(msg)
        self._fitted_starts = np.array([s for s, lab in zip(seq, labels, strict=True) if lab in self.selectors_])
        self._fitted_labels = [lab for lab in labels if lab in self.selectors_]
        self.windows_ = self._window_table(seq, labels, n_samples, status)
        logger.info("windowed downscaler: %d windows, %d fitted, %d reuse another window's model",
                    len(labels), len(self.selectors_), int(self.windows_["reused"].sum()))
        return self

    def _source_index(self, starts: npt.NDArray[np.datetime64]) -> IntArray:
        """Index into the fitted windows of the model used for each window start."""
        pos = np.searchsorted(self._fitted_starts, starts, side="right") - 1
        return np.maximum(pos, 0)

    def _window_table(
        self, seq: npt.NDArray[np.datetime64], labels: list[str], n_samples: IntArray, status: dict[str, str]
    ) -> pd.DataFrame:
        src = self._source_index(seq)
        rows = []
        for i, label in enumerate(labels):
            source = self._fitted_labels[src[i]]
            sel = self.selectors_.get(label)
            row: dict[str, Any] = {
                "window": label, "start": seq[i], "end": _window_end(seq[i : i + 1])[0],
                "n_samples": int(n_samples[i]), "n_train": sel.n_train_ if sel else 0,
                "n_test": sel.n_test_ if sel else 0, "ks_pvalue": sel.ks_pvalue_ if sel else np.nan,
                "ks_tries": sel.ks_tries_ if sel else 0, "status": status[label],
                "selected": self.selectors_[source].selected_,
                "selected_code": MODEL_ZOO[self.selectors_[source].selected_].code,
                "reused": source != label, "source": source,
            }
            for name in self.models_:
                scores = sel.scores_.set_index("model").loc[name] if sel else None
                for metric in _METRICS:
                    row[f"{name}_{metric}"] = float(scores[metric]) if scores is not None else np.nan
            rows.append(row)
        table = pd.DataFrame(rows)
        table["start"] = pd.to_datetime(table["start"])
        table["end"] = pd.to_datetime(table["end"])
        return table

    def _route(self, X: Any, dates: Any) -> tuple[Any, IntArray]:
        check_is_fitted(self, "selectors_")
        X_feat, days = self._dates(X, dates)
        return X_feat, self._source_index(window_start(days))

    def predict(self, X: Any, dates: npt.ArrayLike | None = None) -> FloatArray:
        """Predict each row with the model of its window (or the reused one).

        Parameters
        ----------
        X : pandas.DataFrame or array of shape (n_samples, n_features)
            Predictors plus the date column (or pass ``dates``).
        dates : array_like, optional

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
            Prediction in the target's unit (m³ m⁻³).
        """
        X_feat, src = self._route(X, dates)
        out = np.empty(len(src), dtype="float64")
        for k in np.unique(src):
            rows = np.flatnonzero(src == k)
            out[rows] = self.selectors_[self._fitted_labels[k]].predict(_take(X_feat, rows))
        return out

    def predict_all(self, X: Any, dates: npt.ArrayLike | None = None) -> pd.DataFrame:
        """Every model's prediction, each row by its window's model of that type.

        These are the per-model baselines (e.g. "XGB only"); :meth:`predict` is the
        combination.
        """
        X_feat, src = self._route(X, dates)
        out = pd.DataFrame(np.nan, index=range(len(src)), columns=list(self.models_))
        for k in np.unique(src):
            rows = np.flatnonzero(src == k)
            out.iloc[rows] = self.selectors_[self._fitted_labels[k]].predict_all(_take(X_feat, rows)).to_numpy()
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out

    def model_flag(self, dates: npt.ArrayLike) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
        """Code of the model used for each date, and whether it was reused.

        Parameters
        ----------
        dates : array_like of datetime-like

        Returns
        -------
        code : numpy.ndarray of int8
            0 MLR, 1 SVR, 2 ANN, 3 RF, 4 XGB.
        reused : numpy.ndarray of bool
            True where the date's window has no model of its own.
        """
        check_is_fitted(self, "selectors_")
        starts = window_start(dates)
        src = self._source_index(starts)
        codes = np.array([MODEL_ZOO[self.selectors_[lab].selected_].code for lab in self._fitted_labels], dtype="int8")
        return codes[src], self._fitted_starts[src] != starts

    def ranking_table(self, by: Literal["paper", "test"] = "paper") -> pd.DataFrame:
        """Mean train/test R and RMSE of every model over the fitted windows, ranked.

        Parameters
        ----------
        by : {"paper", "test"}
            Rank by the mean of train and test RMSE (paper, Eq. 9) or by test RMSE.

        Returns
        -------
        pandas.DataFrame
            Rows per model plus ``"Combination"`` (the selected model of each window;
            not ranked): ``train_r``, ``train_rmse``, ``test_r``, ``test_rmse``,
            ``mean_rmse``, ``n_selected`` (windows where the model was chosen) and
            ``rank`` (1 = best). Rao et al. (2022) found XGB > RF > SVR > ANN > MLR.
        """
        check_is_fitted(self, "windows_")
        if by not in ("paper", "test"):
            msg = f"by must be 'paper' or 'test'; got {by!r}."
            raise ConfigError(msg)
        own = self.windows_[~self.windows_["reused"]]
        rows = []
        for name in self.models_:
            row = {m: float(own[f"{name}_{m}"].mean()) for m in _METRICS}
            rows.append({"model": name, **row, "n_selected": int((own["selected"] == name).sum())})
        combo = {m: float(np.mean([own.iloc[i][f"{sel}_{m}"] for i, sel in enumerate(own["selected"])]))
                 for m in _METRICS}
        table = pd.DataFrame(rows)
        table["mean_rmse"] = 0.5 * (table["train_rmse"] + table["test_rmse"])
        table["rank"] = table["mean_rmse" if by == "paper" else "test_rmse"].rank(method="min")
        combo_row = {"model": "Combination", **combo, "n_selected": len(own),
                     "mean_rmse": 0.5 * (combo["train_rmse"] + combo["test_rmse"]), "rank": np.nan}
        return pd.concat([table, pd.DataFrame([combo_row])], ignore_index=True)

    def save(self, folder: str | Path) -> Path:
        """Write every window's selector (sub-folder per label), the window table and an index."""
        check_is_fitted(self, "selectors_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for label, sel in self.selectors_.items():
            sel.save(folder / label)
        template = self.selector if self.selector is not None else WindowModelSelector()
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "selector"}
        index = {"params": params, "selector": {k: v for k, v in template.get_params().items() if _jsonable(v)},
                 "models": list(self.models_), "fitted": self._fitted_labels, "seed": self.seed_}
        (folder / "index.json").write_text(json.dumps(index, default=list))
        self.windows_.to_csv(folder / "windows.csv", index=False)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> WindowedDownscaler:
        """Read a downscaler written by :meth:`save`."""
        folder = Path(folder)
        index = json.loads((folder / "index.json").read_text())
        sel_params = dict(index["selector"])
        sel_params["models"] = tuple(sel_params.get("models", MODEL_NAMES))
        est = cls(selector=WindowModelSelector(**sel_params), **index["params"])
        est.models_ = tuple(index["models"])
        est.seed_ = int(index["seed"])
        est._fitted_labels = list(index["fitted"])
        est.selectors_ = {lab: WindowModelSelector.load(folder / lab) for lab in est._fitted_labels}
        table = pd.read_csv(folder / "windows.csv", dtype={"window": str, "source": str})
        table["start"] = pd.to_datetime(table["start"])
        table["end"] = pd.to_datetime(table["end"])
        table["reused"] = table["reused"].astype(bool)
        est.windows_ = table
        fitted = table.set_index("window").loc[est._fitted_labels, "start"]
        est._fitted_starts = fitted.to_numpy().astype("datetime64[D]")
        return est
