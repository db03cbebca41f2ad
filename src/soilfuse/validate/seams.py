"""Seam metric: are there jumps in a field along the boundaries of a partition?

Local models fitted per region can disagree at region borders and leave visible
seams. For a field ``F`` on a grid and a labelling ``L`` of its cells (e.g. the leaf of
a quadtree partition), compare the absolute differences between 4-neighbour pixel
pairs that straddle a boundary (``L`` differs) with those of pairs inside a region:

* ``across`` = mean ``|F_i − F_j|`` over boundary pairs,
* ``inside`` = mean ``|F_i − F_j|`` over interior pairs,
* ``excess`` = ``across − inside`` (units of ``F``; 0 = no seam),
* ``ratio`` = ``across / inside`` (1 = no seam).

Averaging over time (all days of a product) is done by pooling pairs of every day.

Usage
-----
>>> import numpy as np
>>> labels = np.repeat([[0, 0, 1, 1]], 4, axis=0)
>>> field = np.where(labels == 0, 0.0, 1.0) + np.arange(4)[None, :] * 0.1
>>> s = seam_metric(field, labels)
>>> round(s["across"], 3), round(s["inside"], 3), round(s["excess"], 3)
(1.1, 0.04, 1.06)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError

__all__ = ["seam_metric"]


def seam_metric(field: npt.ArrayLike, labels: npt.ArrayLike) -> dict[str, float]:
    """Boundary vs interior neighbour differences of ``field`` for region ``labels``.

    Parameters
    ----------
    field : array_like
        Values of shape ``(..., ny, nx)`` (leading dims, e.g. time, are pooled).
    labels : array_like of int
        Region label of each cell, shape ``(ny, nx)``.

    Returns
    -------
    dict
        ``across``, ``inside``, ``excess``, ``ratio`` and the pair counts
        ``n_across``, ``n_inside`` (NaN pairs are ignored).

    Raises
    ------
    DataError
        If shapes disagree or there are no boundary or no interior pairs.
    """
    f = np.asarray(field, dtype="float64")
    lab = np.asarray(labels)
    if f.shape[-2:] != lab.shape:
        msg = f"field spatial shape {f.shape[-2:]} differs from labels shape {lab.shape}."
        raise DataError(msg)
    diffs: list[FloatArray] = []
    bounds: list[npt.NDArray[np.bool_]] = []
    for axis in (-1, -2):
        d = np.abs(np.diff(f, axis=axis))
        b = np.diff(lab, axis=axis) != 0
        diffs.append(d.reshape(-1, *d.shape[-2:]))
        bounds.append(np.broadcast_to(b, d.shape).reshape(-1, *b.shape))
    d_all = np.concatenate([x.reshape(-1) for x in diffs])
    b_all = np.concatenate([x.reshape(-1) for x in bounds])
    ok = np.isfinite(d_all)
    across, inside = d_all[ok & b_all], d_all[ok & ~b_all]
    if across.size == 0 or inside.size == 0:
        msg = "The labelling has no boundary pairs or no interior pairs; a seam metric needs both."
        raise DataError(msg)
    a, i = float(across.mean()), float(inside.mean())
    return {
        "across": a,
        "inside": i,
        "excess": a - i,
        "ratio": a / i if i > 0 else float("inf"),
        "n_across": float(across.size),
        "n_inside": float(inside.size),
    }
