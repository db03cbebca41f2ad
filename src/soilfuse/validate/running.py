"""Pooled scores of paired values fed in batches: :class:`RunningScores`.

For products too large to score in one pass (a national cube, a twin streamed block
by block): each batch updates centred sums, merged with the pairwise update of Chan,
Golub & LeVeque (1979), so the result equals one pass over all pairs up to rounding
and stays accurate when the means are large against the spread (temperatures in K).

Usage
-----
>>> import numpy as np
>>> s = RunningScores().add(np.array([0.1, 0.2]), np.array([0.12, 0.22]))
>>> {k: round(v, 4) for k, v in s.add(np.array([0.3, np.nan]), np.array([0.32, 0.5])).scores().items()}
{'n': 3.0, 'R': 1.0, 'RMSE': 0.02, 'ubRMSE': 0.0, 'bias': 0.02}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt

__all__ = ["RunningScores"]


@dataclass
class RunningScores:
    """Pooled R, RMSE, ubRMSE and bias (prediction minus observation) of batches of pairs.

    Pairs with a NaN on either side are left out.

    Attributes
    ----------
    n : int
        Pairs so far.
    mean_obs, mean_pred : float
        Means of the observations and of the predictions.
    s_obs, s_pred, s_cross : float
        Sums of squared deviations from those means, and of their products.
    """

    n: int = 0
    mean_obs: float = 0.0
    mean_pred: float = 0.0
    s_obs: float = 0.0
    s_pred: float = 0.0
    s_cross: float = 0.0

    def add(self, obs: npt.ArrayLike, pred: npt.ArrayLike) -> Self:
        """Add the pairs ``(obs, pred)`` (array-likes of one shape); return ``self``."""
        o = np.asarray(obs, dtype="float64").ravel()
        p = np.asarray(pred, dtype="float64").ravel()
        ok = np.isfinite(o) & np.isfinite(p)
        o, p = o[ok], p[ok]
        m = o.size
        if m == 0:
            return self
        dev_o, dev_p = o - o.mean(), p - p.mean()
        n = self.n + m
        shift_o, shift_p = o.mean() - self.mean_obs, p.mean() - self.mean_pred
        weight = self.n * m / n
        self.s_obs += float(dev_o @ dev_o) + shift_o**2 * weight
        self.s_pred += float(dev_p @ dev_p) + shift_p**2 * weight
        self.s_cross += float(dev_o @ dev_p) + shift_o * shift_p * weight
        self.mean_obs += shift_o * m / n
        self.mean_pred += shift_p * m / n
        self.n = n
        return self

    def scores(self, min_n: int = 2) -> dict[str, float]:
        """``n``, ``R``, ``RMSE``, ``ubRMSE`` and ``bias`` (units of the data); NaN below ``min_n`` pairs."""
        if self.n < min_n:
            return {"n": float(self.n), "R": np.nan, "RMSE": np.nan, "ubRMSE": np.nan, "bias": np.nan}
        spread = self.s_obs > 0 and self.s_pred > 0
        r = self.s_cross / np.sqrt(self.s_obs * self.s_pred) if spread else np.nan
        bias = self.mean_pred - self.mean_obs
        ub2 = max((self.s_obs + self.s_pred - 2 * self.s_cross) / self.n, 0.0)
        return {"n": float(self.n), "R": float(r), "RMSE": float(np.sqrt(ub2 + bias**2)),
                "ubRMSE": float(np.sqrt(ub2)), "bias": float(bias)}
