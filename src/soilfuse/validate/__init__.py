"""Validation: how good is a model or a product, and where.

A guide to the subpackage, in the order a validation usually runs.

Metrics (:mod:`~soilfuse.validate.metrics`)
    NaN-aware numpy kernels over an axis, ``f(obs, pred, axis=-1)``: :func:`pearson_r`,
    :func:`r_squared`, :func:`rmse`, :func:`ubrmse`, :func:`mae`, :func:`bias`
    (``pred - obs``), :func:`nse`, :func:`kge` (2009 or 2012), :func:`g_down`
    (downscaling gain of Merlin et al., 2015) and analytical confidence intervals
    (:func:`pearson_r_ci`, :func:`bias_ci`, :func:`rmse_ci`, :func:`ubrmse_ci`).
    :func:`metrics_table` scores a long table pooled or per group with QA4SM column
    names (``R``, ``p_R``, ``rho``, ``BIAS``, ``RMSD``, ``urmsd``, ``mse``...);
    :func:`pooled_and_median` puts pooled and median-of-stations scores side by side.
    :class:`RunningScores` (:mod:`~soilfuse.validate.running`) pools R, RMSE, ubRMSE
    and bias over batches, for fields too large to score in one pass.

Cross-validation (:mod:`~soilfuse.validate.splitters`)
    scikit-learn splitters that hold out blocks, years or stations:
    :class:`SpatialBlockKFold` (with the pure :func:`block_id`), :class:`YearToYearSplit`,
    :class:`StationToStationSplit`, :class:`RepeatedHoldOut`, :class:`KSStratifiedSplit`.

Summaries (:mod:`~soilfuse.validate.summaries`)
    :func:`stratified_metrics` by layer, season, land cover or climate zone (pooled or
    median of stations), :func:`station_metrics` for maps, :func:`assign_season`.

Importance (:mod:`~soilfuse.validate.importance`)
    :func:`permutation_importance_table` (plain, within blocks, or by feature group)
    and :func:`drop_column_importance` (refit without each feature).

Maps of behaviour
    :func:`trend_test` / :func:`mann_kendall` (Sen's slope and Mann–Kendall),
    :func:`partial_correlation_map` / :func:`partial_correlation`,
    :func:`triple_collocation_map` / :func:`triple_collocation`.

Product against stations (:mod:`~soilfuse.validate.compare`)
    :func:`match_product` pairs a product with station tables; :func:`validate_product`
    writes every table and figure; :func:`validate_files` does it from paths (the
    ``soilfuse validate`` command).

Usage
-----
>>> import numpy as np
>>> from soilfuse.validate import metrics_table, SpatialBlockKFold
>>> obs = np.array([0.10, 0.20, 0.30, 0.40, 0.25, 0.35])
>>> pred = obs + np.array([0.02, -0.01, 0.03, 0.00, 0.01, -0.02])
>>> table = metrics_table(obs, pred, groups=["a", "a", "a", "b", "b", "b"], min_obs=3)
>>> table["BIAS"].round(4).tolist()
[0.0133, -0.0033]
"""

from __future__ import annotations

from soilfuse.validate.collocation import TripleCollocationResult, triple_collocation, triple_collocation_map
from soilfuse.validate.compare import StationTables, match_product, validate_files, validate_product
from soilfuse.validate.importance import drop_column_importance, permutation_importance_table
from soilfuse.validate.metrics import (
    METRICS,
    bias,
    bias_ci,
    g_down,
    g_down_components,
    g_down_table,
    kge,
    mad,
    mae,
    metrics_table,
    mse_decomposition,
    n_pairs,
    nse,
    pearson_r,
    pearson_r_ci,
    pearson_r_pvalue,
    pooled_and_median,
    r_squared,
    rmse,
    rmse_ci,
    spearman_rho,
    spearman_rho_ci,
    ubrmse,
    ubrmse_ci,
)
from soilfuse.validate.partial import partial_correlation, partial_correlation_map
from soilfuse.validate.running import RunningScores
from soilfuse.validate.splitters import (
    KSStratifiedSplit,
    RepeatedHoldOut,
    SpatialBlockKFold,
    StationToStationSplit,
    YearToYearSplit,
    block_id,
    ks_stratified_split,
)
from soilfuse.validate.summaries import (
    CLIMATE_ZONE_NAMES,
    LAND_COVER_NAMES,
    SEASONS,
    assign_season,
    season_of,
    station_metrics,
    stratified_metrics,
)
from soilfuse.validate.trends import TrendResult, mann_kendall, trend_test

__all__ = [
    "CLIMATE_ZONE_NAMES",
    "LAND_COVER_NAMES",
    "METRICS",
    "SEASONS",
    "KSStratifiedSplit",
    "RepeatedHoldOut",
    "RunningScores",
    "SpatialBlockKFold",
    "StationTables",
    "StationToStationSplit",
    "TrendResult",
    "TripleCollocationResult",
    "YearToYearSplit",
    "assign_season",
    "bias",
    "bias_ci",
    "block_id",
    "drop_column_importance",
    "g_down",
    "g_down_components",
    "g_down_table",
    "kge",
    "ks_stratified_split",
    "mad",
    "mae",
    "mann_kendall",
    "match_product",
    "metrics_table",
    "mse_decomposition",
    "n_pairs",
    "nse",
    "partial_correlation",
    "partial_correlation_map",
    "pearson_r",
    "pearson_r_ci",
    "pearson_r_pvalue",
    "permutation_importance_table",
    "pooled_and_median",
    "r_squared",
    "rmse",
    "rmse_ci",
    "season_of",
    "spearman_rho",
    "spearman_rho_ci",
    "station_metrics",
    "stratified_metrics",
    "trend_test",
    "triple_collocation",
    "triple_collocation_map",
    "ubrmse",
    "ubrmse_ci",
    "validate_files",
    "validate_product",
]
