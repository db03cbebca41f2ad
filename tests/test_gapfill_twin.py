"""Gap-fillers on the synthetic twin (``small``: 64 x 64 cells, 120 days), scored against truth.

Each filler is scored on the pixels it filled, against the twin's cloud-free truth,
and must beat a climatology baseline: the per-pixel mean of the clear values of the
120-day run. Figures measured when the thresholds were set are in the comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
import xarray as xr

from soilfuse import gapfill, preprocess
from soilfuse.twin.config import TwinConfig
from soilfuse.twin.observe_optical import observe_optical
from soilfuse.twin.world import World, make_world


@dataclass
class Twin:
    world: World
    lst_day: xr.DataArray
    lst_night: xr.DataArray
    ndvi: xr.DataArray
    evi: xr.DataArray


@pytest.fixture(scope="module")
def twin() -> Twin:
    world = make_world(TwinConfig.from_size("small"))
    modis = observe_optical(world).compute()
    day = preprocess.screen_qc(modis["lst_day"], modis["qc_day"], product="MOD11")
    night = preprocess.screen_qc(modis["lst_night"], modis["qc_night"], product="MOD11")
    return Twin(world, day, night, preprocess.ndvi(modis), preprocess.evi(modis))


def scores(filled: xr.Dataset, name: str, codes: list[int], truth: xr.DataArray,
           observed: xr.DataArray) -> tuple[float, float, int]:
    """RMSE of the filler and of the clear-value climatology on the pixels flagged ``codes``."""
    sel = np.isin(filled[f"{name}_flag"].values, codes)
    climatology = observed.mean("time").broadcast_like(truth)
    err = (filled[name] - truth).values[sel]
    base = (climatology - truth).values[sel]
    return float(np.sqrt(np.nanmean(err**2))), float(np.sqrt(np.nanmean(base**2))), int(sel.sum())


def rmse_on(out: xr.Dataset, name: str, truth: xr.DataArray, sel: np.ndarray) -> float:
    """RMSE of ``out[name]`` against ``truth`` on the values selected by ``sel``."""
    return float(np.sqrt(np.mean((out[name] - truth).values[sel] ** 2)))


def run_lengths(missing: np.ndarray) -> np.ndarray:
    """Length of the run of consecutive missing days each missing value belongs to (0 if observed)."""
    out = np.zeros(missing.shape, dtype=int)
    nt = missing.shape[0]
    for idx in np.ndindex(missing.shape[1:]):
        series = missing[(slice(None), *idx)]
        k = 0
        while k < nt:
            if series[k]:
                end = k
                while end < nt and series[end]:
                    end += 1
                out[(slice(k, end), *idx)] = end - k
                k = end
            else:
                k += 1
    return out


@pytest.mark.parametrize("which", ["lst_day", "lst_night"])
def test_fill_spatiotemporal__twin_lst_beats_climatology(twin: Twin, which: str) -> None:
    observed = getattr(twin, which)
    out = gapfill.fill_spatiotemporal(observed, max_gap=16)
    rmse, clim, n = scores(out, which, [1, 2], twin.world.truth[which], observed)
    assert n > 0.5 * observed.size * float(observed.isnull().mean())
    # measured (day): 3.2 K vs 6.4 K on 307,000 filled values
    assert rmse < 0.65 * clim and rmse < 4.5
    assert float((out[f"{which}_flag"] == 255).mean()) < 0.02


def test_savgol__twin_lst_after_fill_beats_climatology(twin: Twin) -> None:
    out = gapfill.savgol(gapfill.fill_spatiotemporal(twin.lst_day), window=7, order=2)
    rmse, clim, _ = scores(out, "lst_day", [1, 2], twin.world.truth["lst_day"], twin.lst_day)
    assert rmse < 0.65 * clim and rmse < 4.5  # measured 3.2 K vs 6.4 K


@pytest.mark.parametrize(("index", "rule"), [("ndvi", "vcurve"), ("evi", "gcv")])
def test_whittaker__twin_vegetation_index_beats_climatology(twin: Twin, index: str,
                                                           rule: Literal["vcurve", "gcv"]) -> None:
    observed = getattr(twin, index)
    out = gapfill.whittaker(observed, lmbda=rule)
    rmse, clim, n = scores(out, index, [1], twin.world.truth[index], observed)
    assert n > 200_000
    assert rmse < 0.6 * clim  # measured NDVI 0.050 vs 0.147 (V-curve)
    assert rmse < 0.1


@pytest.mark.slow
def test_stdf_fill__twin_lst_beats_climatology(twin: Twin) -> None:
    out = gapfill.stdf_fill(twin.lst_day, twin.world.truth["ndvi"], twin.world.static["elevation"])
    rmse, clim, n = scores(out, "lst_day", [3], twin.world.truth["lst_day"], twin.lst_day)
    assert n > 250_000
    assert rmse < 0.75 * clim and rmse < 5.0  # measured 3.9 K vs 6.5 K


@pytest.mark.slow
def test_stdf_fill__beats_linear_interpolation_under_long_cloud_runs(twin: Twin) -> None:
    """Clouds that stay >= 8 days over scattered patches: STDF uses the clear pixels of the same day.

    Truth LST of the twin plus 0.7 K sensor noise under a mask of 260 round patches
    (radius 2-6 cells) that each stay 8-12 days, ~23 % of the values.
    """
    truth = twin.world.truth["lst_day"]
    rng = np.random.default_rng(3)
    nt, ny, nx = truth.shape
    yy, xx = np.mgrid[:ny, :nx]
    cloud = np.zeros(truth.shape, dtype=bool)
    for _ in range(260):
        start, length, radius = rng.integers(0, nt), rng.integers(8, 13), rng.uniform(2, 6)
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        cloud[start:start + length] |= ((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2)[None]
    observed = truth.where(~cloud) + rng.normal(0, 0.7, truth.shape)
    ndvi, dem = twin.world.truth["ndvi"], twin.world.static["elevation"]
    stdf = gapfill.stdf_fill(observed, ndvi, dem)
    tuned = gapfill.stdf_fill(observed, ndvi, dem, weighting="inverse_distance", tiles=(16, 32))
    linear = gapfill.fill_spatiotemporal(observed, max_gap=200)
    long_runs = (run_lengths(cloud) >= 8) & (stdf["lst_day_flag"].values == 3) & (
        tuned["lst_day_flag"].values == 3) & (linear["lst_day_flag"].values == 1)
    rmse_stdf, rmse_tuned, rmse_linear = (rmse_on(out, "lst_day", truth, long_runs) for out in (stdf, tuned, linear))
    assert long_runs.sum() > 50_000
    assert rmse_stdf < 0.9 * rmse_linear  # measured 2.64 K vs 3.71 K
    assert rmse_tuned < 0.6 * rmse_linear  # measured 1.89 K (inverse-distance weights, 16/32-cell tiles)


@pytest.mark.slow
def test_stdf_fill__night_lst_beats_linear_under_the_twins_own_long_cloud_runs(twin: Twin) -> None:
    """Night LST, the paper's own STDF input (Aqua ~01:30, MYD21A1N), under the twin's clouds.

    Scored where both fillers filled (~64 % of the night values are missing). Measured
    on runs of >= 8 missing days: 1.85 K (bias -0.94 K) vs 2.82 K (-1.63 K) for linear
    interpolation; all filled values 2.20 vs 3.11 K (seeds 1 and 2: 2.49 vs 4.03 K and
    2.22 vs 3.40 K on long runs). Night LST follows the air temperature, and the same
    night's clear pixels carry that night's weather to the cloudy ones through the fit;
    linear interpolation bridges 8+ days of weather from the clear nights at the ends,
    the coldest ones. By day the test below shows the opposite.
    """
    truth, observed = twin.world.truth["lst_night"], twin.lst_night
    stdf = gapfill.stdf_fill(observed, twin.world.truth["ndvi"], twin.world.static["elevation"])
    linear = gapfill.fill_spatiotemporal(observed, max_gap=200)
    filled = (linear["lst_night_flag"].values == 1) & (stdf["lst_night_flag"].values == 3)
    long_runs = filled & (run_lengths(observed.isnull().values) >= 8)

    def rmse(out: xr.Dataset, sel: np.ndarray) -> float:
        return rmse_on(out, "lst_night", truth, sel)

    assert long_runs.sum() > 100_000 and filled.sum() > 250_000
    assert rmse(stdf, long_runs) < 0.8 * rmse(linear, long_runs)
    assert rmse(stdf, filled) < 0.8 * rmse(linear, filled)


@pytest.mark.slow
def test_stdf_fill__options_help_under_the_twins_own_long_cloud_runs(twin: Twin) -> None:
    """Day LST under the twin's own rain-correlated clouds (~63 % missing), scored where all four filled.

    Inverse-distance weighting of the reference dates and 16/32-cell tiles beat the
    paper's settings, and the reanalysis air temperature as a covariate helps further,
    but neither beats temporal linear interpolation on runs of >= 8 missing days:
    measured 4.62 K (paper) / 4.27 K (tuned) / 4.10 K (tuned + t2m) vs 3.65 K (linear);
    all filled values 3.77 / 3.38 / 3.26 vs 3.18 K. STDF stays ~2 K too warm here
    because its fits see only the clear pixels of the day, while the twin's LST under
    cloud carries the cloudy day's cooler air and wetter soil; the covariate brings the
    warm bias on long runs from +2.24 to +1.67 K.
    """
    from soilfuse.regrid import regrid
    from soilfuse.twin.observe_grids import observe_grids

    truth, observed = twin.world.truth["lst_day"], twin.lst_day
    ndvi, dem = twin.world.truth["ndvi"], twin.world.static["elevation"]
    air = regrid(observe_grids(twin.world)["reanalysis"]["t2m"], twin.world.config.grid, method="bilinear")
    air = air.assign_coords(time=observed.time.values, y=observed.y.values, x=observed.x.values)
    paper = gapfill.stdf_fill(observed, ndvi, dem)
    tuned = gapfill.stdf_fill(observed, ndvi, dem, weighting="inverse_distance", tiles=(16, 32))
    covariate = gapfill.stdf_fill(observed, ndvi, dem, weighting="inverse_distance", tiles=(16, 32), covariate=air)
    linear = gapfill.fill_spatiotemporal(observed, max_gap=200)
    filled = (linear["lst_day_flag"].values == 1) & (paper["lst_day_flag"].values == 3) & (
        tuned["lst_day_flag"].values == 3) & (covariate["lst_day_flag"].values == 3)
    long_runs = filled & (run_lengths(observed.isnull().values) >= 8)

    def rmse(out: xr.Dataset, sel: np.ndarray) -> float:
        return rmse_on(out, "lst_day", truth, sel)

    assert long_runs.sum() > 100_000 and filled.sum() > 250_000
    assert rmse(tuned, long_runs) < 0.96 * rmse(paper, long_runs)
    assert rmse(tuned, filled) < 0.95 * rmse(paper, filled)
    assert rmse(covariate, long_runs) < 0.98 * rmse(tuned, long_runs)
    assert rmse(covariate, filled) < 0.98 * rmse(tuned, filled)
    assert rmse(covariate, long_runs) < 1.2 * rmse(linear, long_runs)  # the gap to linear, measured 1.12
