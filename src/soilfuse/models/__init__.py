"""Models: scikit-learn-compatible estimators and feature selection.

* :class:`QuadtreePartition` — station-adaptive (rotated) quadtree partitions.
* :class:`QuadtreeEnsemble` — local XGBoost per quadtree leaf, averaged over rotations.
* :class:`LayerCascade` — per-depth models fed the cross-fitted estimate above.
* :func:`screen_vif` — predictor screening by variance inflation factor.
* :class:`WindowModelSelector` — five tuned models per 16-day window, one selected.
* :class:`WindowedDownscaler` — a selector per window with reuse of earlier windows.
"""

from soilfuse.models._model_zoo import GRID_PROFILES, MODEL_NAMES, MODEL_ZOO, make_model, param_grid
from soilfuse.models.cascade import LayerCascade
from soilfuse.models.feature_selection import screen_vif, variance_inflation_factors
from soilfuse.models.partition import Leaf, QuadtreePartition
from soilfuse.models.quadtree import PAPER_PARAM_GRID, QuadtreeEnsemble
from soilfuse.models.window import (
    WindowedDownscaler,
    WindowModelSelector,
    ks_stratified_split,
    window_label,
    window_sequence,
    window_start,
)

__all__ = [
    "GRID_PROFILES",
    "MODEL_NAMES",
    "MODEL_ZOO",
    "PAPER_PARAM_GRID",
    "LayerCascade",
    "Leaf",
    "QuadtreeEnsemble",
    "QuadtreePartition",
    "WindowModelSelector",
    "WindowedDownscaler",
    "ks_stratified_split",
    "make_model",
    "param_grid",
    "screen_vif",
    "variance_inflation_factors",
    "window_label",
    "window_sequence",
    "window_start",
]
