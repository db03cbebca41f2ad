"""Recipe ``ml-downscale``: coarse satellite soil moisture to a fine grid, one model set per 16-day window.

Rao et al. (2022) downscale SMAP 36 km surface soil moisture to 1 km over northern
China: in every 16-day window the fine predictors are resampled to the coarse grid,
every valid (coarse pixel, day) sample is pooled and split half/half by date (until a
Kolmogorov–Smirnov test finds the halves alike), MLR, SVR, ANN, RF and XGBoost are
tuned by grid-search CV, the model with the smallest mean of train and test RMSE is
kept, and it predicts the window's days from the fine predictors. This recipe composes
that method from soilfuse's stages and adds, each optional and scored side by side
with the paper's version: area-weighted mean aggregation of the predictors,
all-weather (gap-filled) LST, selection on test RMSE alone, and a residual correction
("smooth" as in pyDMS, or "exact": the product averaged over each coarse cell equals
the coarse observation).

Stages (``RUN`` is the run directory)
-------------------------------------
1. inputs — coarse target, fine predictor cube (``RUN/product/predictors.zarr``),
   fine reference (twin truth or e.g. SMAP 9 km) and station targets
   (:mod:`soilfuse.recipes._ml_downscale_data`);
2. train — one :class:`~soilfuse.models.window.WindowedDownscaler` per variant
   (the product's, plus the other aggregation and LST source when ``compare``),
   windows fitted in parallel with joblib and a progress bar; models in
   ``RUN/models/<variant>/``, samples and per-window records in ``RUN/tables/``;
3. predict — the daily fine product ``RUN/product/ml_downscale.zarr`` (``sm``, ``sm_flag``),
   region by region with Dask, resumable (:mod:`soilfuse.recipes._ml_downscale_predict`);
4. evaluate — every variant × model × correction against the reference, stations and
   the bilinear baseline; coverage; station validation of the product with G_down
   (:mod:`soilfuse.recipes._ml_downscale_eval`);
5. report — ``RUN/report/ml_downscale.html`` (:mod:`soilfuse.recipes._ml_downscale_report`).

Configuration
-------------
>>> from soilfuse.config import parse_config
>>> cfg = parse_config({"recipe": "ml-downscale", "run_dir": "runs/x", "inputs": {"twin": "twin"},
...                     "options": {"profile": "test", "residual_correction": "exact"}})
>>> cfg.options.grid_profile, cfg.options.cv_folds, cfg.options.residual_correction
('test', 3, 'exact')

See ``docs/recipes/ml-downscale.md`` for every option and the measured figures.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sklearn.exceptions import ConvergenceWarning

from soilfuse.config import RunConfig, register_recipe_options
from soilfuse.models._model_zoo import MODEL_NAMES
from soilfuse.models.window import WindowedDownscaler, WindowModelSelector
from soilfuse.recipes import register_recipe
from soilfuse.recipes._ml_downscale_data import (
    MODIS_PREDICTORS,
    REANALYSIS_PREDICTORS,
    DownscaleInputs,
    assemble_inputs,
    coarse_predictors,
    training_table,
)
from soilfuse.recipes._ml_downscale_eval import TrainedVariant, evaluate_variants
from soilfuse.recipes._ml_downscale_predict import predict_fine, residual_correct, write_downscaled
from soilfuse.recipes._ml_downscale_report import build_report, product_scores, validate_at_stations
from soilfuse.rundir import RunDirectory

__all__ = ["PROFILES", "MlDownscaleOptions", "run_ml_downscale"]

logger = logging.getLogger(__name__)

#: Defaults per profile: model grid profile, CV folds, evaluation-day stride.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {"grid": "paper", "cv": 5, "eval_stride": 1},
    "demo": {"grid": "demo", "cv": 3, "eval_stride": 4},
    "test": {"grid": "test", "cv": 3, "eval_stride": 1},
}


@register_recipe_options("ml-downscale")
class MlDownscaleOptions(BaseModel):
    """Options of the ``ml-downscale`` recipe (the ``options:`` block of a run configuration).

    Defaults reproduce Rao et al. (2022); everything beyond the paper is opt-in and, with
    ``compare``, scored next to the paper's version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Literal["paper", "demo", "test"] = Field(default="paper", description="size of grids, CV and evaluation")
    coarse_product: Literal["smap", "cci"] = Field(default="smap", description="reader of the coarse files")
    predictor_source: Literal["modis", "reanalysis"] = Field(default="modis", description="source of the predictors")
    predictors: tuple[str, ...] | None = Field(default=None, description="predictor names (default: all of the source)")
    fine_grid: Literal["predictors", "ease9km", "ease3km", "ease1km"] = Field(default=
        "predictors", description="grid of the product: the predictors' own, or EASE-Grid 2.0 over domain.region")
    fine_reference: tuple[Path, ...] | None = Field(default=None, description="fine-scale SMAP files to score against")
    aggregation: Literal["nearest", "mean"] = Field(default="nearest", description="predictors to the coarse grid")
    lst_gapfill: bool = Field(default=False, description="all-weather LST (STDF + interpolation) for the product")
    selection: Literal["paper", "test", "ensemble"] = Field(
        default="paper", description="per window: mean of train/test RMSE, test RMSE, or the mean of all models")
    residual_correction: Literal["none", "smooth", "exact"] = Field(default="none", description="towards the coarse")
    compare: bool = Field(default=True, description="also train the other aggregation and LST source, and score all")
    models: tuple[Literal["MLR", "SVR", "ANN", "RF", "XGB"], ...] = MODEL_NAMES  # type: ignore[assignment]
    min_samples: int = Field(default=100, ge=1, description="windows with fewer samples reuse the previous model")
    grid: Literal["paper", "demo", "test"] | None = Field(default=None, description="model grids (default: profile)")
    cv: int | None = Field(default=None, ge=2, description="grid-search CV folds (default: profile)")
    n_jobs: int = Field(default=1, ge=1, description="windows fitted in parallel (processes)")
    eval_stride: int | None = Field(default=None, ge=1, description="1/n of the days are scored (default: profile)")
    map_days: int = Field(default=3, ge=1, le=6, description="days shown as maps in the report")
    sm_range: tuple[float, float] = Field(default=(0.0, 0.6), description="physical range of soil moisture (m3 m-3)")
    chunks: dict[str, int] = Field(default={"time": 32, "y": 512, "x": 512}, description="product chunks")
    netcdf: bool = Field(default=False, description="also export the product as NetCDF")
    composite_days: int = Field(default=8, ge=1, description="compositing period of daily reflectances (days)")
    max_fill_gap: int = Field(default=32, ge=0, description="longest gap of a slow predictor filled (days)")

    @field_validator("chunks")
    @classmethod
    def _chunks(cls, v: dict[str, int]) -> dict[str, int]:
        if set(v) != {"time", "y", "x"} or min(v.values()) < 1:
            msg = f"a mapping of time, y and x to positive chunk lengths, e.g. {{time: 32, y: 512, x: 512}}; got {v}"
            raise ValueError(msg)
        return v

    @field_validator("sm_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] < v[1] <= 1.0:
            msg = "(low, high) with 0 <= low < high <= 1 (m3 m-3)"
            raise ValueError(msg)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MlDownscaleOptions:
        known = MODIS_PREDICTORS if self.predictor_source == "modis" else REANALYSIS_PREDICTORS
        unknown = sorted(set(self.features) - set(known))
        if unknown:
            msg = f"predictors {unknown} are not made by source {self.predictor_source!r}; choose from {list(known)}"
            raise ValueError(msg)
        if len(set(self.models)) != len(self.models) or not self.models:
            msg = f"models must be distinct names from {list(MODEL_NAMES)}"
            raise ValueError(msg)
        if self.lst_gapfill and self.predictor_source != "modis":
            msg = "lst_gapfill needs predictor_source 'modis' (there is no LST otherwise)"
            raise ValueError(msg)
        return self

    # ------------------------------------------------------------------ resolved settings
    @property
    def features(self) -> tuple[str, ...]:
        """Predictor names in model column order."""
        if self.predictors:
            return self.predictors
        return MODIS_PREDICTORS if self.predictor_source == "modis" else REANALYSIS_PREDICTORS

    @property
    def grid_profile(self) -> str:
        """Hyper-parameter grid profile of the model zoo."""
        return self.grid or str(PROFILES[self.profile]["grid"])

    @property
    def cv_folds(self) -> int:
        """Grid-search CV folds."""
        return self.cv or int(PROFILES[self.profile]["cv"])

    @property
    def stride(self) -> int:
        """Evaluation-day stride."""
        return self.eval_stride or int(PROFILES[self.profile]["eval_stride"])

    def variants(self) -> list[tuple[str, str]]:
        """``(aggregation, lst)`` of the product's variant first, then the compared ones."""
        lst = "none" if "lst_day" not in self.features else "gap-filled" if self.lst_gapfill else "clear-sky"
        out: list[tuple[str, str]] = [(self.aggregation, lst)]
        if self.compare:
            out.append(("mean" if self.aggregation == "nearest" else "nearest", lst))
            if lst != "none":
                out.append((self.aggregation, "clear-sky" if self.lst_gapfill else "gap-filled"))
        return out


# ---------------------------------------------------------------------- stages
def _inputs(cfg: RunConfig, opts: MlDownscaleOptions, run: RunDirectory) -> DownscaleInputs:
    base = cfg.source.parent if cfg.source is not None else Path.cwd()
    reference = [p if p.is_absolute() else (base / p).resolve() for p in opts.fine_reference or ()]
    needs_gapfill = any(lst == "gap-filled" for _, lst in opts.variants())
    return assemble_inputs(
        twin=cfg.inputs.twin, coarse_files=cfg.inputs.coarse_sm, reanalysis_files=cfg.inputs.reanalysis,
        station_folder=cfg.inputs.stations,
        reference_files=reference or None, coarse_product=opts.coarse_product,
        predictor_source=opts.predictor_source, features=opts.features, fine_grid=opts.fine_grid,
        region=cfg.domain.region, start=cfg.period.start, end=cfg.period.end, lst_gapfill=needs_gapfill,
        composite_days=opts.composite_days, max_fill_gap=opts.max_fill_gap, chunks=dict(opts.chunks),
        cube_path=run.sub("product") / "predictors.zarr",
    )


def _train(inputs: DownscaleInputs, opts: MlDownscaleOptions, seed: int, run: RunDirectory) -> list[TrainedVariant]:
    out = []
    for aggregation, lst in opts.variants():
        source = "lst_day_gapfilled" if lst == "gap-filled" else "lst_day"
        cube = inputs.predictors.assign(lst_day=inputs.predictors[source]) if lst != "none" else inputs.predictors
        table = training_table(inputs.coarse, coarse_predictors(cube, opts.features, inputs.coarse_grid,
                                                                 aggregation))  # type: ignore[arg-type]
        rule: Literal["paper", "test"] = "test" if opts.selection == "test" else "paper"
        selector = WindowModelSelector(models=opts.models, grid=opts.grid_profile, selection=rule, cv=opts.cv_folds)
        model = WindowedDownscaler(selector, min_samples=opts.min_samples, n_jobs=opts.n_jobs, on_error="record",
                                   random_state=seed)
        logger.info("training variant %s, LST %s on %d samples", aggregation, lst, len(table))
        with warnings.catch_warnings():
            # Tiny test grids stop the network early by design; its scores are recorded anyway.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(table[["time", *opts.features]], table["target"])
        variant = TrainedVariant(aggregation, lst, model, opts.features, table)
        slug = f"{aggregation}_{lst}"
        model.save(run.sub("models") / slug)
        table.to_parquet(run.sub("tables") / f"training_{slug}.parquet", index=False)
        model.windows_.to_csv(run.sub("tables") / f"windows_{slug}.csv", index=False)
        ranking = pd.concat([model.ranking_table(by=by).assign(rule=by) for by in ("paper", "test")])
        ranking.to_csv(run.sub("tables") / f"ranking_{slug}.csv", index=False)
        out.append(variant)
    return out


def _predict(inputs: DownscaleInputs, variant: TrainedVariant, opts: MlDownscaleOptions, run: RunDirectory) -> Path:
    lazy = predict_fine(inputs.predictors, variant.model, variant.features, lst=variant.cube_lst,
                        combine="ensemble" if opts.selection == "ensemble" else "selected", bounds=opts.sm_range)
    if opts.residual_correction != "none":
        lazy = residual_correct(lazy, inputs.coarse, mode=opts.residual_correction, bounds=opts.sm_range)
    lazy = lazy.chunk(dict(opts.chunks))
    summary = (
        f"Daily surface (0-5 cm) soil moisture downscaled from {opts.coarse_product.upper()} by one model per "
        f"16-day window (Rao et al., 2022): predictors aggregated by {variant.aggregation}, {variant.lst} LST, "
        f"selection rule '{opts.selection}', residual correction '{opts.residual_correction}'."
    )
    path = write_downscaled(
        lazy, run.sub("product") / "ml_downscale.zarr", chunks=opts.chunks, title="ml-downscale soil moisture",
        summary=summary, source="soilfuse ml-downscale recipe",
        extra={"layer": "0-5cm", "ml_downscale_options": json.dumps(opts.model_dump(mode="json"))},
    )
    if opts.netcdf:
        from soilfuse.io import open_gridded, write_netcdf

        write_netcdf(open_gridded(path), run.sub("product") / "ml_downscale.nc")
    return path


@register_recipe("ml-downscale")
def run_ml_downscale(cfg: RunConfig, run: RunDirectory) -> dict[str, Any]:
    """Run the ``ml-downscale`` recipe (see the module docstring); returns its output paths."""
    opts = cfg.options if isinstance(cfg.options, MlDownscaleOptions) else MlDownscaleOptions.model_validate({})
    with run.timer("inputs"):
        inputs = _inputs(cfg, opts, run)
    with run.timer("train"):
        variants = _train(inputs, opts, cfg.seed, run)
    with run.timer("predict"):
        product = _predict(inputs, variants[0], opts, run)
    tables = run.sub("tables")
    with run.timer("evaluate"):
        evaluation = evaluate_variants(inputs, variants, stride=opts.stride, bounds=opts.sm_range,
                                       random_state=cfg.seed)
        comparison = evaluation.table()
        comparison.to_csv(tables / "comparison.csv", index=False)
        headline, sample = product_scores(product, inputs)
        headline.to_csv(tables / "product_scores.csv", index=False)
        validation = validate_at_stations(product, inputs, tables / "validation")
    with run.timer("report"):
        report = build_report(run.sub("report") / "ml_downscale.html", product=product, inputs=inputs,
                              variants=variants, evaluation=evaluation, headline=headline, sample=sample,
                              options=opts, validation=validation)
    figures = headline.set_index("what").astype(object)
    run.record("figures", {"product": figures.where(figures.notna(), None).to_dict(orient="index")})
    outputs: dict[str, Any] = {"product": product, "report": report, "comparison": tables / "comparison.csv",
                               "product_scores": tables / "product_scores.csv"}
    if validation is not None:
        outputs["station_metrics"] = validation
    return outputs
