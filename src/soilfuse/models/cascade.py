"""Layer cascade: estimate each depth from the estimate of the depth above.

Wang et al. (2025) predict soil temperature at 0 cm from air temperature and LST and
at every deeper depth from the same predictors with those two replaced by the
estimate for the depth above, so heat conducted downward links the layers.

Training such a chain naively leaks: if the deeper model is trained on the
*observed* upper-layer value, it learns to trust an input that, at prediction time, is
only an estimate with errors. :class:`LayerCascade` therefore feeds, by default, the
**cross-fitted** (out-of-fold) estimate of the layer above: rows are split into
``cv`` folds of spatial blocks; the upper model trained without a fold predicts that
fold, so no row's upper-layer input was fitted on that row. ``upper="observed"`` keeps
the naive variant for comparison (rows lacking an observed upper value are dropped
from that depth's training).

``target="offset"`` (not in the paper) makes every model learn a departure instead of
the temperature itself: the top depth learns ``y − X[offset_feature]`` (e.g. soil minus
air temperature) and each deeper depth ``y − upper``; predictions add the reference
back. With ``offset_features`` (one column of X per depth, e.g. a reanalysis soil
temperature interpolated to each depth) every depth learns its departure from its own
column instead, so errors do not accumulate down the chain while the estimate above
remains an input. Tree ensembles cannot extrapolate beyond the targets they saw, so where
stations miss a climate (e.g. a cold plateau without 0 cm sensors) absolute targets
are clipped to the training range while departures stay physical.

Targets are a table with one column per depth and NaN where a station does not
measure that depth; each depth's model is fitted on the rows where it is observed,
while cross-fitted upper estimates exist for every row.

Usage
-----
>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> rng = np.random.default_rng(1)
>>> X = pd.DataFrame({"lon": rng.uniform(0, 4, 300), "lat": rng.uniform(0, 4, 300),
...                   "t2m": rng.normal(280, 5, 300), "evi": rng.uniform(0, 1, 300)})
>>> Y = pd.DataFrame({"0cm": X.t2m + 1, "5cm": X.t2m + 0.5})
>>> cas = LayerCascade(LinearRegression(), depths=("0cm", "5cm"),
...                    surface_features=("t2m",), coords=("lon", "lat")).fit(X, Y)
>>> cas.predict(X).shape
(300, 2)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GroupKFold, KFold
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError
from soilfuse.sample import block_id

__all__ = ["LayerCascade"]

logger = logging.getLogger(__name__)

UPPER = "st_upper"


class LayerCascade(RegressorMixin, BaseEstimator):
    """Chain of per-depth regressors, each fed the estimate of the depth above.

    Parameters
    ----------
    estimator : estimator, optional
        Regressor cloned for every depth (default:
        :class:`~soilfuse.models.quadtree.QuadtreeEnsemble`). It receives a
        DataFrame whose columns are X's plus ``st_upper`` for deeper layers.
    depths : sequence of str
        Target names from top to bottom (columns of ``Y``).
    surface_features : sequence of str
        Predictors used only by the top depth and replaced below by ``st_upper``
        (paper: air temperature and LST mean).
    upper : {"crossfit", "observed"}
        How deeper models get their upper-layer input during training.
    cv : int
        Folds of the cross-fitting (spatial blocks when ``coords`` are given).
    coords : tuple of str, optional
        Longitude/latitude columns used to form 1° blocks for the folds.
    block_size : float
        Block edge (degrees).
    target : {"absolute", "offset"}
        Learn temperatures (paper) or departures from the reference (see above).
    offset_feature : str
        Column of X that is the reference of the top depth in ``offset`` mode.
    offset_features : sequence of str, optional
        One column of X per depth, the reference of each depth in ``offset`` mode
        (overrides ``offset_feature`` and the layer above).
    random_state : int, optional

    Attributes
    ----------
    estimators_ : list
        Fitted model per depth.
    upper_oof_ : pandas.DataFrame
        Cross-fitted estimate of every depth at every training row (crossfit mode).
    """

    def __init__(
        self,
        estimator: Any = None,
        depths: Sequence[str] = ("0cm", "5cm", "10cm", "15cm", "20cm", "40cm"),
        surface_features: Sequence[str] = ("t2m", "lst_mean"),
        upper: Literal["crossfit", "observed"] = "crossfit",
        cv: int = 5,
        coords: tuple[str, str] | None = ("lon", "lat"),
        block_size: float = 1.0,
        target: Literal["absolute", "offset"] = "absolute",
        offset_feature: str = "t2m",
        offset_features: Sequence[str] | None = None,
        random_state: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.depths = depths
        self.surface_features = surface_features
        self.upper = upper
        self.cv = cv
        self.coords = coords
        self.block_size = block_size
        self.target = target
        self.offset_feature = offset_feature
        self.offset_features = offset_features
        self.random_state = random_state

    def fit(self, X: Any, Y: Any) -> LayerCascade:
        """Fit one model per depth, top to bottom.

        Parameters
        ----------
        X : pandas.DataFrame or array of shape (n_samples, n_features)
        Y : pandas.DataFrame or array of shape (n_samples, n_depths) or (n_samples,)
            Targets per depth, NaN where not observed.
        """
        if self.upper not in ("crossfit", "observed"):
            msg = f"upper must be 'crossfit' or 'observed'; got {self.upper!r}."
            raise DataError(msg)
        if self.target not in ("absolute", "offset"):
            msg = f"target must be 'absolute' or 'offset'; got {self.target!r}."
            raise DataError(msg)
        if self.offset_features is not None and len(self.offset_features) != len(self.depths):
            msg = f"offset_features needs one column per depth ({len(self.depths)}); got {list(self.offset_features)}."
            raise DataError(msg)
        validate_data(
            self, X, Y, reset=True,
            validate_separately=(
                {"dtype": "float64", "ensure_all_finite": "allow-nan", "ensure_min_samples": 2},
                {"dtype": "float64", "ensure_all_finite": "allow-nan", "ensure_2d": False},
            ),
        )
        Xdf = self._frame(X, fitting=False)
        Yarr = self._targets(Y, len(Xdf))
        groups = self._groups(Xdf)
        self.estimators_: list[Any] = []
        oof: dict[str, FloatArray] = {}
        upper: FloatArray | None = None
        for d, name in enumerate(self.depths):
            y = Yarr[:, d]
            if d == 0:
                Xd = self._inputs(Xdf, None)
                train_upper = None
            else:
                train_upper = Yarr[:, d - 1] if self.upper == "observed" else upper
                Xd = self._inputs(Xdf, train_upper)
            ref = self._reference(Xd, train_upper, d)
            y_fit = y - ref
            rows = np.isfinite(y_fit) & (np.isfinite(train_upper) if train_upper is not None else True)
            if rows.sum() < 2:
                msg = f"Depth {name!r} has {int(rows.sum())} usable rows; at least 2 are needed."
                raise DataError(msg)
            model = self._new_estimator().fit(Xd[rows], y_fit[rows])
            self.estimators_.append(model)
            if self.upper == "crossfit" and d < len(self.depths) - 1:
                upper = self._cross_fit(Xd, y_fit, groups) + self._reference(Xd, upper, d)
                oof[name] = upper
            logger.info("cascade depth %s fitted on %d rows", name, int(rows.sum()))
        self.upper_oof_ = pd.DataFrame(oof, index=Xdf.index)
        return self

    def _cross_fit(self, Xd: pd.DataFrame, y: FloatArray, groups: Any) -> FloatArray:
        out = np.full(len(Xd), np.nan)
        n_groups = len(np.unique(groups)) if groups is not None else len(Xd)
        k = min(self.cv, n_groups)
        if k < 2:
            msg = "Cross-fitting needs at least two spatial blocks; use upper='observed' or more stations."
            raise DataError(msg)
        splitter = (
            GroupKFold(n_splits=k) if groups is not None
            else KFold(n_splits=k, shuffle=True, random_state=self.random_state)
        )
        upper_col = Xd[UPPER].to_numpy() if UPPER in Xd.columns else np.zeros(len(Xd))
        usable = np.isfinite(y) & np.isfinite(upper_col)
        for train, test in splitter.split(Xd, y, groups=groups):
            ok = train[usable[train]]
            if len(ok) < 2:
                continue
            out[test] = self._new_estimator().fit(Xd.iloc[ok], y[ok]).predict(Xd.iloc[test])
        missing = ~np.isfinite(out)
        if missing.any():  # folds without training rows for this depth: use the full model
            out[missing] = self.estimators_[-1].predict(Xd.iloc[np.flatnonzero(missing)])
        return out

    def predict(self, X: Any) -> FloatArray:
        """Estimates for every depth, shape ``(n_samples, n_depths)`` (or 1-D for one depth)."""
        check_is_fitted(self, "estimators_")
        Xdf = self._frame(X, fitting=False)
        out = np.empty((len(Xdf), len(self.depths)))
        upper: FloatArray | None = None
        for d, model in enumerate(self.estimators_):
            inputs = self._inputs(Xdf, upper)
            out[:, d] = model.predict(inputs) + self._reference(inputs, upper, d)
            upper = out[:, d]
        return out[:, 0] if self._single_ else out

    def predict_spread(self, X: Any) -> tuple[FloatArray, FloatArray]:
        """Mean and rotation spread (std) per depth, when the estimator has ``predict_rotations``."""
        check_is_fitted(self, "estimators_")
        Xdf = self._frame(X, fitting=False)
        mean = np.empty((len(Xdf), len(self.depths)))
        spread = np.zeros_like(mean)
        upper: FloatArray | None = None
        for d, model in enumerate(self.estimators_):
            inputs = self._inputs(Xdf, upper)
            ref = self._reference(inputs, upper, d)
            if hasattr(model, "predict_rotations"):
                rot = model.predict_rotations(inputs)
                mean[:, d], spread[:, d] = rot.mean(axis=0) + ref, rot.std(axis=0)
            else:
                mean[:, d] = model.predict(inputs) + ref
            upper = mean[:, d]
        return mean, spread

    # ------------------------------------------------------------------ helpers
    def _reference(self, Xd: pd.DataFrame, upper: FloatArray | None, d: int) -> FloatArray | float:
        """What the depth's model learns a departure from (0 for absolute targets)."""
        if self.target == "absolute":
            return 0.0
        if self.offset_features is not None:
            column = self.offset_features[d]
        elif d > 0 and upper is not None:
            return upper
        else:
            column = self.offset_feature
        if column not in Xd.columns:
            msg = f"Offset reference {column!r} is not a column of X; columns are {list(Xd.columns)}."
            raise DataError(msg)
        return Xd[column].to_numpy(dtype="float64")

    def _new_estimator(self) -> Any:
        if self.estimator is None:
            from soilfuse.models.quadtree import QuadtreeEnsemble

            return QuadtreeEnsemble(random_state=self.random_state)
        return clone(self.estimator)

    def _frame(self, X: Any, *, fitting: bool) -> pd.DataFrame:
        arr = validate_data(self, X, reset=fitting, dtype="float64", ensure_all_finite="allow-nan")
        names = list(getattr(self, "feature_names_in_", [f"x{i}" for i in range(arr.shape[1])]))
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(arr, columns=names, index=index)

    def _inputs(self, Xdf: pd.DataFrame, upper: FloatArray | None) -> pd.DataFrame:
        if upper is None:
            return Xdf
        out = Xdf.drop(columns=[c for c in self.surface_features if c in Xdf.columns])
        return out.assign(**{UPPER: upper})

    def _targets(self, Y: Any, n: int) -> FloatArray:
        if isinstance(Y, pd.DataFrame):
            missing = [d for d in self.depths if d not in Y.columns]
            if missing:
                msg = f"Targets lack depth columns {missing}; Y has {list(Y.columns)}."
                raise DataError(msg)
            arr = Y[list(self.depths)].to_numpy(dtype="float64")
        else:
            arr = np.asarray(Y, dtype="float64")
        self._single_ = arr.ndim == 1
        arr = arr.reshape(n, -1) if arr.ndim == 1 else arr
        if arr.shape != (n, len(self.depths)):
            msg = f"Targets have shape {arr.shape}; expected ({n}, {len(self.depths)}) for depths {list(self.depths)}."
            raise DataError(msg)
        return arr

    def _groups(self, Xdf: pd.DataFrame) -> Any:
        if self.coords is None or not set(self.coords) <= set(Xdf.columns):
            return None
        return block_id(Xdf[self.coords[1]].to_numpy(), Xdf[self.coords[0]].to_numpy(), self.block_size)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.estimator is None or get_tags(self.estimator).input_tags.allow_nan
        tags.target_tags.multi_output = True
        return tags
