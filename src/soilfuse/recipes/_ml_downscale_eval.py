"""Evaluation of the ``ml-downscale`` recipe: every variant, baselines, stations, coverage.

A *variant* is one trained :class:`~soilfuse.models.window.WindowedDownscaler`
(aggregation × LST source); each is scored as seven products — the five single models
(every window's tuned MLR, SVR, ANN, RF or XGB), the combination under the paper's
selection rule (smallest mean of train and test RMSE) and under the test-RMSE rule —
each without and with the two residual corrections. All of them are computed on the
evaluation days (a seeded random share ``1/stride`` of the days) in batches of whole images, so memory is
bounded by one batch, and scored

* against the fine reference (twin truth, or e.g. SMAP 9 km) at every pixel-day:
  pooled R, RMSE, ubRMSE and bias (pred − ref), and the same on the pixel-days where the
  baseline — the coarse field interpolated bilinearly to the fine grid — also has a
  value, next to the baseline's own scores there;
* against stations (daily surface soil moisture): pooled scores, the median of
  per-station ubRMSE and R, and the downscaling gain G_down (Merlin et al., 2015)
  against the coarse value of the station's cell, per station;
* coverage: the share of land pixel-days with a value.

Pooled scores are accumulated batch by batch (:class:`soilfuse.validate.RunningScores`)
while the batches stream by (pairs where both values are finite).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from soilfuse._typing import FloatArray
from soilfuse.grid import Grid
from soilfuse.models.window import WindowedDownscaler, window_start
from soilfuse.recipes._ml_downscale_data import DownscaleInputs
from soilfuse.recipes._ml_downscale_predict import residual_correction_kernel
from soilfuse.regrid import Regridder
from soilfuse.validate import RunningScores, g_down_table, pooled_and_median

__all__ = [
    "CORRECTIONS",
    "Evaluation",
    "TrainedVariant",
    "combination_choice",
    "evaluate_variants",
    "evaluation_days",
    "station_cells",
]

logger = logging.getLogger(__name__)

#: Residual corrections scored for every product.
CORRECTIONS: tuple[str, ...] = ("none", "smooth", "exact")
_COMBINATIONS = {"Combination (paper)": "paper", "Combination (test)": "test"}
_ENSEMBLE = "Ensemble (mean)"
_BASELINE = "bilinear coarse"


@dataclass(frozen=True)
class TrainedVariant:
    """One fitted downscaler and how its training samples were made.

    Attributes
    ----------
    aggregation : {"nearest", "mean"}
        Fine → coarse resampling of the predictors.
    lst : {"clear-sky", "gap-filled", "none"}
        LST source (``"none"`` when LST is not a predictor).
    model : WindowedDownscaler
    features : tuple of str
    table : pandas.DataFrame
        The training samples.
    """

    aggregation: str
    lst: str
    model: WindowedDownscaler
    features: tuple[str, ...]
    table: pd.DataFrame = field(repr=False)

    @property
    def name(self) -> str:
        """Short label, e.g. ``"nearest, clear-sky LST"`` (or ``"nearest"`` without LST)."""
        return self.aggregation if self.lst == "none" else f"{self.aggregation}, {self.lst} LST"

    @property
    def cube_lst(self) -> str:
        """Cube variable that plays ``lst_day``."""
        return "lst_day_gapfilled" if self.lst == "gap-filled" else "lst_day"


# ---------------------------------------------------------------------- helpers
def evaluation_days(days: pd.DatetimeIndex, stride: int, *, random_state: int = 0) -> pd.DatetimeIndex:
    """A seeded random ``1/stride`` share of ``days``, in order (all of them for 1).

    Random rather than every ``stride``-th day: satellite orbits repeat (SMAP every 8
    days), and a regular stride can fall on the same swath gap every time.

    Examples
    --------
    >>> days = pd.date_range("2020-01-01", periods=10)
    >>> len(evaluation_days(days, 3)), len(evaluation_days(days, 1))
    (4, 10)
    """
    if stride <= 1:
        return days
    rng = np.random.default_rng(random_state)
    pick = np.sort(rng.choice(days.size, size=-(-days.size // stride), replace=False))
    return days[pick]


def combination_choice(model: WindowedDownscaler, dates: Any, rule: Literal["paper", "test"]) -> np.ndarray:
    """Name of the model each date's window selects under ``rule`` (index into ``model.models_``).

    The window of a date is the one holding it, or the window whose model it reuses
    (``source`` in ``model.windows_``); dates beyond the table take its first or last row.
    """
    table = model.windows_
    train = table[[f"{m}_train_rmse" for m in model.models_]].to_numpy(dtype="float64")
    test = table[[f"{m}_test_rmse" for m in model.models_]].to_numpy(dtype="float64")
    crit = 0.5 * (train + test) if rule == "paper" else test
    # the criterion of each window's source window (itself, or the one whose model it reuses)
    source = pd.Index(table["window"].astype(str)).get_indexer(table["source"].astype(str))
    crit = crit[source]
    best = np.array([int(np.nanargmin(row)) if np.isfinite(row).any() else 0 for row in crit], dtype="int64")
    starts = table["start"].to_numpy().astype("datetime64[D]")
    pos = np.clip(np.searchsorted(starts, window_start(dates), side="right") - 1, 0, len(table) - 1)
    return best[pos]


def station_cells(stations: pd.DataFrame, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each station's cell on ``grid`` (``-1`` outside)."""
    return grid.index(stations["lon"].to_numpy(), stations["lat"].to_numpy(), crs="EPSG:4326")


def _batches(days: pd.DatetimeIndex, size: int) -> Iterator[pd.DatetimeIndex]:
    for i in range(0, len(days), size):
        yield days[i : i + size]


# ---------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """Scores of every product variant and baseline.

    Attributes
    ----------
    reference : pandas.DataFrame
        One row per (training, model, correction) and the baselines: coverage and
        pooled scores against the fine reference, and the common-set comparison.
    stations : pandas.DataFrame
        Same rows: station scores and G_down.
    days : pandas.DatetimeIndex
        Evaluation days.
    """

    reference: pd.DataFrame
    stations: pd.DataFrame
    days: pd.DatetimeIndex

    def table(self) -> pd.DataFrame:
        """Reference and station scores side by side."""
        keys = ["training", "model", "correction"]
        return self.reference.merge(self.stations, on=keys, how="left", suffixes=("", "_stations"))


@dataclass
class _Row:
    training: str
    model: str
    correction: str
    own: RunningScores = field(default_factory=RunningScores)
    common: RunningScores = field(default_factory=RunningScores)
    baseline: RunningScores = field(default_factory=RunningScores)
    valid: float = 0.0
    land: float = 0.0
    at_stations: list[FloatArray] = field(default_factory=list)


def _fields(
    variant: TrainedVariant, cube: xr.Dataset, days: pd.DatetimeIndex, bounds: tuple[float, float]
) -> dict[str, FloatArray]:
    """Every model's and both combinations' fine fields ``(day, y, x)`` for the batch."""
    cols = {name: (variant.cube_lst if name == "lst_day" else name) for name in variant.features}
    shape = (len(days), cube.sizes["y"], cube.sizes["x"])
    arrays = {name: np.broadcast_to(np.asarray(cube[col].values, dtype="float64"), shape)
              for name, col in cols.items()}
    stack = np.stack([arrays[n] for n in variant.features], axis=-1)
    ok = np.isfinite(stack).all(axis=-1)
    idx = np.nonzero(ok)
    out: dict[str, FloatArray] = {}
    if idx[0].size == 0:
        empty = np.full(shape, np.nan)
        return {m: empty for m in (*variant.model.models_, *_COMBINATIONS, _ENSEMBLE)}
    X = pd.DataFrame(stack[ok], columns=list(variant.features))
    dates = days.to_numpy()[idx[0]]
    every = variant.model.predict_all(X, dates=dates).to_numpy()
    lo, hi = bounds
    for k, name in enumerate(variant.model.models_):
        f = np.full(shape, np.nan)
        f[idx] = np.clip(every[:, k], lo, hi)
        out[name] = f
    for label, rule in _COMBINATIONS.items():
        pick = combination_choice(variant.model, dates, rule)  # type: ignore[arg-type]
        f = np.full(shape, np.nan)
        f[idx] = np.clip(every[np.arange(pick.size), pick], lo, hi)
        out[label] = f
    f = np.full(shape, np.nan)
    f[idx] = np.clip(every.mean(axis=1), lo, hi)
    out[_ENSEMBLE] = f
    return out


def evaluate_variants(
    inputs: DownscaleInputs,
    variants: Sequence[TrainedVariant],
    *,
    stride: int = 1,
    bounds: tuple[float, float] = (0.0, 0.6),
    batch_days: int = 16,
    progress: bool = True,
    random_state: int = 0,
) -> Evaluation:
    """Score every variant, model, combination and correction on the evaluation days.

    Parameters
    ----------
    inputs : DownscaleInputs
    variants : sequence of TrainedVariant
    stride : int
        A random ``1/stride`` share of the days is scored (see :func:`evaluation_days`).
    bounds : (float, float)
        Physical range of soil moisture (m³ m⁻³).
    batch_days : int
        Days held in memory at once.
    progress : bool
        Show a progress bar over batches.
    random_state : int
        Seed of the evaluation-day draw.

    Returns
    -------
    Evaluation
    """
    days = evaluation_days(inputs.days, stride, random_state=random_state)
    fine, coarse_grid = inputs.fine_grid, inputs.coarse_grid
    to_coarse = Regridder(fine, coarse_grid, "mean")
    bilinear = Regridder(coarse_grid, fine, "bilinear")
    kernel_kw = {"weights": to_coarse.weights, "interpolation": bilinear.weights, "bounds": bounds}
    land = np.asarray(inputs.land.values, dtype=bool)
    rows: dict[tuple[str, str, str], _Row] = {}
    base_row = _Row("baseline", _BASELINE, "none")
    st_table, st_obs, st_rc, st_coarse_rc = _station_setup(inputs)
    obs_days: list[FloatArray] = []
    coarse_at: list[FloatArray] = []
    for batch in tqdm(list(_batches(days, batch_days)), desc="evaluating", unit="batch", disable=not progress):
        cube = inputs.predictors.sel(time=batch).load()
        coarse = inputs.coarse.sel(time=batch).to_numpy().astype("float64")
        base = np.asarray(bilinear.regrid_array(coarse))
        ref = (np.asarray(inputs.reference.sel(time=batch).values, dtype="float64")
               if inputs.reference is not None else None)
        base_row.valid += float(np.isfinite(base)[:, land].sum())
        base_row.land += float(land.sum() * len(batch))
        if ref is not None:
            base_row.own.add(ref, base)
        if st_obs is not None:
            obs_days.append(st_obs.reindex(batch).to_numpy(dtype="float64"))
            coarse_at.append(_at(coarse, st_coarse_rc))
            base_row.at_stations.append(_at(base, st_rc))
        for variant in variants:
            for model_name, f in _fields(variant, cube, batch, bounds).items():
                for correction in CORRECTIONS:
                    g = f if correction == "none" else residual_correction_kernel(
                        f, coarse, exact=correction == "exact", **kernel_kw)[0]
                    key = (variant.name, model_name, correction)
                    row = rows.setdefault(key, _Row(*key))
                    row.valid += float(np.isfinite(g)[:, land].sum())
                    row.land += float(land.sum() * len(batch))
                    if ref is not None:
                        row.own.add(ref, g)
                        both = np.isfinite(g) & np.isfinite(base)
                        row.common.add(np.where(both, ref, np.nan), g)
                        row.baseline.add(np.where(both, ref, np.nan), base)
                    if st_obs is not None:
                        row.at_stations.append(_at(g, st_rc))
    all_rows = [*rows.values(), base_row]
    reference = pd.DataFrame([_reference_scores(r) for r in all_rows])
    stations = pd.DataFrame([
        _station_scores(r, obs_days, coarse_at, st_table) for r in all_rows
    ]) if st_obs is not None else pd.DataFrame({k: [getattr(r, k) for r in all_rows]
                                                for k in ("training", "model", "correction")})
    return Evaluation(reference=reference, stations=stations, days=days)


def _at(field3: FloatArray, rc: tuple[np.ndarray, np.ndarray]) -> FloatArray:
    rows, cols = rc
    out = np.full((field3.shape[0], rows.size), np.nan)
    ok = rows >= 0
    out[:, ok] = field3[:, rows[ok], cols[ok]]
    return out


def _station_setup(
    inputs: DownscaleInputs,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, Any, Any]:
    if inputs.stations is None:
        return None, None, None, None
    table = inputs.stations.stations.copy()
    table["station_id"] = table["station_id"].astype(str)
    obs = inputs.stations.observations
    wide = obs.pivot_table(index="time", columns="station_id", values="value", aggfunc="mean")
    wide = wide.reindex(columns=table["station_id"].to_numpy())
    wide.index = pd.DatetimeIndex(wide.index)
    return table, wide, station_cells(table, inputs.fine_grid), station_cells(table, inputs.coarse_grid)


def _reference_scores(row: _Row) -> dict[str, Any]:
    own, common, base = row.own.scores(), row.common.scores(), row.baseline.scores()
    return {
        "training": row.training, "model": row.model, "correction": row.correction,
        "coverage": row.valid / row.land if row.land else np.nan,
        **{k: own[k] for k in ("n", "R", "RMSE", "ubRMSE", "bias")},
        "n_common": common["n"], "R_common": common["R"], "ubRMSE_common": common["ubRMSE"],
        "RMSE_common": common["RMSE"], "baseline_R_common": base["R"], "baseline_ubRMSE_common": base["ubRMSE"],
        "baseline_RMSE_common": base["RMSE"],
    }


def _station_scores(row: _Row, obs_days: list[FloatArray], coarse_at: list[FloatArray],
                    table: pd.DataFrame | None) -> dict[str, Any]:
    keys = {"training": row.training, "model": row.model, "correction": row.correction}
    if not row.at_stations or table is None:
        return keys
    obs = np.concatenate(obs_days)
    pred = np.concatenate(row.at_stations)
    coarse = np.concatenate(coarse_at)
    ids = np.broadcast_to(table["station_id"].to_numpy()[None, :], obs.shape)
    ok = np.isfinite(obs) & np.isfinite(pred)
    if ok.sum() < 3:
        return {**keys, "n_pairs": float(ok.sum())}
    summary = pooled_and_median(obs[ok], pred[ok], ids[ok])
    gd = g_down_table(obs.ravel(), pred.ravel(), coarse.ravel(), ids.ravel())
    scored = gd["G_down"].dropna()
    pooled, median = summary.loc["pooled"], summary.loc["station_median"]
    return {
        **keys, "n_pairs": float(ok.sum()), "st_R": pooled["R"], "st_RMSE": pooled["RMSD"],
        "st_ubRMSE": pooled["urmsd"], "st_bias": pooled["BIAS"], "st_median_R": median["R"],
        "st_median_ubRMSE": median["urmsd"], "n_stations": median["n_obs"],
        "G_down_median": float(scored.median()) if len(scored) else np.nan,
        "G_down_positive": float((scored > 0).mean()) if len(scored) else np.nan,
        "n_G_down": float(len(scored)),
    }
