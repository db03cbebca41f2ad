"""Feature importance for any fitted or unfitted scikit-learn-style estimator.

* :func:`permutation_importance_table`: the drop in score when a feature's values
  are shuffled (Breiman 2001), on held-out data. Plain permutations go through
  :func:`sklearn.inspection.permutation_importance`. Two options scikit-learn does
  not offer are computed here:

  - ``feature_groups`` shuffles several columns *together* (one permutation of the
    rows applied to all of them), so that e.g. the seven MODIS bands or a set of
    collinear soil-texture fractions are scored as one predictor;
  - ``groups`` shuffles only *within* each group (spatial block, station, date):
    a feature's values are swapped among samples of the same block, which keeps its
    between-block (spatial) pattern and scores only its within-block information,
    instead of creating feature combinations that never occur.

* :func:`drop_column_importance`: refits the estimator without each feature (or
  feature group) and reports the cross-validated score lost, a costlier but
  model-agnostic ablation that is not fooled by correlated features taking over.

Scores follow scikit-learn's convention (higher is better; RMSE scorers are
negative), so importance = baseline score - perturbed score is positive for a
useful feature.

Usage
-----
>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["ndvi", "noise"])
>>> y = 2.0 * X["ndvi"] + 0.1 * rng.normal(size=300)
>>> model = LinearRegression().fit(X, y)
>>> imp = permutation_importance_table(model, X, y, n_repeats=5, random_state=0)
>>> imp.index[0], bool(imp.loc["noise", "importance_mean"] < 0.01)
('ndvi', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv, cross_val_score
from sklearn.utils import check_random_state

from soilfuse.exceptions import DataError, MissingVariableError

__all__ = ["drop_column_importance", "permutation_importance_table"]


def _columns(X: Any) -> list[Any]:
    if isinstance(X, pd.DataFrame):
        return list(X.columns)
    return list(range(np.shape(X)[1]))


def _feature_groups(X: Any, feature_groups: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
    cols = _columns(X)
    if feature_groups is None:
        return {str(c): [c] for c in cols}
    out: dict[str, list[Any]] = {}
    for name, members in feature_groups.items():
        chosen = list(members)
        unknown = [m for m in chosen if m not in cols]
        if unknown or not chosen:
            msg = f"Feature group {name!r} names unknown or no columns {unknown or chosen}; X has {cols}."
            raise MissingVariableError(msg)
        out[str(name)] = chosen
    return out


def _within_group_permutation(codes: npt.NDArray[np.intp], rng: np.random.RandomState) -> npt.NDArray[np.intp]:
    """A permutation of the rows that only moves rows within their own group."""
    base = np.argsort(codes, kind="stable")
    shuffled = np.lexsort((rng.uniform(size=codes.size), codes))
    perm = np.empty(codes.size, dtype=np.intp)
    perm[base] = shuffled
    return perm


def _permuted(X: Any, cols: list[Any], perm: npt.NDArray[np.intp]) -> Any:
    if isinstance(X, pd.DataFrame):
        out = X.copy()
        for c in cols:
            out[c] = X[c].to_numpy()[perm]
        return out
    out_arr = np.array(X, copy=True)
    out_arr[:, cols] = np.asarray(X)[perm][:, cols]
    return out_arr


def permutation_importance_table(
    estimator: Any,
    X: Any,
    y: npt.ArrayLike,
    *,
    scoring: Any = None,
    n_repeats: int = 5,
    groups: npt.ArrayLike | None = None,
    feature_groups: Mapping[str, Sequence[Any]] | None = None,
    random_state: Any = None,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Permutation importance of each feature (or feature group) of a fitted estimator.

    Parameters
    ----------
    estimator : fitted estimator
        Anything with ``predict`` (and ``score`` when ``scoring`` is None).
    X : pandas.DataFrame or array
        Held-out samples (features by name when a DataFrame).
    y : array_like
        Targets of ``X``.
    scoring : str, callable or None
        scikit-learn scorer (e.g. ``"neg_root_mean_squared_error"``); ``None`` uses
        the estimator's ``score`` (R² for regressors).
    n_repeats : int
        Shuffles per feature.
    groups : array_like, optional
        Group of each sample (spatial block, station...): shuffle only within groups.
    feature_groups : mapping of name to columns, optional
        Columns shuffled together and reported under the group name.
    random_state : int, RandomState or None
        Seed of the shuffles.
    n_jobs : int, optional
        Parallel jobs (plain permutations only).

    Returns
    -------
    pandas.DataFrame
        Index ``feature`` (sorted by decreasing mean importance); columns
        ``importance_mean``, ``importance_std`` (over repeats) and ``baseline_score``.

    Raises
    ------
    DataError
        If ``groups`` has the wrong length.
    MissingVariableError
        If a feature group names unknown columns.
    """
    if groups is None and feature_groups is None:
        res = permutation_importance(
            estimator, X, y, scoring=scoring, n_repeats=n_repeats, random_state=random_state, n_jobs=n_jobs
        )
        baseline = float(check_scoring(estimator, scoring=scoring)(estimator, X, y))
        names = [str(c) for c in _columns(X)]
        table = pd.DataFrame(
            {"importance_mean": res["importances_mean"], "importance_std": res["importances_std"]},
            index=pd.Index(names, name="feature"),
        )
    else:
        n = int(np.shape(X)[0])
        if groups is None:
            codes = np.zeros(n, dtype=np.intp)
        else:
            g = np.asarray(groups)
            if g.shape != (n,):
                msg = f"groups must have one label per sample ({n}); got shape {g.shape}."
                raise DataError(msg)
            codes = pd.factorize(pd.Series(g))[0].astype(np.intp)
        scorer = check_scoring(estimator, scoring=scoring)
        baseline = float(scorer(estimator, X, y))
        rng = check_random_state(random_state)
        rows = {}
        for name, cols in _feature_groups(X, feature_groups).items():
            drops = [
                baseline - float(scorer(estimator, _permuted(X, cols, _within_group_permutation(codes, rng)), y))
                for _ in range(n_repeats)
            ]
            rows[name] = (float(np.mean(drops)), float(np.std(drops)))
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["importance_mean", "importance_std"])
        table.index.name = "feature"
    table["baseline_score"] = baseline
    return table.sort_values("importance_mean", ascending=False, kind="stable")


def drop_column_importance(
    estimator: Any,
    X: Any,
    y: npt.ArrayLike,
    *,
    cv: Any = 5,
    groups: npt.ArrayLike | None = None,
    scoring: Any = None,
    feature_groups: Mapping[str, Sequence[Any]] | None = None,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Cross-validated score lost when each feature (or group) is left out and the model refit.

    Parameters
    ----------
    estimator : estimator
        Unfitted scikit-learn-compatible estimator (cloned for every fit).
    X : pandas.DataFrame or array
        All samples.
    y : array_like
        Targets.
    cv : int or splitter
        Cross-validation (e.g. :class:`~soilfuse.validate.SpatialBlockKFold`); the same
        folds are used for the baseline and every ablation.
    groups : array_like, optional
        Passed to the splitter.
    scoring : str, callable or None
        scikit-learn scorer; ``None`` uses the estimator's ``score``.
    feature_groups : mapping of name to columns, optional
        Columns dropped together.
    n_jobs : int, optional
        Parallel jobs of :func:`sklearn.model_selection.cross_val_score`.

    Returns
    -------
    pandas.DataFrame
        Index ``feature`` (sorted by decreasing importance); columns ``importance``
        (baseline - ablated mean score), ``score_mean``/``score_std`` without the
        feature, and ``baseline_score``.
    """
    splits = list(check_cv(cv).split(X, y, groups))

    def score(data: Any) -> npt.NDArray[np.float64]:
        return np.asarray(
            cross_val_score(clone(estimator), data, y, cv=splits, scoring=scoring, n_jobs=n_jobs), dtype="float64"
        )

    baseline = float(score(X).mean())
    rows = {}
    for name, cols in _feature_groups(X, feature_groups).items():
        if len(cols) == len(_columns(X)):
            msg = f"Dropping feature group {name!r} would leave no feature."
            raise DataError(msg)
        reduced = X.drop(columns=cols) if isinstance(X, pd.DataFrame) else np.delete(np.asarray(X), cols, axis=1)
        s = score(reduced)
        rows[name] = (baseline - float(s.mean()), float(s.mean()), float(s.std()))
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["importance", "score_mean", "score_std"])
    table.index.name = "feature"
    table["baseline_score"] = baseline
    return table.sort_values("importance", ascending=False, kind="stable")
