"""Rotated-quadtree ensemble of local XGBoost models (Wang et al. 2025).

For each rotation angle, a :class:`~soilfuse.models.partition.QuadtreePartition`
splits the stations into leaves holding at least ``threshold`` stations each. Every
leaf gets its own XGBoost model:

1. the leaf's stations are grouped into spatial blocks (``floor(lat/1°)``,
   ``floor(lon/1°)``, :func:`soilfuse.sample.block_id`);
2. ``test_size`` of the blocks (10 % by default, at least one) are held out;
3. ``n_estimators``, ``max_depth`` and ``learning_rate`` are tuned by
   :class:`~sklearn.model_selection.GridSearchCV` with k-fold spatial-block CV
   (``GroupKFold`` over blocks, k = ``n_splits`` = 10 by default, fewer when the leaf
   has fewer training blocks) on the training blocks, then refitted on them;
4. the held-out blocks score the refitted model (``leaf_table_``).

**Fallback.** A leaf with fewer than ``min_blocks`` blocks (too few to hold out one
block and still run a 2-fold block CV) gets no local model: its points are predicted
by the *global* model, an XGBoost tuned the same way on all stations. ``n_fallback_``
counts such leaves and ``leaf_table_`` marks them.

Predictions average the six rotations; :meth:`QuadtreeEnsemble.predict_rotations`
returns every rotation's prediction, whose spread is the ensemble's uncertainty.

Usage
-----
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"lon": rng.uniform(100, 104, 600), "lat": rng.uniform(30, 34, 600),
...                   "t2m": rng.normal(280, 5, 600)})
>>> y = X["t2m"] + 0.5 * (X["lon"] - 102)
>>> model = QuadtreeEnsemble(threshold=50, angles=(0, 45), n_splits=3,
...                          param_grid={"n_estimators": [50]}).fit(X, y)
>>> model.predict(X).shape
(600,)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GridSearchCV, GroupKFold, GroupShuffleSplit
from sklearn.utils.validation import check_is_fitted, validate_data
from xgboost import XGBRegressor

from soilfuse._typing import FloatArray, IntArray, Region
from soilfuse.exceptions import DataError
from soilfuse.models.partition import QuadtreePartition
from soilfuse.sample import block_id

__all__ = ["PAPER_PARAM_GRID", "QuadtreeEnsemble"]

logger = logging.getLogger(__name__)

#: Hyper-parameter grid searched per leaf. Wang et al. (2025) tune these three
#: parameters (their Table S1 values are not in the text); this grid spans the
#: usual range for daily soil-temperature regression.
PAPER_PARAM_GRID: Mapping[str, Sequence[Any]] = {
    "n_estimators": [100, 200, 400],
    "max_depth": [4, 6, 8],
    "learning_rate": [0.05, 0.1, 0.2],
}


class QuadtreeEnsemble(RegressorMixin, BaseEstimator):
    """Local XGBoost models on rotated adaptive quadtree partitions, averaged.

    Parameters
    ----------
    threshold : int
        Stations each child needs for a quadtree split (paper: 30).
    angles : sequence of float
        Rotations of the partition in degrees (paper: 0, 15, 30, 45, 60, 75).
    max_depth_tree : int
        Quadtree levels below the root (minimum units: ``2**max_depth_tree`` per side).
    region : tuple of float, optional
        ``(west, east, south, north)`` the partitions must cover; default: stations'.
    coords : tuple
        Names (DataFrame) or positions (array) of the longitude and latitude columns.
    use_coords : bool
        Whether longitude/latitude are also predictors (not in the paper).
    param_grid : mapping, optional
        GridSearchCV grid; default :data:`PAPER_PARAM_GRID`.
    n_splits : int
        Folds of the spatial-block CV inside each leaf (paper: 10).
    block_size : float
        Spatial block edge in degrees (paper: 1).
    test_size : float
        Fraction of a leaf's blocks held out for testing (paper: 0.1).
    min_blocks : int
        Leaves with fewer blocks use the global model (see module docstring).
    xgb_params : mapping, optional
        Fixed XGBoost parameters (default ``tree_method="hist"``, ``n_jobs=1``).
    random_state : int, optional
        Seed for block hold-out and XGBoost.

    Attributes
    ----------
    partitions_ : list of QuadtreePartition
    models_ : dict
        ``(rotation index, leaf index) -> fitted XGBRegressor`` (absent for fallbacks).
    global_model_ : XGBRegressor
    leaf_table_ : pandas.DataFrame
        Per rotation and leaf: stations, rows, blocks, best parameters, held-out R²
        and RMSE, and whether the fallback was used.
    n_fallback_ : int
        Leaves predicted by the global model.
    """

    def __init__(
        self,
        threshold: int = 30,
        angles: Sequence[float] = (0.0, 15.0, 30.0, 45.0, 60.0, 75.0),
        max_depth_tree: int = 8,
        region: Region | None = None,
        coords: tuple[Any, Any] = ("lon", "lat"),
        use_coords: bool = False,
        param_grid: Mapping[str, Sequence[Any]] | None = None,
        n_splits: int = 10,
        block_size: float = 1.0,
        test_size: float = 0.1,
        min_blocks: int = 3,
        xgb_params: Mapping[str, Any] | None = None,
        random_state: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.angles = angles
        self.max_depth_tree = max_depth_tree
        self.region = region
        self.coords = coords
        self.use_coords = use_coords
        self.param_grid = param_grid
        self.n_splits = n_splits
        self.block_size = block_size
        self.test_size = test_size
        self.min_blocks = min_blocks
        self.xgb_params = xgb_params
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: npt.ArrayLike) -> QuadtreeEnsemble:
        """Fit the global model, the partitions and every leaf's local model.

        Parameters
        ----------
        X : pandas.DataFrame or array of shape (n_samples, n_features)
            Predictors including the longitude and latitude columns named by ``coords``.
        y : array of shape (n_samples,)
            Target (e.g. soil temperature, K). Rows with NaN targets are dropped.
        """
        validate_data(self, X, y, reset=True, dtype="float64", ensure_all_finite="allow-nan", y_numeric=True,
                      ensure_min_features=2, ensure_min_samples=2)
        lon, lat, feats = self._split_X(X, fitting=True)
        y_arr = np.asarray(y, dtype="float64").ravel()
        ok = np.isfinite(y_arr) & np.isfinite(lon) & np.isfinite(lat)
        if ok.sum() < 2:
            msg = "QuadtreeEnsemble needs at least two rows with a finite target and finite coordinates."
            raise DataError(msg)
        lon, lat, feats, y_arr = lon[ok], lat[ok], feats[ok], y_arr[ok]
        self._stations_ = np.unique(np.column_stack([lon, lat]), axis=0)
        blocks = block_id(lat, lon, self.block_size)
        rng = np.random.default_rng(self.random_state)
        self.global_model_, _ = self._tune(feats, y_arr, blocks, seed=int(rng.integers(2**31)))
        self.partitions_ = []
        self.models_: dict[tuple[int, int], XGBRegressor] = {}
        rows: list[dict[str, Any]] = []
        for r, angle in enumerate(self.angles):
            part = QuadtreePartition(self.threshold, self.max_depth_tree, float(angle), self.region).fit(lon, lat)
            self.partitions_.append(part)
            leaf = part.assign(lon, lat)
            for k in range(part.n_leaves):
                sel = leaf == k
                rows.append(self._fit_leaf(r, k, feats[sel], y_arr[sel], blocks[sel], part.counts_[k], rng))
        self.leaf_table_ = pd.DataFrame(rows)
        self.n_fallback_ = int(self.leaf_table_["fallback"].sum())
        logger.info(
            "quadtree ensemble: %d rotations, %d leaves, %d fallback to the global model",
            len(self.angles), len(self.leaf_table_), self.n_fallback_,
        )
        return self

    def _fit_leaf(
        self, r: int, k: int, X: FloatArray, y: FloatArray, blocks: IntArray, n_stations: int,
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "rotation": r, "angle": float(self.angles[r]), "leaf": k, "stations": int(n_stations),
            "rows": len(y), "blocks": len(np.unique(blocks)), "fallback": True,
            "params": None, "test_r2": np.nan, "test_rmse": np.nan,
        }
        if info["blocks"] < max(self.min_blocks, 3):
            return info
        seed = int(rng.integers(2**31))
        n_test = max(1, round(self.test_size * info["blocks"]))
        splitter = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
        train, test = next(splitter.split(X, y, groups=blocks))
        model, params = self._tune(X[train], y[train], blocks[train], seed=seed)
        pred = model.predict(X[test])
        resid = y[test] - pred
        ss_tot = float(np.sum((y[test] - y[test].mean()) ** 2))
        info.update(
            fallback=False,
            params=json.dumps(params, sort_keys=True),
            test_r2=1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else np.nan,
            test_rmse=float(np.sqrt(np.mean(resid**2))),
        )
        self.models_[(r, k)] = model
        return info

    def _tune(
        self, X: FloatArray, y: FloatArray, blocks: IntArray, *, seed: int
    ) -> tuple[XGBRegressor, dict[str, Any]]:
        base = XGBRegressor(**self._xgb_fixed(seed))
        grid = dict(self.param_grid if self.param_grid is not None else PAPER_PARAM_GRID)
        n_groups = len(np.unique(blocks))
        n_combos = int(np.prod([len(v) for v in grid.values()])) if grid else 1
        if n_groups < 2 or n_combos == 1:
            params = {k: v[0] for k, v in grid.items()}
            return base.set_params(**params).fit(X, y), params
        search = GridSearchCV(
            base, grid, cv=GroupKFold(n_splits=min(self.n_splits, n_groups)),
            scoring="neg_root_mean_squared_error", refit=True, n_jobs=1,
        )
        search.fit(X, y, groups=blocks)
        return search.best_estimator_, dict(search.best_params_)

    def _xgb_fixed(self, seed: int) -> dict[str, Any]:
        params: dict[str, Any] = {"tree_method": "hist", "n_jobs": 1, "random_state": seed}
        params.update(self.xgb_params or {})
        return params

    # ------------------------------------------------------------------ predict
    def predict_rotations(self, X: Any) -> FloatArray:
        """Prediction of every rotation, shape ``(n_rotations, n_samples)``."""
        check_is_fitted(self, "partitions_")
        lon, lat, feats = self._split_X(X, fitting=False)
        out = np.empty((len(self.partitions_), feats.shape[0]), dtype="float64")
        global_pred: FloatArray | None = None
        located = np.isfinite(lon) & np.isfinite(lat)
        for r, part in enumerate(self.partitions_):
            leaf = np.where(located, part.assign(lon, lat), -1)
            for k in np.unique(leaf):
                sel = leaf == k
                model = self.models_.get((r, int(k))) if k >= 0 else None
                if model is None:
                    if global_pred is None:
                        global_pred = _predict(self.global_model_, feats)
                    out[r, sel] = global_pred[sel]
                else:
                    out[r, sel] = _predict(model, feats[sel])
        return out

    def predict(self, X: Any) -> FloatArray:
        """Mean of the rotations' predictions, shape ``(n_samples,)``."""
        return self.predict_rotations(X).mean(axis=0)

    def predict_global(self, X: Any) -> FloatArray:
        """Prediction of the global model alone (the baseline without partitions)."""
        check_is_fitted(self, "global_model_")
        return _predict(self.global_model_, self._split_X(X, fitting=False)[2])

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write every booster in XGBoost's UBJSON format plus a JSON index.

        The partitions are re-created from the stored station coordinates on load,
        so no pickle is involved.
        """
        check_is_fitted(self, "partitions_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.global_model_.save_model(folder / "global.ubj")
        for (r, k), model in self.models_.items():
            model.save_model(folder / f"rot{r}_leaf{k}.ubj")
        index = {
            "params": {k: v for k, v in self.get_params().items() if _jsonable(v)},
            "feature_names_in": list(getattr(self, "feature_names_in_", [])),
            "n_features_in": self.n_features_in_,
            "stations": self._stations_.tolist(),
            "models": [[r, k] for r, k in self.models_],
        }
        (folder / "index.json").write_text(json.dumps(index, indent=1, default=list))
        self.leaf_table_.to_csv(folder / "leaf_table.csv", index=False)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> QuadtreeEnsemble:
        """Read an ensemble written by :meth:`save`."""
        folder = Path(folder)
        index = json.loads((folder / "index.json").read_text())
        params = dict(index["params"])
        for key in ("angles", "coords", "region"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        est = cls(**params)
        stations = np.asarray(index["stations"], dtype="float64")
        est.partitions_ = [
            QuadtreePartition(est.threshold, est.max_depth_tree, float(a), est.region).fit(
                stations[:, 0], stations[:, 1]
            )
            for a in est.angles
        ]
        est._stations_ = stations
        est.global_model_ = XGBRegressor()
        est.global_model_.load_model(folder / "global.ubj")
        est.models_ = {}
        for r, k in index["models"]:
            model = XGBRegressor()
            model.load_model(folder / f"rot{r}_leaf{k}.ubj")
            est.models_[(r, k)] = model
        if index["feature_names_in"]:
            est.feature_names_in_ = np.asarray(index["feature_names_in"], dtype=object)
        est.n_features_in_ = index["n_features_in"]
        est.leaf_table_ = pd.read_csv(folder / "leaf_table.csv")
        est.n_fallback_ = int(est.leaf_table_["fallback"].sum())
        return est

    # ------------------------------------------------------------------ helpers
    def _split_X(self, X: Any, *, fitting: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
        arr = validate_data(self, X, reset=False, dtype="float64", ensure_all_finite="allow-nan")
        i_lon, i_lat = (self._column_index(c, X) for c in self.coords)
        lon, lat = arr[:, i_lon], arr[:, i_lat]
        feats = arr if self.use_coords else np.delete(arr, [i_lon, i_lat], axis=1)
        if feats.shape[1] == 0:
            msg = "X holds only the coordinate columns; add predictors or set use_coords=True."
            raise DataError(msg)
        return lon, lat, feats

    def _column_index(self, col: Any, X: Any) -> int:
        if isinstance(col, (int, np.integer)):
            return int(col)
        names = list(getattr(self, "feature_names_in_", getattr(X, "columns", [])))
        if col not in names:
            msg = f"Column {col!r} (from coords={self.coords}) is not in X; columns are {names}."
            raise DataError(msg)
        return names.index(col)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _predict(model: XGBRegressor, X: FloatArray) -> FloatArray:
    """XGBoost prediction without the DMatrix cache (see DEPENDENCIES.md)."""
    if X.shape[0] == 0:
        return np.empty(0)
    return np.asarray(model.get_booster().inplace_predict(X), dtype="float64")


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v, default=list)
    except TypeError:
        return False
    return True
