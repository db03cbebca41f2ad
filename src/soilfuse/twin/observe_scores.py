"""Error figures of the twin's observing systems, accumulated batch by batch.

:class:`PairScores` gives the RMSE, bias and Pearson correlation of estimate-reference
pairs fed in any number of batches; :class:`GridScores` gathers those and the gap
fractions of the reanalysis, CCI and SMAP products, block of days by block of days, so
that the streaming writer of :mod:`soilfuse.twin.write` scores the products without
keeping the whole period. Either gives the same figures as one pass over all pairs, up
to floating-point rounding (the figures are rounded to four decimals).

Usage
-----
>>> import numpy as np
>>> from soilfuse.twin.observe_scores import PairScores
>>> scores = PairScores().add(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
>>> scores.add(np.array([3.0, np.nan]), np.array([3.5, 1.0])).result()
{'rmse': 0.4082, 'bias': -0.3333, 'r': 0.9934, 'n': 3}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["GridScores", "PairScores", "rounded"]

_FLAG_BITS = (1, 2, 4, 8, 16)
_REANALYSIS_VARIABLES = ("t2m", "tp", "ssrd", "strd", "sd", "e", "pev")


def rounded(value: float, digits: int = 4) -> float:
    """``value`` as a float rounded to ``digits`` decimals (NaN stays NaN)."""
    return round(float(value), digits)


@dataclass
class PairScores:
    """RMSE, bias (estimate minus reference) and Pearson r of pairs, accumulated batch by batch.

    Pairs with a NaN on either side are left out. The centred sums of the batches are
    merged with the pairwise update of Chan, Golub & LeVeque (1979).

    Attributes
    ----------
    n : int
        Pairs so far.
    sum_d, sum_d2 : float
        Sum of the differences and of their squares (units of the data, squared).
    mean_est, mean_ref : float
        Means of the estimates and of the references.
    s_est, s_ref, s_cross : float
        Sums of squared deviations from those means, and of their products.
    """

    n: int = 0
    sum_d: float = 0.0
    sum_d2: float = 0.0
    mean_est: float = 0.0
    mean_ref: float = 0.0
    s_est: float = 0.0
    s_ref: float = 0.0
    s_cross: float = 0.0

    def add(self, est: Any, ref: Any) -> PairScores:
        """Add the pairs ``(est, ref)`` (array-likes of one shape); return ``self``."""
        a = np.asarray(est, dtype="float64").ravel()
        b = np.asarray(ref, dtype="float64").ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        m = a.size
        if m == 0:
            return self
        d = a - b
        mean_a, mean_b = np.mean(a), np.mean(b)
        dev_a, dev_b = a - mean_a, b - mean_b
        n = self.n + m
        shift_a, shift_b = mean_a - self.mean_est, mean_b - self.mean_ref
        weight = self.n * m / n
        self.s_est += float(dev_a @ dev_a) + shift_a**2 * weight
        self.s_ref += float(dev_b @ dev_b) + shift_b**2 * weight
        self.s_cross += float(dev_a @ dev_b) + shift_a * shift_b * weight
        self.mean_est += shift_a * m / n
        self.mean_ref += shift_b * m / n
        self.sum_d += float(np.sum(d))
        self.sum_d2 += float(np.sum(d**2))
        self.n = n
        return self

    def result(self) -> dict[str, float]:
        """``rmse``, ``bias``, ``r`` (rounded; NaN with fewer than 3 pairs) and ``n``."""
        if self.n < 3:
            return {"rmse": float("nan"), "bias": float("nan"), "r": float("nan"), "n": self.n}
        spread = self.s_est > 0 and self.s_ref > 0
        r = self.s_cross / np.sqrt(self.s_est * self.s_ref) if spread else float("nan")
        return {"rmse": rounded(np.sqrt(self.sum_d2 / self.n)), "bias": rounded(self.sum_d / self.n),
                "r": rounded(r), "n": self.n}


class GridScores:
    """Error figures of the reanalysis, CCI and SMAP products, accumulated block of days by block of days.

    Feed it the datasets of :func:`soilfuse.twin.observe_grids.observe_grids` for the
    whole period, or those of :func:`~soilfuse.twin.observe_grids.grid_blocks` one
    block at a time; :meth:`result` gives the same figures either way.
    """

    def __init__(self) -> None:
        self.reanalysis: dict[str, PairScores] = {}
        self.cci = PairScores()
        self.smap = PairScores()
        self.counts: Counter[str] = Counter()
        self.smap_cells: np.ndarray | None = None

    def add(self, grids: Mapping[str, xr.Dataset]) -> GridScores:
        """Add the days of ``grids`` (keys ``reanalysis``, ``cci``, ``smap`` and ``<key>_truth``)."""
        self._add_reanalysis(grids["reanalysis"], grids["reanalysis_truth"])
        self._add_cci(grids["cci"], grids["cci_truth"])
        self._add_smap(grids["smap"], grids["smap_truth"])
        return self

    def _add_reanalysis(self, rea: xr.Dataset, ref: xr.Dataset) -> None:
        pairs = [(name, rea[name].values, ref[name].values) for name in _REANALYSIS_VARIABLES if name in ref]
        for var in ("sm", "st"):
            pairs += [(f"{var}_{label}", rea[var].values[:, i], ref[var].values[:, i])
                      for i, label in enumerate(rea["layer"].values)]
        for name, est, truth in pairs:
            self.reanalysis.setdefault(name, PairScores()).add(est, truth)

    def _add_cci(self, cci: xr.Dataset, ref: xr.Dataset) -> None:
        self.cci.add(cci["sm"].values, ref["sm"].values)
        land = np.isfinite(ref["sm"].values)
        flag = cci["flag"].values
        valid = np.isfinite(cci["sm"].values)
        self.counts["cci_land"] += int(land.sum())
        self.counts["cci_valid"] += int((valid & land).sum())
        self.counts["cci_no_observation"] += int(((flag == 0) & ~valid & land).sum())
        for bit in _FLAG_BITS:
            self.counts[f"cci_flag_{bit}"] += int((((flag & bit) > 0) & land).sum())

    def _add_smap(self, smap: xr.Dataset, ref: xr.Dataset) -> None:
        self.smap.add(smap["sm"].values, ref["sm"].values)
        land = np.isfinite(ref["sm"].values)
        valid = np.isfinite(smap["sm"].values) & land
        frozen = ref["frozen_fraction"].values >= 0.2
        self.counts["smap_land"] += int(land.sum())
        self.counts["smap_valid"] += int(valid.sum())
        self.counts["smap_swath"] += int((ref["swath"].values & land).sum())
        self.counts["smap_land_frozen"] += int((land & frozen).sum())
        self.counts["smap_valid_frozen"] += int((valid & frozen).sum())
        self.counts["smap_land_unfrozen"] += int((land & ~frozen).sum())
        self.counts["smap_valid_unfrozen"] += int((valid & ~frozen).sum())
        cells = land.any(axis=0)
        self.smap_cells = cells if self.smap_cells is None else self.smap_cells | cells

    def _fraction(self, part: str, whole: str) -> float:
        """``counts[part] / counts[whole]`` rounded, NaN when ``whole`` is 0."""
        return rounded(self.counts[part] / self.counts[whole]) if self.counts[whole] else float("nan")

    def result(self) -> dict[str, Any]:
        """Figures by product.

        Returns
        -------
        dict
            ``reanalysis``: scores (RMSE, bias, r, n) per variable and ERA5 layer against
            the area-mean truth; ``cci``: scores, ``valid_fraction``,
            ``flag_fraction`` per bit and ``no_observation_fraction`` of land cells
            and days; ``smap``: scores, ``valid_fraction``, ``swath_fraction``, valid
            fractions on frozen and unfrozen days and ``n_cells`` (cells with land).
        """
        cci = {
            **self.cci.result(),
            "valid_fraction": self._fraction("cci_valid", "cci_land"),
            "flag_fraction": {str(b): self._fraction(f"cci_flag_{b}", "cci_land") for b in _FLAG_BITS},
            "no_observation_fraction": self._fraction("cci_no_observation", "cci_land"),
        }
        smap = {
            **self.smap.result(),
            "valid_fraction": self._fraction("smap_valid", "smap_land"),
            "swath_fraction": self._fraction("smap_swath", "smap_land"),
            "valid_fraction_frozen": self._fraction("smap_valid_frozen", "smap_land_frozen"),
            "valid_fraction_unfrozen": self._fraction("smap_valid_unfrozen", "smap_land_unfrozen"),
            "n_cells": int(self.smap_cells.sum()) if self.smap_cells is not None else 0,
        }
        return {"reanalysis": {k: v.result() for k, v in self.reanalysis.items()}, "cci": cci, "smap": smap}
