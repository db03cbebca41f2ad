"""Scoring the quadtree-st product and its gridded baselines against the twin's truth.

On a synthetic world the truth is known at every pixel, so the product is scored on
every pixel of every ``eval_day_stride``-th day (not only at stations), next to the
same days predicted by every baseline model and by the reanalysis interpolated to the
fine grid. The seam metric (:func:`soilfuse.validate.seams.seam_metric`) compares
neighbour differences across the 0° partition's leaf boundaries with those inside
leaves, for the six-rotation ensemble and for the single 0° rotation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.grid import Grid
from soilfuse.io.cf import depth_coords
from soilfuse.io.gridded import open_gridded
from soilfuse.predict import predict_cube
from soilfuse.recipes._quadtree_data import reanalysis_st_at_depths
from soilfuse.recipes._quadtree_eval import grid_scores
from soilfuse.regrid import Regridder
from soilfuse.validate.seams import seam_metric

__all__ = ["score_against_truth"]

logger = logging.getLogger(__name__)


def score_against_truth(
    cube: xr.Dataset,
    rea: xr.Dataset,
    models: dict[str, Any],
    features: list[str],
    opts: Any,
    product: Path,
    truth_path: Path,
    tables: Path,
) -> dict[str, Path]:
    """Write ``truth_scores.csv`` and ``seams.csv`` into ``tables``; return their paths."""
    depths = list(opts.depths)
    prod = open_gridded(product)["st"]
    days = prod["time"].values[:: opts.eval_day_stride]
    truth = open_gridded(truth_path)["st"]
    truth = truth.rename({d: "depth" for d in truth.dims if str(d).startswith("depth")})
    levels = [float(d.removesuffix("cm")) for d in depths]
    truth = truth.sel(depth=levels, time=days).transpose("time", "depth", "y", "x").load()
    preds: dict[str, xr.DataArray] = {"ensemble": prod.sel(time=days).load()}
    sub = cube[features].sel(time=days)
    coords = depth_coords(levels, levels)
    for name, model in models.items():
        if name == "ensemble":
            continue
        out = predict_cube(sub, _fn(model, features), outputs={"st": {"units": "K"}}, depth=coords,
                           required=["t2m"])
        preds[name] = out["st"].load()
    rea_st = reanalysis_st_at_depths(rea, depths)["st"].sel(time=days)
    fine = Grid.from_dataset(cube)
    rea_fine = Regridder(Grid.from_dataset(rea), fine, "bilinear")(rea_st.transpose("time", "depth", "y", "x"))
    preds["reanalysis"] = rea_fine.load()
    scores = grid_scores(truth, preds, depths)
    scores_path = tables / "truth_scores.csv"
    scores.to_csv(scores_path, index=False)
    outputs = {"truth_scores": scores_path}
    if "single_rotation" in preds:
        seams = _seams(models, preds, depths, fine)
        if not seams.empty:
            seams_path = tables / "seams.csv"
            seams.to_csv(seams_path, index=False)
            outputs["seams"] = seams_path
    return outputs


def _fn(model: Any, features: list[str]) -> Any:
    columns = ["lon", "lat", *features]

    def fn(table: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"st": np.asarray(model.predict(table[columns]))}

    return fn


def _seams(models: dict[str, Any], preds: dict[str, xr.DataArray], depths: list[str], grid: Grid) -> pd.DataFrame:
    lon, lat = grid.lonlat()
    rows = []
    for k, d in enumerate(depths):
        part = models["single_rotation"].estimators_[k].partitions_[0]
        labels = part.assign(lon.ravel(), lat.ravel()).reshape(lon.shape)
        if len(np.unique(labels)) < 2:
            logger.warning("depth %s: the 0° partition has one leaf; no seams to measure", d)
            continue
        for name in ("ensemble", "single_rotation"):
            s = seam_metric(preds[name].isel(depth=k).values, labels)
            rows.append({"variant": name, "depth": d, **s})
    return pd.DataFrame(rows)
