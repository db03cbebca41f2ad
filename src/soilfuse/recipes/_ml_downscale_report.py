"""Scoring of the written ``ml-downscale`` product and its self-contained HTML report.

* :func:`product_scores` — the product over all its days against the fine reference,
  next to the bilinear baseline on the same pixel-days; coverage.
* :func:`validate_at_stations` — :func:`soilfuse.validate.validate_product` with the
  coarse input, so per-station scores carry G_down.
* :func:`build_report` — maps of coarse vs downscaled (vs reference) for a few days,
  the per-window model selection over time, scatter plots against stations and the
  reference, the model-ranking table and the full comparison table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from soilfuse.exceptions import DataError
from soilfuse.io.gridded import open_gridded
from soilfuse.models._model_zoo import MODEL_NAMES
from soilfuse.recipes._ml_downscale_data import DownscaleInputs
from soilfuse.recipes._ml_downscale_eval import Evaluation, TrainedVariant
from soilfuse.regrid import Regridder
from soilfuse.report import HtmlReport, density_scatter
from soilfuse.validate import RunningScores

__all__ = ["build_report", "product_scores", "validate_at_stations"]

logger = logging.getLogger(__name__)

_SAMPLE = 200_000


def _open_product(path: Path) -> xr.Dataset:
    return open_gridded(path, chunks={"time": 32, "y": -1, "x": -1})


def product_scores(path: Path, inputs: DownscaleInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the written product over all its days.

    Returns
    -------
    table : pandas.DataFrame
        Rows ``product``, ``product (common)``, ``bilinear coarse (common)`` and
        ``coarse input``: ``n``, ``coverage`` (share of land pixel-days, or of coarse
        cell-days, with a value), and R, RMSE, ubRMSE, bias against the reference
        (NaN without one).
    sample : pandas.DataFrame
        Up to 200,000 ``reference``, ``product``, ``baseline`` triplets for plots.
    """
    product = _open_product(path)
    bilinear = Regridder(inputs.coarse_grid, inputs.fine_grid, "bilinear")
    land = np.asarray(inputs.land.values, dtype=bool)
    own, common, base = RunningScores(), RunningScores(), RunningScores()
    valid = total = 0.0
    samples: list[np.ndarray] = []
    days = pd.DatetimeIndex(product["time"].values)
    step = max(1, int(land.sum() * len(days) // _SAMPLE))
    for start in range(0, len(days), 32):
        batch = days[start : start + 32]
        sm = np.asarray(product["sm"].sel(time=batch).values, dtype="float64")
        valid += float(np.isfinite(sm)[:, land].sum())
        total += float(land.sum() * len(batch))
        if inputs.reference is None:
            continue
        ref = np.asarray(inputs.reference.sel(time=batch).values, dtype="float64")
        bl = np.asarray(bilinear.regrid_array(inputs.coarse.sel(time=batch).to_numpy().astype("float64")))
        own.add(ref, sm)
        both = np.isfinite(sm) & np.isfinite(bl)
        common.add(np.where(both, ref, np.nan), sm)
        base.add(np.where(both, ref, np.nan), bl)
        trio = np.stack([ref.ravel(), sm.ravel(), bl.ravel()], axis=1)[::step]
        samples.append(trio[np.isfinite(trio[:, :2]).all(axis=1)])
    coarse = inputs.coarse.to_numpy()
    rows = [
        {"what": "product", "coverage": valid / total if total else np.nan, **own.scores()},
        {"what": "product (common)", **common.scores()},
        {"what": "bilinear coarse (common)", **base.scores()},
        {"what": "coarse input", "coverage": float(np.isfinite(coarse).mean()), "n": float(np.isfinite(coarse).sum())},
    ]
    sample = pd.DataFrame(np.concatenate(samples) if samples else np.empty((0, 3)),
                          columns=["reference", "product", "baseline"])
    return pd.DataFrame(rows), sample


def validate_at_stations(path: Path, inputs: DownscaleInputs, out_dir: Path) -> Path | None:
    """Station validation of the product with G_down against the coarse input.

    Returns the per-station metrics table (``metrics_stations.csv``), or None without stations.
    """
    from soilfuse.validate import validate_product

    if inputs.stations is None:
        return None
    coarse = inputs.coarse.rename("sm").to_dataset()
    try:
        paths = validate_product(_open_product(path), inputs.stations, out_dir, variable="sm", product_layer=(0, 5),
                                 coarse=coarse, formats=("csv",))
    except DataError as err:
        logger.warning("station validation skipped: %s", err)
        return None
    return paths["tables/metrics_stations.csv"]


# ---------------------------------------------------------------------- figures
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _map_days(coarse: xr.DataArray, n: int) -> pd.DatetimeIndex:
    """``n`` days spread over the period, each the best-covered day of its stretch."""
    cover = np.isfinite(coarse.to_numpy()).mean(axis=(1, 2))
    days = pd.DatetimeIndex(coarse["time"].values)
    picks = [int(part[np.argmax(cover[part])]) for part in np.array_split(np.arange(days.size), n) if part.size]
    return days[picks]


def _maps(path: Path, inputs: DownscaleInputs, n: int) -> Figure:
    product = _open_product(path)
    days = _map_days(inputs.coarse, n)
    broadcast = Regridder(inputs.coarse_grid, inputs.fine_grid, "broadcast")
    cols = 3 if inputs.reference is not None else 2
    fig = _figure(4.0 * cols, 3.4 * len(days))
    x0, x1 = inputs.fine_grid.x[[0, -1]]
    y0, y1 = inputs.fine_grid.y[[-1, 0]]
    lo, hi = np.nanpercentile(inputs.coarse.to_numpy(), [2, 98]) if np.isfinite(inputs.coarse.to_numpy()).any() \
        else (0.0, 0.5)
    for i, day in enumerate(days):
        panels = [("coarse input", np.asarray(broadcast.regrid_array(inputs.coarse.sel(time=day).to_numpy()))),
                  ("downscaled", np.asarray(product["sm"].sel(time=day).values))]
        if inputs.reference is not None:
            panels.append((inputs.reference_name, np.asarray(inputs.reference.sel(time=day).values)))
        for j, (title, data) in enumerate(panels):
            ax = fig.add_subplot(len(days), cols, i * cols + j + 1)
            im = ax.imshow(data, extent=(x0, x1, y0, y1), vmin=lo, vmax=hi, cmap="YlGnBu", interpolation="nearest")
            ax.set_title(f"{title}, {day:%Y-%m-%d}", fontsize=9)
            ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=fig.axes[-cols:], shrink=0.8, label="m3 m-3")
    return fig


def _selection(variant: TrainedVariant) -> Figure:
    table = variant.model.windows_
    fig = _figure(9.0, 4.0)
    fig.subplots_adjust(bottom=0.25)
    ax = fig.add_subplot()
    names = list(MODEL_NAMES)
    code = table["selected"].map(names.index)
    own = ~table["reused"].to_numpy(dtype=bool)
    ax.scatter(table["start"][own], code[own], marker="o", color="tab:blue", label="own model")
    ax.scatter(table["start"][~own], code[~own], marker="o", facecolors="none", edgecolors="tab:red",
               label="previous window's model (< min samples)")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylabel("selected model")
    twin = ax.twinx()
    twin.bar(table["start"], table["n_samples"], width=12, alpha=0.2, color="grey")
    twin.set_ylabel("samples in window")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_ylim(-0.5, len(names) - 0.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    ax.set_title(f"Per-window selection ({variant.name})", fontsize=10)
    return fig


def _station_pairs(validation: Path | None) -> pd.DataFrame | None:
    if validation is None:
        return None
    pairs = validation.parent / "pairs.parquet"
    return pd.read_parquet(pairs) if pairs.is_file() else None


# ---------------------------------------------------------------------- report
def build_report(
    path: Path,
    *,
    product: Path,
    inputs: DownscaleInputs,
    variants: Sequence[TrainedVariant],
    evaluation: Evaluation,
    headline: pd.DataFrame,
    sample: pd.DataFrame,
    options: Any,
    validation: Path | None,
) -> Path:
    """Write the self-contained HTML report of a run and return its path."""
    rep = HtmlReport("ml-downscale: per-window multi-model downscaling (Rao et al., 2022)")
    main = variants[0]
    rep.section("Run").text(
        f"Product: {main.name}; selection rule '{options.selection}'; residual correction "
        f"'{options.residual_correction}'; {len(inputs.days)} days on a {inputs.fine_grid.shape} fine grid; "
        f"coarse grid {inputs.coarse_grid.shape}; predictors: {', '.join(main.features)}. "
        f"Scored against: {inputs.reference_name or 'no fine reference'}"
        f"{' and stations' if inputs.stations is not None else ''}."
    )
    rep.table(headline.set_index("what"), caption="Product over all days, and the bilinear baseline on the "
              "same pixel-days (m3 m-3)", float_format="{:.4f}")
    rep.section("Coarse input and downscaled product").figure(_maps(product, inputs, options.map_days),
                                                              caption="Coarse input (its cells drawn on the fine "
                                                              "grid), the downscaled product and the reference")
    rep.section("Model selection per 16-day window")
    for variant in variants:
        rep.figure(_selection(variant), caption=f"Selected model and sample count per window ({variant.name})")
    ranking = main.model.ranking_table(by="paper").set_index("model")
    rep.table(ranking, caption="Mean train/test R and RMSE over the windows with their own model; rank by the "
              "paper's rule (Rao et al., 2022 found XGB > RF > SVR > ANN > MLR)")
    rep.section("Scatter plots")
    if len(sample):
        rep.figure(density_scatter(sample["reference"], sample["product"], units="m3 m-3",
                                   title=f"product vs {inputs.reference_name}"),
                   caption=f"Product against the {inputs.reference_name} at sampled pixel-days")
    pairs = _station_pairs(validation)
    if pairs is not None and len(pairs):
        rep.figure(density_scatter(pairs["obs"], pairs["pred"], units="m3 m-3", title="product vs stations"),
                   caption="Product against daily station soil moisture (0-5 cm)")
    if validation is not None:
        per = pd.read_csv(validation)
        if "G_down" in per:
            g = per["G_down"].dropna()
            rep.text(f"G_down against the coarse input: median {g.median():.3f}, positive at "
                     f"{100 * (g > 0).mean():.0f} % of {len(g)} stations.")
    rep.section("All variants").text(
        f"Scored on {len(evaluation.days)} evaluation days. 'common' columns are restricted to the pixel-days "
        "where the bilinear baseline also has a value. Station columns start with 'st_'.")
    full = evaluation.table()
    shown = [c for c in ("training", "model", "correction", "coverage", "R", "ubRMSE", "bias", "ubRMSE_common",
                         "baseline_ubRMSE_common", "st_R", "st_ubRMSE", "st_median_ubRMSE", "G_down_positive")
             if c in full.columns]
    rep.table(full[shown].set_index(["training", "model", "correction"]), float_format="{:.4f}")
    return rep.write(path)
