"""The ``ml-downscale`` recipe end to end: synthetic twin (``small``) and real Western Australia data.

Twin runs use the ``test`` profile (tiny model grids, three CV folds), all-weather LST
and nearest-neighbour aggregation, and score every day: one with the ensemble mean of
the five models and the smooth residual correction (the best product on this twin),
one with the exact correction. Numbers in the comments are the values measured when
the thresholds were set (seed 0).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import soilfuse.recipes.ml_downscale  # noqa: F401  (registers the recipe)
from soilfuse.config import parse_config
from soilfuse.exceptions import ConfigError
from soilfuse.grid import Grid
from soilfuse.io.gridded import is_complete, open_gridded
from soilfuse.recipes._ml_downscale_data import load_coarse
from soilfuse.recipes._ml_downscale_predict import residual_correction_kernel
from soilfuse.recipes.inputs import load_truth
from soilfuse.recipes.runner import run_recipe
from soilfuse.regrid import Regridder, aggregate
from soilfuse.validate import ubrmse

_TWIN_OPTIONS = {"profile": "test", "lst_gapfill": True, "compare": False}


@pytest.fixture(scope="session")
def small_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``small`` world with 160 stations instead of 40, as for quadtree-st.

    With 40 stations only 28 have enough surface soil-moisture days for G_down, and a
    share of 28 stations has a sampling error of about ±9 %; with 160, 112 do.
    """
    from soilfuse.twin import TwinConfig, make_world, observe, write_twin

    world = make_world(dataclasses.replace(TwinConfig.from_size("small"), n_stations=160))
    out = tmp_path_factory.mktemp("twin") / "small160"
    write_twin(world, observe(world), out)
    return out


def _run(twin: Path, run_dir: Path, **options: object) -> dict[str, Path]:
    cfg = parse_config({"recipe": "ml-downscale", "run_dir": str(run_dir), "seed": 0,
                        "inputs": {"twin": str(twin)}, "options": {**_TWIN_OPTIONS, **options}})
    return {"run_dir": cfg.run_dir, **run_recipe(cfg)}


@pytest.fixture(scope="session")
def twin_run(small_twin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _run(small_twin, tmp_path_factory.mktemp("runs") / "smooth", selection="ensemble",
                residual_correction="smooth")


@pytest.fixture(scope="session")
def exact_run(small_twin: Path, twin_run: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Path]:
    run_dir = tmp_path_factory.mktemp("runs") / "exact"
    # the same inputs: reuse the predictor cube, as a resumed run would
    shutil.copytree(twin_run["run_dir"] / "product" / "predictors.zarr", run_dir / "product" / "predictors.zarr")
    return _run(small_twin, run_dir, residual_correction="exact", eval_stride=4)


def _common_scores(twin: Path, product: xr.Dataset) -> tuple[float, float, int]:
    """ubRMSE of the product and of the bilinear coarse field against truth, same pixel-days."""
    coarse = load_coarse(sorted((twin / "satellite" / "smap").glob("*.nc")), "smap")
    fine = Grid.from_dataset(product)
    base = Regridder(Grid.from_dataset(coarse), fine, "bilinear").regrid_array(coarse.sel(time=product["time"]).values)
    truth = load_truth(twin, ["sm"])["sm"].isel(depth_sm=0).sel(time=product["time"]).values
    sm = product["sm"].values
    both = np.isfinite(sm) & np.isfinite(base) & np.isfinite(truth)
    return float(ubrmse(truth[both], sm[both], axis=None)), float(ubrmse(truth[both], base[both], axis=None)), \
        int(both.sum())


# ---------------------------------------------------------------------- kernels
def test_residual_correction_kernel__exact_with_bounds() -> None:
    rng = np.random.default_rng(1)
    fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.05)
    coarse = Grid.ease2("36km").subset((100.0, 101.0, 30.0, 31.0))
    field = np.clip(0.2 + 0.1 * rng.standard_normal((3, *fine.shape)), 0.0, 0.6)
    field[:, :4, :4] = np.nan
    obs = np.full((3, *coarse.shape), 0.05)
    obs[1] = 0.35
    obs[2, 0, 0] = np.nan
    kw = {"weights": Regridder(fine, coarse, "mean").weights,
          "interpolation": Regridder(coarse, fine, "bilinear").weights}
    out, touched = residual_correction_kernel(field, obs, exact=True, **kw)
    agg = Regridder(fine, coarse, "mean", min_valid_fraction=0.0).regrid_array(out)
    ok = np.isfinite(obs) & np.isfinite(agg)
    # a low target pushes many pixels to the 0 bound; the others carry the rest exactly
    assert np.abs(agg[ok] - obs[ok]).max() < 1e-9
    assert np.nanmin(out) >= 0.0 and np.nanmax(out) <= 0.6
    assert np.isnan(out[:, :4, :4]).all() and not touched[:, :4, :4].any()
    smooth, _ = residual_correction_kernel(field, obs, exact=False, **kw)
    smooth_agg = Regridder(fine, coarse, "mean", min_valid_fraction=0.0).regrid_array(smooth)
    assert np.abs(smooth_agg[ok] - obs[ok]).max() > 1e-3


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize(("options", "key"), [
    ({"aggregation": "median"}, "options.aggregation"),
    ({"residual_correction": True}, "options.residual_correction"),
    ({"chunks": {"time": 8}}, "options.chunks"),
    ({"predictors": ["lst_day", "rainfall"]}, "options"),
    ({"n_job": 2}, "options.n_job"),
])
def test_parse_config__malformed_options_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        parse_config({"recipe": "ml-downscale", "run_dir": "x", "inputs": {"twin": "t"}, "options": options})


def test_run_recipe__reanalysis_source_needs_its_files(tmp_path: Path) -> None:
    cfg = parse_config({"recipe": "ml-downscale", "run_dir": str(tmp_path / "r"),
                        "inputs": {"coarse_sm": [str(tmp_path)]},
                        "options": {"predictor_source": "reanalysis", "fine_grid": "ease9km"}})
    with pytest.raises(Exception, match=r"No files found|inputs\.reanalysis"):
        run_recipe(cfg)


# ---------------------------------------------------------------------- small twin end to end
def test_run_ml_downscale__run_directory_is_complete(twin_run: dict[str, Path]) -> None:
    run_dir = twin_run["run_dir"]
    assert is_complete(twin_run["product"])
    for name in ("comparison.csv", "product_scores.csv", "windows_nearest_gap-filled.csv",
                 "ranking_nearest_gap-filled.csv", "training_nearest_gap-filled.parquet",
                 "validation/tables/metrics_stations.csv"):
        assert (run_dir / "tables" / name).is_file(), name
    assert (run_dir / "models" / "nearest_gap-filled" / "index.json").is_file()
    html = twin_run["report"].read_text()
    assert "Model selection per 16-day window" in html and html.count("data:image/png;base64") >= 4
    product = open_gridded(twin_run["product"])
    assert product["sm"].attrs["units"] == "m3 m-3" and product.attrs["Conventions"].startswith("CF-1.10")
    assert "geospatial_lat_min" in product.attrs and product.sizes["time"] == 120
    flag = product["sm_flag"].values
    sm = product["sm"].values
    assert ((flag == 255) == np.isnan(sm)).all()
    valid = flag[flag != 255]
    assert set(np.unique(valid & 7)) == {5}  # ensemble mean of the five models
    assert (valid & 64).any() and (valid & 32).any()  # residual-corrected, gap-filled predictors
    windows = pd.read_csv(run_dir / "tables" / "windows_nearest_gap-filled.csv")
    # 9 windows, 7 with their own model; the first (78 samples) and last (38) reuse one
    assert windows["reused"].tolist() == (windows["n_samples"] < 100).tolist()
    assert windows["reused"].sum() == 2
    reused_days = (flag != 255) & ((flag & 8) > 0)
    assert reused_days.any()
    # all-weather LST: nearly every land pixel-day has a value (measured 0.971)
    scores = pd.read_csv(twin_run["product_scores"]).set_index("what")
    assert scores.loc["product", "coverage"] > 0.95


def test_run_ml_downscale__beats_bilinear_baseline_against_truth(twin_run: dict[str, Path], small_twin: Path) -> None:
    product = open_gridded(twin_run["product"])
    ub_product, ub_base, n = _common_scores(small_twin, product)
    # measured: 0.0359 vs 0.0371 m3 m-3 on 117,219 pixel-days where both have a value
    assert n > 100_000
    assert ub_product < ub_base
    scores = pd.read_csv(twin_run["product_scores"]).set_index("what")
    assert scores.loc["product (common)", "ubRMSE"] == pytest.approx(ub_product, rel=1e-4)
    assert scores.loc["bilinear coarse (common)", "ubRMSE"] == pytest.approx(ub_base, rel=1e-4)


def test_run_ml_downscale__comparison_table(twin_run: dict[str, Path]) -> None:
    table = pd.read_csv(twin_run["comparison"])
    models = table.loc[table["training"] != "baseline"]
    assert len(models) == 8 * 3  # 5 models, 2 selection rules, the ensemble; 3 corrections
    wide = models.pivot(index="model", columns="correction", values="ubRMSE_common")
    # the smooth correction helps every model (measured: by 0.010-0.014 m3 m-3) ...
    assert (wide["smooth"] < wide["none"] - 0.008).all()
    # ... and the exact one too, but less: pinning cell means to the noisy coarse field costs
    assert (wide["exact"] < wide["none"]).all() and (wide["smooth"] < wide["exact"]).all()
    # the paper's rule picks XGB in every window here; its test-set RMSE is not the best
    assert wide.loc["Combination (paper)", "none"] == pytest.approx(wide.loc["XGB", "none"])


def test_run_ml_downscale__station_gain(twin_run: dict[str, Path]) -> None:
    table = pd.read_csv(twin_run["comparison"]).set_index(["model", "correction"])
    share = table["G_down_positive"]
    # G_down against the coarse input, share of stations with a gain (112 stations). Measured:
    # ensemble 0.29 raw -> 0.56 smooth-corrected; the bilinear baseline 0.74. The issue's
    # ">= 70 %" is not reached on this twin by any variant (best: RF smooth, 0.58), see the
    # documentation.
    assert share[("Ensemble (mean)", "smooth")] >= share[("Ensemble (mean)", "none")] + 0.15
    assert share[("bilinear coarse", "none")] >= 0.7
    assert (table["n_G_down"].dropna() >= 100).all()
    per_station = pd.read_csv(twin_run["station_metrics"])
    assert per_station["G_down"].notna().sum() >= 100
    assert per_station["G_down"].dropna().between(-1.0, 1.0).all()


def test_run_ml_downscale__exact_correction_reproduces_coarse(exact_run: dict[str, Path], small_twin: Path) -> None:
    product = open_gridded(exact_run["product"])
    coarse = load_coarse(sorted((small_twin / "satellite" / "smap").glob("*.nc")), "smap")
    agg = aggregate(product["sm"].astype("float64"), Grid.from_dataset(coarse)).values
    obs = coarse.sel(time=product["time"]).values
    ok = np.isfinite(agg) & np.isfinite(obs) & (obs <= 0.6)
    assert ok.sum() > 2000
    assert np.abs(agg[ok] - obs[ok]).max() < 1e-6
    flag = product["sm_flag"].values
    assert set(np.unique(flag[flag != 255] & 7)) <= {0, 1, 2, 3, 4}


# ---------------------------------------------------------------------- real data
@pytest.mark.slow
def test_run_ml_downscale__western_australia(real_data: Path, tmp_path: Path) -> None:
    cfg = parse_config({
        "recipe": "ml-downscale", "run_dir": str(tmp_path / "wa"), "seed": 0,
        "domain": {"region": [116.0, 122.0, -32.0, -27.0]},
        "inputs": {"coarse_sm": [str(real_data / "smap_l3/western_australia_36km_2020-01")],
                   "reanalysis": [str(real_data / "era5_land/western_australia_2020-01")]},
        "options": {"profile": "test", "predictor_source": "reanalysis", "fine_grid": "ease9km",
                    "fine_reference": [str(real_data / "smap_l3/western_australia_9km_2020-01")],
                    "residual_correction": "smooth", "compare": False},
    })
    out = run_recipe(cfg)
    product = open_gridded(out["product"])
    assert Grid.from_dataset(product) == Grid.ease2("9km").subset((116.0, 122.0, -32.0, -27.0))
    scores = pd.read_csv(out["product_scores"]).set_index("what")
    # measured against SMAP 9 km on 82,731 pixel-days: product R 0.921, ubRMSE 0.0223;
    # bilinear SMAP 36 km R 0.975, ubRMSE 0.0128 (SMAP 9 km is itself an interpolation of
    # the same radiometer, so the bilinear field is close to it by construction)
    assert scores.loc["product", "coverage"] == pytest.approx(1.0)
    assert scores.loc["product (common)", "R"] == pytest.approx(0.921, abs=0.02)
    assert scores.loc["product (common)", "ubRMSE"] == pytest.approx(0.0223, abs=0.002)
    assert scores.loc["bilinear coarse (common)", "R"] == pytest.approx(0.975, abs=0.005)
    assert scores.loc["bilinear coarse (common)", "ubRMSE"] == pytest.approx(0.0128, abs=0.001)
