"""Error figures of the twin's observing systems, accumulated batch by batch.

:class:`PairScores` gives the RMSE, bias and Pearson correlation of reference-estimate
pairs fed in any number of batches; :class:`GridScores` gathers those and the gap
fractions of the reanalysis, CCI and SMAP products, block of days by block of days, so
that the streaming writer of :mod:`soilfuse.twin.write` scores the products without
keeping the whole period. Either gives the same figures as one pass over all pairs, up
to floating-point rounding (the figures are rounded to four decimals).

Usage
-----
>>> import numpy as np
>>> from soilfuse.twin.observe_scores import PairScores
>>> scores = PairScores().add(np.array([1.0, 2.5]), np.array([1.0, 2.0]))
>>> scores.add(np.array([3.5, 1.0]), np.array([3.0, np.nan])).result()
{'rmse': 0.4082, 'bias': -0.3333, 'r': 0.9934, 'n': 3}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from soilfuse.validate.running import RunningScores

__all__ = ["GridScores", "PairScores", "rounded"]

_FLAG_BITS = (1, 2, 4, 8, 16)
_REANALYSIS_VARIABLES = ("t2m", "tp", "ssrd", "strd", "sd", "e", "pev")


def rounded(value: float, digits: int = 4) -> float:
    """``value`` as a float rounded to ``digits`` decimals (NaN stays NaN)."""
    return round(float(value), digits)


class PairScores(RunningScores):
    """:class:`~soilfuse.validate.RunningScores` reported as the twin's rounded figures.

    ``add(reference, estimate)``; the bias is the estimate minus the reference.
    """

    def result(self) -> dict[str, float]:
        """``rmse``, ``bias``, ``r`` (rounded; NaN with fewer than 3 pairs) and ``n``."""
        s = self.scores(min_n=3)
        return {"rmse": rounded(s["RMSE"]), "bias": rounded(s["bias"]), "r": rounded(s["R"]), "n": self.n}


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
            self.reanalysis.setdefault(name, PairScores()).add(truth, est)

    def _add_cci(self, cci: xr.Dataset, ref: xr.Dataset) -> None:
        self.cci.add(ref["sm"].values, cci["sm"].values)
        land = np.isfinite(ref["sm"].values)
        flag = cci["flag"].values
        valid = np.isfinite(cci["sm"].values)
        self.counts["cci_land"] += int(land.sum())
        self.counts["cci_valid"] += int((valid & land).sum())
        self.counts["cci_no_observation"] += int(((flag == 0) & ~valid & land).sum())
        for bit in _FLAG_BITS:
            self.counts[f"cci_flag_{bit}"] += int((((flag & bit) > 0) & land).sum())

    def _add_smap(self, smap: xr.Dataset, ref: xr.Dataset) -> None:
        self.smap.add(ref["sm"].values, smap["sm"].values)
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
