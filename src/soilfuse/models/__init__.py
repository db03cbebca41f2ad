"""Models: scikit-learn-compatible estimators and feature selection.

* :class:`QuadtreePartition` — station-adaptive (rotated) quadtree partitions.
* :class:`QuadtreeEnsemble` — local XGBoost per quadtree leaf, averaged over rotations.
* :class:`LayerCascade` — per-depth models fed the cross-fitted estimate above.
* :func:`screen_vif` — predictor screening by variance inflation factor.
"""

from soilfuse.models.cascade import LayerCascade
from soilfuse.models.feature_selection import screen_vif, variance_inflation_factors
from soilfuse.models.partition import Leaf, QuadtreePartition
from soilfuse.models.quadtree import PAPER_PARAM_GRID, QuadtreeEnsemble

__all__ = [
    "PAPER_PARAM_GRID",
    "LayerCascade",
    "Leaf",
    "QuadtreeEnsemble",
    "QuadtreePartition",
    "screen_vif",
    "variance_inflation_factors",
]
