"""Predictor screening by variance inflation factor (VIF).

``VIF_i = 1 / (1 − R_i²)`` where ``R_i²`` comes from regressing predictor *i* on all
others (computed with :func:`statsmodels.stats.outliers_influence.variance_inflation_factor`,
with an intercept column added). :func:`screen_vif` removes, one at a time, the
predictor with the largest VIF above ``threshold`` until none is left above it, except
for predictors named in ``keep`` (which stay whatever their VIF) and after dropping
those named in ``drop`` up front.

Wang et al. (2025) use threshold 10 with three documented exceptions: silt is dropped
up front (sand + silt + clay = 100 % is perfectly collinear), LST mean and air
temperature are both kept although collinear, and downward longwave radiation goes
when collinear with net solar radiation — which the iterative rule does by itself.

Usage
-----
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=500)
>>> X = pd.DataFrame({"a": a, "b": a + 0.01 * rng.normal(size=500), "c": rng.normal(size=500)})
>>> selected, table = screen_vif(X, threshold=10, keep=("a",))
>>> selected
['a', 'c']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.outliers_influence import variance_inflation_factor

from soilfuse.exceptions import DataError

__all__ = ["screen_vif", "variance_inflation_factors"]


def variance_inflation_factors(X: pd.DataFrame) -> pd.Series:
    """VIF of every column of ``X`` (rows with NaN dropped; constant columns give inf).

    Raises
    ------
    DataError
        If fewer rows than columns + 2 remain.
    """
    data = X.dropna()
    if len(data) < X.shape[1] + 2:
        msg = f"VIF needs more complete rows ({len(data)}) than predictors + 2 ({X.shape[1] + 2})."
        raise DataError(msg)
    exog = np.column_stack([np.ones(len(data)), data.to_numpy(dtype="float64")])
    with np.errstate(divide="ignore", invalid="ignore"):
        vifs = [variance_inflation_factor(exog, i + 1) for i in range(X.shape[1])]
    return pd.Series(vifs, index=X.columns, name="vif")


def screen_vif(
    X: pd.DataFrame,
    *,
    threshold: float = 10.0,
    keep: Sequence[str] = (),
    drop: Sequence[str] = (),
) -> tuple[list[str], pd.DataFrame]:
    """Select predictors by iterative VIF removal.

    Parameters
    ----------
    X : pandas.DataFrame
        Candidate predictors (columns).
    threshold : float
        Largest VIF allowed for predictors not in ``keep``.
    keep : sequence of str
        Predictors kept whatever their VIF.
    drop : sequence of str
        Predictors removed before screening (e.g. compositional ``silt``).

    Returns
    -------
    selected : list of str
        Kept predictors in their original order.
    table : pandas.DataFrame
        One row per candidate: ``vif_initial``, ``vif_final`` (NaN if removed),
        ``decision`` (kept/removed) and ``reason``.
    """
    initial = variance_inflation_factors(X.drop(columns=[c for c in drop if c in X.columns]))
    reasons: dict[str, str] = {c: "dropped up front (configured)" for c in drop if c in X.columns}
    current = list(initial.index)
    while True:
        vif = variance_inflation_factors(X[current])
        candidates = vif.drop(index=[c for c in keep if c in vif.index])
        if candidates.empty or not (candidates.max() > threshold):
            break
        worst = str(candidates.idxmax())
        reasons[worst] = f"VIF {candidates.max():.1f} > {threshold:g}"
        current.remove(worst)
    final = variance_inflation_factors(X[current])
    rows = []
    for col in X.columns:
        kept = col in current
        reason = "kept (configured exception)" if kept and col in keep and final[col] > threshold else (
            "kept" if kept else reasons.get(col, "")
        )
        rows.append(
            {
                "feature": col,
                "vif_initial": float(initial.get(col, np.nan)),
                "vif_final": float(final[col]) if kept else np.nan,
                "decision": "kept" if kept else "removed",
                "reason": reason,
            }
        )
    return [c for c in X.columns if c in current], pd.DataFrame(rows)
