"""End-to-end test of the quadtree-st recipe on a small synthetic world with known truth.

The world is the ``small`` twin with 160 stations (the preset's 40 leave too few
soil-temperature stations in the sparse west for any quadtree split), run with the
``test`` profile. Scores are read from the run's own tables.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from soilfuse.config import parse_config
from soilfuse.exceptions import ConfigError
from soilfuse.io.gridded import is_complete, open_gridded
from soilfuse.recipes.runner import run_recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from soilfuse.twin import TwinConfig, make_world, observe, write_twin

    cfg = dataclasses.replace(TwinConfig.from_size("small"), n_stations=160)
    world = make_world(cfg)
    out = tmp_path_factory.mktemp("twin") / "small160"
    write_twin(world, observe(world), out)
    return out


@pytest.fixture(scope="module")
def run(twin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "qt"
    cfg = parse_config({
        "recipe": "quadtree-st", "run_dir": str(run_dir), "seed": 0, "inputs": {"twin": str(twin)},
        "options": {"profile": "test", "chunks": {"time": 40, "y": 64, "x": 64}, "eval_day_stride": 5,
                    "variants": ["ensemble", "single_rotation", "global", "absolute"]},
    })
    run_recipe(cfg)
    return run_dir


def test_run_recipe__outputs_complete(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    product = run / "product" / "st_daily.zarr"
    assert is_complete(product)
    ds = open_gridded(product)
    assert ds["st"].dims == ("time", "depth", "y", "x")
    assert ds["depth"].values.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 40.0]
    assert float(ds["st"].isnull().mean()) < 0.01  # gap-free where inputs allow
    assert float(ds["st_spread"].mean()) > 0  # six rotations disagree somewhere
    assert (run / "product" / "st_monthly.zarr").exists() and (run / "product" / "st_daily.nc").exists()
    assert any((run / "models").glob("st_0cm/*.ubj"))
    assert (run / "report" / "index.html").stat().st_size > 50_000


def test_run_recipe__ensemble_beats_global_model_against_truth(run: Path) -> None:
    scores = pd.read_csv(run / "tables" / "truth_scores.csv").pivot_table(
        index="depth", columns="variant", values="RMSE")
    assert len(scores) == 6
    # Local, rotated models beat one global XGBoost at every depth and on average.
    # Measured (seed 0, RMSE against truth at every pixel, K, depths 0/5/10/15/20/40 cm):
    # ensemble 1.69/1.46/1.55/1.61/1.45/1.50, global 1.69/1.58/1.69/1.65/1.55/1.51
    # (mean 1.54 vs 1.61: with departures from the reanalysis little spatial structure
    # is left for the leaves to capture).
    assert scores["ensemble"].mean() <= 0.97 * scores["global"].mean(), scores
    assert (scores["ensemble"] <= scores["global"]).all(), scores


def test_run_recipe__ensemble_against_interpolated_reanalysis(run: Path) -> None:
    scores = pd.read_csv(run / "tables" / "truth_scores.csv").pivot_table(
        index="depth", columns="variant", values="RMSE")
    # The reanalysis baseline is 2.40/2.21/2.18/2.17/2.18/2.37 K at 0/5/10/15/20/40 cm;
    # the ensemble is 0.70/0.66/0.71/0.74/0.66/0.63 x that.
    ratio = scores["ensemble"] / scores["reanalysis"]
    assert (ratio <= 0.9).all(), ratio
    assert scores["ensemble"].mean() <= 0.8 * scores["reanalysis"].mean(), scores


def test_run_recipe__rotations_remove_seams(run: Path) -> None:
    seams = pd.read_csv(run / "tables" / "seams.csv").pivot_table(index="depth", columns="variant", values="excess")
    assert len(seams) >= 1
    # the six-rotation average smooths the 0° leaf boundaries by at least 30 %
    assert (seams["ensemble"] <= 0.7 * seams["single_rotation"]).all(), seams


def test_run_recipe__holdout_tables(run: Path) -> None:
    holdout = pd.read_csv(run / "tables" / "holdout_scores.csv")
    assert set(holdout["variant"]) >= {"ensemble", "global", "single_rotation", "reanalysis"}
    ens = holdout[holdout["variant"] == "ensemble"]
    assert (ens["RMSE"] < 4.0).all() and (ens["R2"] > 0.5).all()
    vif = pd.read_csv(run / "tables" / "vif.csv")
    assert {"t2m", "lst_mean"} <= set(vif.loc[vif["decision"] == "kept", "feature"])


def test_parse_config__bad_profile() -> None:
    with pytest.raises(ConfigError, match=r"options\.profile"):
        parse_config({"recipe": "quadtree-st", "run_dir": "x", "inputs": {"twin": "t"},
                      "options": {"profile": "fast"}})
