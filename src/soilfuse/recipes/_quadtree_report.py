"""HTML report of the quadtree-st recipe: maps, partitions, scatter, time series, tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from soilfuse.config import RunConfig
from soilfuse.io.gridded import open_gridded
from soilfuse.report import HtmlReport, density_scatter, metric_boxplot
from soilfuse.rundir import RunDirectory
from soilfuse.validate import assign_season

__all__ = ["write_report"]


def write_report(
    run: RunDirectory, cfg: RunConfig, table: pd.DataFrame, features: list[str], models: dict[str, Any],
    product: Path, stations: pd.DataFrame,
) -> Path:
    """Assemble ``report/index.html`` from the run's tables and product."""
    tables = run.sub("tables")
    depths = list(cfg.options.depths)
    rep = HtmlReport("soilfuse · quadtree-st · daily soil temperature 0–40 cm")
    rep.text(
        "Rotated-quadtree XGBoost with a layer cascade (after Wang et al. 2025). "
        f"Profile '{cfg.options.profile}', seed {cfg.seed}; {table['station_id'].nunique()} stations, "
        f"{len(table)} station-days; predictors after VIF screening: {', '.join(features)}."
    )
    rep.section("Held-out blocks: method and baselines on the same stations")
    holdout = pd.read_csv(tables / "holdout_scores.csv")
    rep.table(holdout.pivot_table(index="variant", columns="depth", values="RMSE")[depths],
              caption="RMSE (K) on stations of held-out 1° blocks")
    rep.table(holdout.pivot_table(index="variant", columns="depth", values="R2")[depths],
              caption="R² on stations of held-out 1° blocks")
    truth_path = tables / "truth_scores.csv"
    if truth_path.is_file():
        rep.section("Against the synthetic world's truth at every pixel")
        truth = pd.read_csv(truth_path)
        rep.table(truth.pivot_table(index="variant", columns="depth", values="RMSE")[depths],
                  caption="RMSE (K) against truth, every pixel of the evaluated days")
        seams_path = tables / "seams.csv"
        if seams_path.is_file():
            rep.table(pd.read_csv(seams_path).set_index(["variant", "depth"])[["across", "inside", "excess", "ratio"]],
                      caption="Seam metric: neighbour differences across vs inside the 0° leaves (K)")
    detail = pd.read_parquet(tables / "holdout_predictions.parquet")
    rep.section("Density scatter per depth (held-out stations)")
    fig = Figure(figsize=(3.2 * len(depths), 3.2))
    for k, d in enumerate(depths):
        ax = fig.add_subplot(1, len(depths), k + 1)
        sub = detail[detail["depth"] == d]
        if len(sub):
            density_scatter(sub["observed"].to_numpy(), sub["predicted"].to_numpy(), ax=ax, units="K")
        ax.set_title(d)
    rep.figure(fig, caption="Predicted vs observed soil temperature, held-out blocks")
    rep.section("By season and land cover (held-out stations)")
    detail = assign_season(detail, time="time")
    detail["abs_error"] = np.abs(detail["predicted"] - detail["observed"])
    for by in ("season", "land_cover"):
        fig = Figure(figsize=(7, 3.2))
        metric_boxplot(detail, "abs_error", by, ax=fig.add_subplot(1, 1, 1))
        rep.figure(fig, caption=f"Absolute error (K) by {by.replace('_', ' ')}")
    rep.section("Maps: a winter and a summer day")
    _maps(rep, product, depths)
    rep.section("Six rotated partitions (0 cm model) with stations")
    _partitions(rep, models["ensemble"].estimators_[0], table)
    rep.section("Time series at four stations (0 and 40 cm)")
    _series(rep, models["ensemble"], table, features, depths)
    rep.section("Predictor screening (VIF)")
    rep.table(pd.read_csv(tables / "vif.csv").set_index("feature"), caption="Variance inflation factors")
    leaves = pd.read_csv(tables / "leaves.csv")
    rep.section("Local models")
    rep.table(leaves.groupby("depth")[["stations", "fallback", "test_rmse"]].agg(
        {"stations": "count", "fallback": "sum", "test_rmse": "median"}).rename(
        columns={"stations": "leaves", "fallback": "fallback leaves", "test_rmse": "median leaf test RMSE"}),
        caption="Leaves over the six rotations per depth; fallback = predicted by the global model")
    return rep.write(run.sub("report") / "index.html")


def _maps(rep: HtmlReport, product: Path, depths: list[str]) -> None:
    st = open_gridded(product)["st"]
    means = st.isel(depth=0).mean(("y", "x")).compute().to_numpy()
    if not np.isfinite(means).any():
        rep.text("No predicted values to map.")
        return
    for label, idx in (("coldest", int(np.nanargmin(means))), ("warmest", int(np.nanargmax(means)))):
        day = st.isel(time=idx).compute()
        fig = Figure(figsize=(2.8 * len(depths), 2.8))
        vmin, vmax = float(day.min()), float(day.max())
        for k, d in enumerate(depths):
            ax = fig.add_subplot(1, len(depths), k + 1)
            im = ax.imshow(day.isel(depth=k).values, vmin=vmin, vmax=vmax, cmap="RdYlBu_r",
                           extent=_extent(day))
            ax.set_title(d)
        fig.colorbar(im, ax=fig.axes, shrink=0.8, label="K")
        rep.figure(fig, caption=f"{label} day {str(day['time'].values)[:10]}: soil temperature by depth")


def _partitions(rep: HtmlReport, model: Any, table: pd.DataFrame) -> None:
    st = table.drop_duplicates("station_id")
    fig = Figure(figsize=(12, 7))
    for r, part in enumerate(model.partitions_):
        ax = fig.add_subplot(2, 3, r + 1)
        for outline in part.leaf_outlines():
            ax.plot(outline[:, 0], outline[:, 1], lw=0.8, color="0.3")
        ax.scatter(st["lon"], st["lat"], s=6, color="tab:red")
        ax.set_title(f"{model.angles[r]:g}°: {part.n_leaves} leaves")
        ax.set_xlim(st["lon"].min() - 0.3, st["lon"].max() + 0.3)
        ax.set_ylim(st["lat"].min() - 0.3, st["lat"].max() + 0.3)
    rep.figure(fig, caption="Adaptive quadtree leaves (≥ threshold stations each) at the six rotations")


def _series(rep: HtmlReport, cascade: Any, table: pd.DataFrame, features: list[str], depths: list[str]) -> None:
    counts = table.groupby("station_id")[depths[-1]].count().sort_values(ascending=False)
    chosen = list(counts.index[:4])
    fig = Figure(figsize=(11, 6))
    pred = cascade.predict(table[["lon", "lat", *features]])
    for i, sid in enumerate(chosen):
        ax = fig.add_subplot(2, 2, i + 1)
        rows = (table["station_id"] == sid).to_numpy()
        t = pd.to_datetime(table.loc[rows, "time"])
        for d, colour in ((depths[0], "tab:orange"), (depths[-1], "tab:blue")):
            k = depths.index(d)
            ax.plot(t, table.loc[rows, d], ".", ms=2, color=colour, label=f"observed {d}")
            ax.plot(t, pred[rows, k], "-", lw=0.8, color=colour, label=f"estimated {d}")
        ax.set_title(str(sid))
        ax.set_ylabel("K")
    fig.axes[0].legend(fontsize=7)
    rep.figure(fig, caption="Observed and estimated soil temperature at four stations (all days)")


def _extent(da: Any) -> tuple[float, float, float, float]:
    x, y = da["x"].values, da["y"].values
    dx = float(abs(x[1] - x[0])) if len(x) > 1 else 0.0
    dy = float(abs(y[1] - y[0])) if len(y) > 1 else 0.0
    return float(x.min() - dx / 2), float(x.max() + dx / 2), float(y.min() - dy / 2), float(y.max() + dy / 2)
