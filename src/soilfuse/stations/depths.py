"""Map sensor depths to soilfuse's target layers (soil moisture) and depths (soil temperature).

Rules
-----
Soil moisture: a sensor spanning ``[a, b]`` cm (a point sensor has ``a == b``) with
centre ``c = (a + b) / 2`` belongs to the target layer ``[L, U]`` when

1. its centre lies in the layer, ``L <= c < U``; a centre exactly on a layer's
   bottom ``U`` also belongs to that layer when no target layer starts at ``U``
   (a centre on a boundary goes down when there is a layer below to take it), or
2. it is an interval sensor (``b > a``) whose overlap with the layer is at least
   half of its own length.

A sensor may belong to several layers (the surface layer ``0-5cm`` overlaps
``0-10cm``). With the default layers (``docs/conventions.md``):

=====================  =========================  ================================
sensor                 layers                     why
=====================  =========================  ================================
``0-5cm``              ``0-5cm``, ``0-10cm``      centre 2.5 in both
``5cm`` (point)        ``0-5cm``, ``0-10cm``      on the bottom of ``0-5cm``, no layer starts at 5
``5.08cm`` (SCAN 2")   ``0-10cm``                 centre in ``0-10cm`` only
``10cm`` (point)       ``10-20cm``                on a boundary: goes down
``0-19cm`` (COSMOS)    ``0-10cm``                 centre 9.5; overlap 10/19 >= 50 %
``0-21cm`` (COSMOS)    ``10-20cm``                centre 10.5; overlap with ``0-10cm`` 10/21 < 50 %
``0-30cm`` (TDR)       ``10-20cm``                centre 15
``20-40cm``            ``20-30cm``, ``30-40cm``   boundary centre goes down; 50 % overlap with ``20-30cm``
``100cm`` (point)      ``90-100cm``               bottom of the profile, nothing below
=====================  =========================  ================================

Soil temperature: the sensor's centre ``c`` is matched to the nearest target depth
``t`` when ``|c - t| <= max(2.5, 0.125 t)`` cm; ties go to the deeper target. So
0-2 cm sensors are the ``0cm`` (surface) temperature, a 0-5 cm probe (centre 2.5)
counts as ``5cm``, 36-44 cm sensors as ``40cm``, and a sensor at 30 cm is unused.

Usage
-----
>>> import pandas as pd
>>> sensors = pd.DataFrame({"depth_from": [0.0, 5.0, 10.0], "depth_to": [5.0, 5.0, 10.0]})
>>> assign_layers(sensors, "sm")["layer"].tolist()
['0-5cm', '0-10cm', '0-5cm', '0-10cm', '10-20cm']
>>> assign_layers(pd.DataFrame({"depth_from": [0.0], "depth_to": [5.0]}), "st")["layer"].tolist()
['5cm']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from soilfuse.exceptions import DataError
from soilfuse.io.cf import parse_layer

__all__ = [
    "DEFAULT_SM_LAYERS",
    "DEFAULT_ST_DEPTHS",
    "assign_layers",
    "map_to_layers",
    "st_tolerance",
]

#: soilfuse soil-moisture layers: surface 0-5 cm and ten 10 cm layers to 1 m.
DEFAULT_SM_LAYERS: tuple[str, ...] = ("0-5cm", *(f"{d}-{d + 10}cm" for d in range(0, 100, 10)))

#: soilfuse soil-temperature depths.
DEFAULT_ST_DEPTHS: tuple[str, ...] = ("0cm", "5cm", "10cm", "15cm", "20cm", "40cm")

_EPS = 1e-9


def st_tolerance(target: float | np.ndarray) -> float | np.ndarray:
    """Matching tolerance (cm) of a soil-temperature target depth: ``max(2.5, 0.125 t)``."""
    return np.maximum(2.5, 0.125 * np.asarray(target, dtype="float64"))


def assign_layers(
    sensors: pd.DataFrame,
    variable: str,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Target layer (or depth) of each sensor, by the rules in the module docstring.

    Parameters
    ----------
    sensors : pandas.DataFrame
        Columns ``depth_from``, ``depth_to`` (cm); other columns are carried along.
    variable : {"sm", "st"}
    targets : sequence of str, optional
        Layer labels (``"0-5cm"``) for ``sm`` or depth labels (``"5cm"``) for ``st``;
        :data:`DEFAULT_SM_LAYERS` / :data:`DEFAULT_ST_DEPTHS` by default.

    Returns
    -------
    pandas.DataFrame
        One row per (sensor, target) match with the input columns plus ``layer``,
        ``layer_top`` and ``layer_bottom`` (cm). Sensors with no target are absent.

    Raises
    ------
    DataError
        If ``variable`` is unknown, a target label is malformed, or a soil
        temperature target is a layer rather than a depth.
    """
    if variable not in ("sm", "st"):
        msg = f"variable must be 'sm' or 'st'; got {variable!r}."
        raise DataError(msg)
    labels = list(targets if targets is not None else (DEFAULT_SM_LAYERS if variable == "sm" else DEFAULT_ST_DEPTHS))
    bounds = np.array([parse_layer(lab) for lab in labels], dtype="float64").reshape(-1, 2)
    a = sensors["depth_from"].to_numpy(dtype="float64")[:, None]
    b = sensors["depth_to"].to_numpy(dtype="float64")[:, None]
    top, bottom = bounds[None, :, 0], bounds[None, :, 1]
    centre = (a + b) / 2.0
    if variable == "sm":
        member = _sm_membership(a, b, centre, top, bottom)
    else:
        if np.any(bounds[:, 1] - bounds[:, 0] > _EPS):
            msg = f"Soil-temperature targets must be point depths such as '5cm'; got {labels}."
            raise DataError(msg)
        member = _st_membership(centre, top)
    i_sensor, i_target = np.nonzero(member)
    out = sensors.iloc[i_sensor].reset_index(drop=True).copy()
    out["layer"] = pd.array([labels[j] for j in i_target], dtype="string")
    out["layer_top"] = bounds[i_target, 0]
    out["layer_bottom"] = bounds[i_target, 1]
    return out


def _sm_membership(a: np.ndarray, b: np.ndarray, c: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    inside = (c >= top - _EPS) & (c < bottom - _EPS)
    starts = top[0]
    nothing_below = ~np.any(np.abs(bottom[0][:, None] - starts[None, :]) < _EPS, axis=1)[None, :]
    on_bottom = (np.abs(c - bottom) < _EPS) & nothing_below & (bottom > top)
    length = b - a
    overlap = np.clip(np.minimum(b, bottom) - np.maximum(a, top), 0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        mostly = (length > _EPS) & (overlap >= 0.5 * length - _EPS)
    return inside | on_bottom | mostly


def _st_membership(c: np.ndarray, depth: np.ndarray) -> np.ndarray:
    distance = np.abs(c - depth)
    within = distance <= st_tolerance(depth) + _EPS
    distance = np.where(within, distance, np.inf)
    # nearest target; ties go deeper (argmin over reversed targets picks the last minimum)
    n = depth.shape[1]
    best = n - 1 - np.argmin(distance[:, ::-1], axis=1)
    member = np.zeros_like(within)
    has = np.isfinite(distance.min(axis=1)) if n else np.zeros(c.shape[0], dtype=bool)
    member[np.nonzero(has)[0], best[has]] = True
    return member


def map_to_layers(
    daily: pd.DataFrame,
    *,
    sm_layers: Sequence[str] | None = None,
    st_depths: Sequence[str] | None = None,
    combine: bool = True,
) -> pd.DataFrame:
    """Assign every observation to its target layers and average sensors sharing one.

    Parameters
    ----------
    daily : pandas.DataFrame
        Observation table (usually daily means from :func:`~soilfuse.stations.daily_means`).
    sm_layers, st_depths : sequence of str, optional
        Target soil-moisture layers and soil-temperature depths (defaults
        :data:`DEFAULT_SM_LAYERS`, :data:`DEFAULT_ST_DEPTHS`).
    combine : bool
        Average the sensors of one station that map to the same layer on the same
        time (e.g. 10 cm and 15 cm probes -> ``10-20cm``). When false, one row per
        sensor and layer is kept.

    Returns
    -------
    pandas.DataFrame
        Columns ``station_id``, ``time``, ``variable``, ``layer``, ``depth_from``,
        ``depth_to`` (now the *layer's* bounds, cm), ``value``, ``n_sensors`` and
        the input's ``flag`` (``"G"`` after combining). Observations matching no
        target are dropped.
    """
    parts = []
    for variable, targets in (("sm", sm_layers), ("st", st_depths)):
        sub = daily[(daily["variable"].astype(str) == variable).to_numpy()]
        if sub.empty:
            continue
        sensors = sub[["depth_from", "depth_to"]].drop_duplicates()
        table = assign_layers(sensors, variable, targets)
        merged = sub.merge(table, on=["depth_from", "depth_to"], how="inner")
        parts.append(merged)
    if not parts:
        msg = "No 'sm' or 'st' observations to map to layers."
        raise DataError(msg)
    merged = pd.concat(parts, ignore_index=True)
    if combine:
        keys = ["station_id", "variable", "layer", "layer_top", "layer_bottom", "time"]
        out = (
            merged.groupby(keys, sort=True, observed=True)["value"]
            .agg(value="mean", n_sensors="count")
            .reset_index()
        )
        out["flag"] = pd.array(["G"] * len(out), dtype="string")
    else:
        out = merged.copy()
        out["n_sensors"] = 1
    out = out.drop(columns=[c for c in ("depth_from", "depth_to") if c in out.columns])
    out = out.rename(columns={"layer_top": "depth_from", "layer_bottom": "depth_to"})
    out["n_sensors"] = out["n_sensors"].astype("int64")
    columns = ["station_id", "time", "depth_from", "depth_to", "variable", "layer", "value", "flag", "n_sensors"]
    extra = [c for c in out.columns if c not in columns]
    order = ["station_id", "variable", "depth_from", "depth_to", "time"]
    return out[columns + extra].sort_values(order).reset_index(drop=True)
