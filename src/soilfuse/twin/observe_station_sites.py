"""Where the twin's stations stand and which network each belongs to.

* :func:`place_stations`: systematic probability-proportional-to-size sampling of land
  cells along the west→east axis, so station density grows from the sparse west to the
  dense east by ``dense_ratio``; visited a block of columns at a time, so memory
  follows the block, not the domain.
* :data:`NETWORKS` and :func:`assign_networks`: the national network (``CMA``) everywhere,
  a plateau network of point sensors in the western third, a surface soil-moisture
  network in the eastern two thirds.

Usage
-----
>>> from soilfuse.twin.observe_station_sites import NETWORKS
>>> NETWORKS["CMA"].st
(0, 5, 10, 15, 20, 40)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import FloatArray
from soilfuse.exceptions import DataError
from soilfuse.twin.observe_common import hash_uniform

__all__ = ["NETWORKS", "Network", "assign_networks", "place_stations"]

_STREAM = {"place": 101, "network": 102}


@dataclass(frozen=True)
class Network:
    """A station network design: sensor layers/depths (cm), instruments, file format."""

    name: str
    prefix: str
    sm: tuple[tuple[float, float], ...]
    st: tuple[float, ...]
    sm_sensor: str
    st_sensor: str
    ismn: bool


#: Network designs by name.
NETWORKS: Mapping[str, Network] = {
    "CMA": Network(
        "CMA", "C",
        ((0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (70, 80), (90, 100)),
        (0, 5, 10, 15, 20, 40), "FDR-Profile", "PT100", ismn=False,
    ),
    "PLATEAU": Network(
        "PLATEAU", "P", ((5, 5), (10, 10), (20, 20), (40, 40)), (5, 10, 20, 40),
        "ECH2O-5TM", "ECH2O-5TM", ismn=True,
    ),
    "SOILNET": Network(
        "SOILNET", "S", ((0, 5), (0, 10), (10, 30)), (), "Hydra-Probe", "Hydra-Probe", ismn=True,
    ),
}


# ====================================================================== placement
def place_stations(static: xr.Dataset, n: int, *, seed: int, dense_ratio: float,
                   block_cols: int | None = None) -> pd.DataFrame:
    """Choose ``n`` land cells with density rising from west to east by ``dense_ratio``.

    Systematic probability-proportional-to-size sampling along the west→east axis
    (cells ordered by column, at random within a column), so the east/west density
    ratio holds even for a few dozen stations, and positions within a column are random.
    The land cells are visited ``block_cols`` columns at a time (default: about 2**19
    cells per block), twice (once for the total weight, once for the picks), so memory
    follows a block of columns, not the domain; the running sum continues from block to
    block with the same additions as one sum over all cells, so the picks do not depend
    on ``block_cols``.

    Returns
    -------
    pandas.DataFrame
        ``row``, ``col``, ``lat``, ``lon`` (jittered inside the cell, degrees).
    """
    ny, nx = static.sizes["y"], static.sizes["x"]
    width = block_cols if block_cols is not None else max(1, 2**19 // max(ny, 1))
    blocks = [slice(c, min(nx, c + width)) for c in range(0, nx, width)]

    def land_cells(cols: slice) -> tuple[np.ndarray, np.ndarray, FloatArray]:
        """Rows, columns and weights of the eligible cells of a column block, in sampling order."""
        sub = static.isel(x=cols)
        eligible = np.asarray(sub["land_cover"].values) != 5
        if "water_fraction" in static:
            eligible &= np.asarray(sub["water_fraction"].values) < 0.5
        r, c = np.nonzero(eligible)
        c = c + cols.start
        order = np.lexsort((hash_uniform(seed, _STREAM["place"], r, c, 0), c))
        return r[order], c[order], dense_ratio ** (c[order] / max(nx - 1, 1))

    def running_sum(weight: FloatArray, carry: float) -> FloatArray:
        # np.cumsum adds sequentially, so continuing from ``carry`` repeats the whole-domain sum exactly
        return np.cumsum(np.concatenate(([carry], weight)))[1:]

    total, count = 0.0, 0
    for cols in blocks:
        _, _, weight = land_cells(cols)
        if weight.size:
            total, count = float(running_sum(weight, total)[-1]), count + weight.size
    if count < n:
        msg = f"Only {count} land cells for {n} stations; enlarge the region or ask for fewer stations."
        raise DataError(msg)
    start = float(hash_uniform(seed, _STREAM["place"], -1, 0, 0))
    targets = (np.arange(n) + start) * total / n
    r = np.full(n, -1, dtype=np.int64)
    c = np.full(n, -1, dtype=np.int64)
    carry, last = -np.inf, (0, 0)
    for cols in blocks:
        rows_b, cols_b, weight = land_cells(cols)
        if not weight.size:
            continue
        cum = running_sum(weight, max(carry, 0.0))
        here = (targets > carry) & (targets <= cum[-1])
        picks = np.searchsorted(cum, targets[here])
        r[here], c[here] = rows_b[picks], cols_b[picks]
        carry, last = float(cum[-1]), (int(rows_b[-1]), int(cols_b[-1]))
    r[r < 0], c[c < 0] = last  # a target past the rounded total takes the last cell
    x = np.asarray(static["x"].values)
    y = np.asarray(static["y"].values)
    dx, dy = abs(x[1] - x[0]) if nx > 1 else 0.01, abs(y[1] - y[0]) if ny > 1 else 0.01
    jx = hash_uniform(seed, _STREAM["place"], r, c, 1) - 0.5
    jy = hash_uniform(seed, _STREAM["place"], r, c, 2) - 0.5
    return pd.DataFrame({"row": r, "col": c, "lat": y[r] + jy * dy, "lon": x[c] + jx * dx})


# ====================================================================== networks
def assign_networks(places: pd.DataFrame, nx: int, seed: int, fraction_10min: float) -> pd.DataFrame:
    """Network, variables measured and sampling of every station."""
    n = len(places)
    u = hash_uniform(seed, _STREAM["network"], np.arange(n), 0, 0)
    v = hash_uniform(seed, _STREAM["network"], np.arange(n), 1, 0)
    w = hash_uniform(seed, _STREAM["network"], np.arange(n), 2, 0)
    west = places["col"].to_numpy() < nx / 3
    # The national network is sparse but present on the plateau, beside research networks.
    network = np.where(west, np.where(u < 0.4, "CMA", "PLATEAU"), np.where(u < 0.7, "CMA", "SOILNET"))
    has_sm = ~((network == "CMA") & (v < 0.15))
    has_st = np.array([bool(NETWORKS[k].st) for k in network], dtype=bool) & ~((network == "CMA") & (v > 0.9))
    ten_min = (network == "CMA") & has_st & (w < fraction_10min)
    if fraction_10min > 0 and not ten_min.any() and ((network == "CMA") & has_st).any():
        cand = np.nonzero((network == "CMA") & has_st)[0]
        ten_min[cand[np.argmin(w[cand])]] = True
    out = places.copy()
    out["network"] = network
    out["has_sm"] = has_sm
    out["has_st"] = has_st
    out["st_sampling"] = np.where(ten_min, "10min", "1h")
    counters: dict[str, int] = {}
    ids = []
    for net in network:
        counters[net] = counters.get(net, 0) + 1
        ids.append(f"{NETWORKS[net].prefix}{counters[net]:04d}")
    out["station_id"] = ids
    return out
