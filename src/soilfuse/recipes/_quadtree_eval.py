"""Fitting, baselines and scoring of the quadtree-st recipe.

Variants fitted on the same training blocks and scored on the same held-out blocks:

``ensemble``          the method: rotated-quadtree XGBoost, layer cascade fed the
                      cross-fitted estimate of the layer above (Wang et al. 2025)
``observed_upper``    the same, but deeper layers trained on the *observed* upper layer
``single_rotation``   one quadtree orientation (0°) instead of six
``global``            one XGBoost for the whole domain (same features, same tuning)
``no_cascade``        every depth from air temperature and LST directly, no chaining
``absolute``          the method learning temperatures (the paper's targets)
``offset``            the method learning departures from air temperature / the layer above
``reanalysis``        the reanalysis soil temperature, bilinear in space and linear in depth
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.model_selection import GroupShuffleSplit

from soilfuse._typing import FloatArray
from soilfuse.models import LayerCascade, QuadtreeEnsemble
from soilfuse.validate import metrics_table

__all__ = ["VARIANTS", "IndependentDepths", "fit_variants", "holdout_split", "score_table"]

logger = logging.getLogger(__name__)

VARIANTS = ("ensemble", "observed_upper", "single_rotation", "global", "no_cascade", "absolute", "offset")
SURFACE = ("t2m", "lst_mean")


class IndependentDepths:
    """One model per depth from the full predictor set (the no-cascade baseline)."""

    def __init__(self, estimator: QuadtreeEnsemble, depths: Sequence[str]) -> None:
        self.estimator = estimator
        self.depths = list(depths)

    def fit(self, X: pd.DataFrame, Y: pd.DataFrame) -> IndependentDepths:
        """Fit a clone of the estimator per depth on the rows where it is observed."""
        from sklearn.base import clone

        self.models_ = []
        for d in self.depths:
            ok = Y[d].notna().to_numpy()
            self.models_.append(clone(self.estimator).fit(X[ok], Y[d].to_numpy()[ok]))
        return self

    def predict(self, X: pd.DataFrame) -> FloatArray:
        """Predictions, shape ``(n_samples, n_depths)``."""
        return np.column_stack([m.predict(X) for m in self.models_])


def holdout_split(table: pd.DataFrame, *, test_size: float, random_state: int) -> tuple[FloatArray, FloatArray]:
    """Row indices of training and held-out blocks (whole 1° blocks on one side)."""
    blocks = table["block"].to_numpy()
    n_blocks = len(np.unique(blocks))
    n_test = max(1, round(test_size * n_blocks))
    split = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=random_state)
    train, test = next(split.split(table, groups=blocks))
    return train, test


def fit_variants(
    X: pd.DataFrame,
    Y: pd.DataFrame,
    *,
    depths: Sequence[str],
    ensemble_params: Mapping[str, Any],
    cascade_cv: int,
    target: str = "absolute",
    offset_feature: str = "t2m",
    offset_features: Sequence[str] | None = None,
    variants: Sequence[str] = VARIANTS,
    random_state: int = 0,
) -> dict[str, Any]:
    """Fit the method and its baselines on the same rows.

    Parameters
    ----------
    X : pandas.DataFrame
        ``lon``, ``lat`` and the selected predictors.
    Y : pandas.DataFrame
        One column per depth (K), NaN where not observed.
    offset_feature : str
        Predictor the top depth learns a departure from when ``target="offset"``.
    offset_features : sequence of str, optional
        One predictor per depth that depth learns a departure from (overrides the above).
    ensemble_params : mapping
        Keyword arguments of :class:`~soilfuse.models.QuadtreeEnsemble`.
    """
    def ensemble(**extra: Any) -> QuadtreeEnsemble:
        return QuadtreeEnsemble(**{**ensemble_params, **extra}, random_state=random_state)

    def cascade(estimator: QuadtreeEnsemble, upper: str = "crossfit", kind: str = target) -> LayerCascade:
        return LayerCascade(estimator, depths=depths, surface_features=SURFACE, upper=upper,  # type: ignore[arg-type]
                            cv=cascade_cv, target=kind, offset_feature=offset_feature,  # type: ignore[arg-type]
                            offset_features=offset_features,
                            random_state=random_state)

    builders: dict[str, Callable[[], Any]] = {
        "ensemble": lambda: cascade(ensemble()),
        "observed_upper": lambda: cascade(ensemble(), upper="observed"),
        "single_rotation": lambda: cascade(ensemble(angles=(0.0,))),
        # a threshold no split can meet leaves the root as the only leaf: one global model
        "global": lambda: cascade(ensemble(angles=(0.0,), threshold=10**9)),
        "no_cascade": lambda: IndependentDepths(ensemble(), depths),
        "absolute": lambda: cascade(ensemble(), kind="absolute"),
        "offset": lambda: cascade(ensemble(), kind="offset"),
    }
    fitted: dict[str, Any] = {}
    for name in variants:
        if name == target:  # the same model as "ensemble"
            continue
        logger.info("fitting variant %s", name)
        fitted[name] = builders[name]().fit(X, Y)
    return fitted


def score_table(obs: pd.DataFrame, preds: Mapping[str, pd.DataFrame], depths: Sequence[str]) -> pd.DataFrame:
    """Metrics (R², RMSE, ubRMSE, MAE, bias, R, n) per variant and depth on the same rows."""
    rows = []
    for name, pred in preds.items():
        for d in depths:
            o = obs[d].to_numpy(dtype="float64")
            p = pred[d].to_numpy(dtype="float64")
            ok = np.isfinite(o) & np.isfinite(p)
            if ok.sum() < 3:
                continue
            m = metrics_table(o[ok], p[ok]).iloc[0]
            rows.append({
                "variant": name, "depth": d, "n": int(ok.sum()),
                "R2": float(m["R"] ** 2), "RMSE": float(m["RMSD"]), "ubRMSE": float(m["urmsd"]),
                "MAE": float(np.mean(np.abs(p[ok] - o[ok]))), "bias": float(m["BIAS"]), "R": float(m["R"]),
            })
    return pd.DataFrame(rows)


def grid_scores(truth: xr.DataArray, preds: Mapping[str, xr.DataArray], depths: Sequence[str]) -> pd.DataFrame:
    """RMSE, bias and R² against truth at every pixel and day, per variant and depth."""
    rows = []
    for name, pred in preds.items():
        for k, d in enumerate(depths):
            t = np.asarray(truth.isel(depth=k).values, dtype="float64").ravel()
            p = np.asarray(pred.isel(depth=k).values, dtype="float64").ravel()
            ok = np.isfinite(t) & np.isfinite(p)
            err = p[ok] - t[ok]
            ss = float(np.sum((t[ok] - t[ok].mean()) ** 2))
            rows.append({
                "variant": name, "depth": d, "n": int(ok.sum()),
                "RMSE": float(np.sqrt(np.mean(err**2))), "bias": float(err.mean()),
                "R2": 1.0 - float(np.sum(err**2)) / ss if ss > 0 else np.nan,
            })
    return pd.DataFrame(rows)
