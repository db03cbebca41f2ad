"""Prediction of the ``ml-downscale`` product: per-window models over the fine cube.

* :func:`predict_fine` — the lazy daily fine soil moisture and its flag, each pixel-day
  predicted by the model of its 16-day window (:func:`soilfuse.predict.predict_cube`).
* :func:`residual_correction_kernel` / :func:`residual_correct` — the optional
  correction that makes the fine field's area-weighted mean over every coarse cell
  equal the coarse observation of that day.
* :func:`write_downscaled` — the Zarr product (CF-1.10 + ACDD), resumable.

Flag layer ``sm_flag`` (uint8)
------------------------------
=======  ===================================================================
bits     meaning
=======  ===================================================================
0-2      model of the window: 0 MLR, 1 SVR, 2 ANN, 3 RF, 4 XGB, 5 mean of all models
3 (8)    the window had too few samples; the previous window's model was used
4 (16)   the pixel-day's LST was gap-filled (all-weather variant)
5 (32)   another predictor of the pixel-day was gap-filled
6 (64)   residual-corrected to the coarse observation of that day
255      no value (a predictor missing, or not land)
=======  ===================================================================

Residual correction
-------------------
The residual of a day is the coarse observation minus the fine field averaged over
each coarse cell (area-weighted, exactly as :func:`soilfuse.regrid.aggregate`
averages the valid pixels). Two corrections are offered (Gao et al., 2012, §2.4;
pyDMS adds its residual interpolated to the fine grid):

``"smooth"``
    The residual, interpolated bilinearly from the observed cells to every pixel, is
    added. Smooth across cell edges; the aggregated field matches the coarse one only
    approximately. Pixels with no observed cell around keep the model value.
``"exact"``
    ``"smooth"``, then the smallest per-pixel change (least squares) that makes every
    observed cell's mean equal its observation: with ``A`` the normalised averaging
    matrix (observed cells × valid pixels) it is ``Aᵀν`` with ``A clip(f + Aᵀν) = c``,
    solved by a semismooth Newton iteration (an active-set method: pixels at the
    physical bounds are held until the correction points back inside). Pixels in one
    cell move together, pixels straddling cells by an area-weighted mix, so the product
    aggregated back reproduces the coarse input to rounding error, unless every pixel
    of a cell sits at a bound.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse
from scipy.sparse.linalg import spsolve

from soilfuse._typing import FloatArray
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import acdd_attrs
from soilfuse.models.window import WindowedDownscaler
from soilfuse.predict import predict_cube, write_product
from soilfuse.recipes._ml_downscale_data import FLAG_LST_FILLED
from soilfuse.regrid import Regridder
from soilfuse.variables import VARIABLES

__all__ = [
    "ENSEMBLE_CODE",
    "FLAG_CORRECTED",
    "FLAG_MEANINGS",
    "FLAG_MISSING",
    "FLAG_REUSED",
    "flag_attrs",
    "predict_fine",
    "residual_correct",
    "residual_correction_kernel",
    "write_downscaled",
]

logger = logging.getLogger(__name__)

#: Flag bit: the window's own model was missing; the previous window's was used.
FLAG_REUSED = 8
#: Model code (flag bits 0-2) of the ensemble mean of all models.
ENSEMBLE_CODE = 5
#: Flag bit: residual-corrected to the coarse observation.
FLAG_CORRECTED = 64
#: Flag value of a pixel-day without a value.
FLAG_MISSING = 255
#: ``(mask, value, meaning)`` of every flag (CF ``flag_masks``/``flag_values``).
FLAG_MEANINGS: tuple[tuple[int, int, str], ...] = (
    (7, 0, "model_mlr"), (7, 1, "model_svr"), (7, 2, "model_ann"), (7, 3, "model_rf"), (7, 4, "model_xgb"),
    (7, ENSEMBLE_CODE, "model_ensemble_mean"),
    (8, 8, "previous_window_model"), (16, 16, "lst_gap_filled"), (32, 32, "predictor_gap_filled"),
    (64, 64, "residual_corrected"),
)

_EPOCH = np.datetime64("1970-01-01", "D")
_MAX_STEPS = 50
#: Memory budget of one residual-correction task (bytes): whole images, a few days.
_TASK_BYTES = 512 * 2**20
_TOLERANCE = 1e-10


def flag_attrs() -> dict[str, Any]:
    """CF attributes of ``sm_flag``."""
    return {
        "long_name": "provenance flag of sm",
        "flag_masks": np.array([m for m, _, _ in FLAG_MEANINGS], dtype="uint8"),
        "flag_values": np.array([v for _, v, _ in FLAG_MEANINGS], dtype="uint8"),
        "flag_meanings": " ".join(name for _, _, name in FLAG_MEANINGS),
        "comment": f"{FLAG_MISSING}: no value",
    }


# ---------------------------------------------------------------------- prediction
def _day_numbers(cube: xr.Dataset) -> xr.DataArray:
    """Days since 1970 of every pixel-day, lazily broadcast like the cube's time axis.

    :func:`soilfuse.predict.cube_to_frame` passes the day of year only; the window of a
    row needs the date, so it travels as a column.
    """
    days = (cube["time"].values.astype("datetime64[D]") - _EPOCH).astype("float64")
    da = xr.DataArray(days, dims="time", coords={"time": cube["time"]})
    if cube.chunks:
        da = da.chunk({"time": cube.chunks["time"]})
    template = next(v for v in cube.data_vars.values() if {"time", "y", "x"} <= set(v.dims))
    return (da + xr.zeros_like(template, dtype="float64")).transpose("time", "y", "x")


def predict_fine(
    predictors: xr.Dataset,
    model: WindowedDownscaler,
    features: Sequence[str],
    *,
    lst: str = "lst_day",
    combine: Literal["selected", "ensemble"] = "selected",
    bounds: tuple[float, float] = (0.0, 0.6),
) -> xr.Dataset:
    """Lazy daily fine soil moisture ``sm`` (m³ m⁻³) and ``sm_flag`` from a fitted downscaler.

    Parameters
    ----------
    predictors : xarray.Dataset
        The fine predictor cube (Dask-chunked) with ``input_flag``.
    model : WindowedDownscaler
        Fitted on the coarse-grid samples of ``features``.
    features : sequence of str
        Column order of the model.
    lst : str
        Cube variable used as ``lst_day`` (``"lst_day_gapfilled"`` for all-weather).
    combine : {"selected", "ensemble"}
        Each window's selected model (Rao et al., 2022), or the mean of all its models.
    bounds : (float, float)
        Physical range the prediction is clipped to (m³ m⁻³).

    Returns
    -------
    xarray.Dataset
        ``sm`` (float32) and ``sm_flag`` (uint8, see the module docstring), lazy.
    """
    feats = list(features)
    columns = {name: (lst if name == "lst_day" else name) for name in feats}
    extra = {"input_flag"} | ({"lst_day"} if "lst_day" in predictors.data_vars else set())
    cube = predictors[sorted(set(columns.values()) | extra)]
    cube = cube.assign(_day=_day_numbers(cube))
    lo, hi = bounds

    def fn(table: pd.DataFrame) -> dict[str, FloatArray]:
        X = pd.DataFrame({name: table[col].to_numpy() for name, col in columns.items()}, index=table.index)
        dates = _EPOCH + table["_day"].to_numpy().astype("int64").astype("timedelta64[D]")
        if combine == "ensemble":
            sm = np.clip(model.predict_all(X[feats], dates=dates).to_numpy().mean(axis=1), lo, hi)
            reused = model.model_flag(dates)[1]
            code = np.full(sm.size, ENSEMBLE_CODE)
        else:
            sm = np.clip(model.predict(X[feats], dates=dates), lo, hi)
            code, reused = model.model_flag(dates)
        flag = code.astype("int64") | np.where(reused, FLAG_REUSED, 0) | table["input_flag"].to_numpy().astype("int64")
        if lst != "lst_day" and "lst_day" in table:
            flag |= np.where(np.isnan(table["lst_day"].to_numpy()), FLAG_LST_FILLED, 0)
        return {"sm": sm, "sm_flag": flag.astype("float64")}

    outputs = {"sm": VARIABLES["sm"].attrs(), "sm_flag": flag_attrs()}
    raw = predict_cube(cube, fn, outputs=outputs, required=list(set(columns.values())))
    flag = raw["sm_flag"].fillna(FLAG_MISSING).astype("uint8")
    flag.attrs = flag_attrs()
    out = xr.Dataset({"sm": raw["sm"], "sm_flag": flag})
    return with_grid(out, Grid.from_dataset(predictors))


# ---------------------------------------------------------------------- residual correction
def _exact_shift(f: FloatArray, c: FloatArray, A: sparse.csr_array, lo: float, hi: float) -> FloatArray:
    """Solve ``A clip(f + Aᵀν) = c`` for ν by semismooth Newton; return ``clip(f + Aᵀν)``.

    Without bounds one step solves the linear system exactly; with bounds the free set
    (pixels strictly inside the bounds) is re-evaluated after every step.
    """
    At = sparse.csr_array(A.T)
    nu = np.zeros(A.shape[0])
    u = f.copy()
    x = np.clip(u, lo, hi)
    for _ in range(_MAX_STEPS):
        residual = c - A @ x
        if np.abs(residual).max() <= _TOLERANCE:
            break
        free = ((u > lo) & (u < hi)).astype("float64")
        AD = sparse.csr_array(A @ sparse.diags_array(free))
        rows = np.flatnonzero(np.asarray(AD.sum(axis=1)).ravel() > 0)
        if rows.size == 0:
            break
        jac = (AD[rows] @ At[:, rows]).tocsc()
        # A tiny ridge keeps the system solvable when two cells see the same pixels
        # (coinciding rows); it changes the result by ~1e-12 relative.
        ridge = 1e-12 * float(jac.diagonal().max())
        step = spsolve(jac + ridge * sparse.identity(rows.size, format="csc"), residual[rows])
        nu[rows] += np.atleast_1d(step)
        u = f + At @ nu
        x = np.clip(u, lo, hi)
    return np.asarray(x, dtype="float64")


def residual_correction_kernel(
    fine: FloatArray,
    coarse: FloatArray,
    *,
    weights: sparse.csr_array,
    interpolation: sparse.csr_array,
    exact: bool = True,
    bounds: tuple[float, float] = (0.0, 0.6),
) -> tuple[FloatArray, np.ndarray]:
    """Correct fine fields towards the coarse observations (see the module docstring).

    Parameters
    ----------
    fine : numpy.ndarray
        ``(..., ny, nx)`` fine fields (NaN = no value), m³ m⁻³.
    coarse : numpy.ndarray
        ``(..., nyc, nxc)`` coarse observations on the same leading steps (NaN = none).
    weights : scipy.sparse.csr_array
        Overlap areas ``(coarse cells, fine cells)`` (``Regridder(fine, coarse, "mean").weights``).
    interpolation : scipy.sparse.csr_array
        Bilinear weights ``(fine cells, coarse cells)`` (``Regridder(coarse, fine, "bilinear").weights``).
    exact : bool
        Finish with the exact per-cell correction (``"exact"``) or not (``"smooth"``).
    bounds : (float, float)
        Physical range of the result (m³ m⁻³); values outside it are clipped first.

    Returns
    -------
    corrected : numpy.ndarray
        Same shape and dtype as ``fine``.
    touched : numpy.ndarray of bool
        Pixels that received a correction.

    Examples
    --------
    Two coarse cells of two pixels each (the last pixel has no value). The residuals
    +0.05 and +0.1 are interpolated (the inner pixels take half of each: +0.075), then
    the first cell is shifted by −0.0125 to restore its mean exactly:

    >>> from scipy import sparse
    >>> w = sparse.csr_array(np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
    >>> b = sparse.csr_array(np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]]))
    >>> out, hit = residual_correction_kernel(np.array([[0.1, 0.3, 0.2, np.nan]]), np.array([[0.25, 0.3]]),
    ...                                       weights=w, interpolation=b)
    >>> out.round(3).tolist(), hit.tolist()
    ([[0.138, 0.363, 0.3, nan]], [[True, True, True, False]])
    """
    lead = fine.shape[:-2]
    f2 = fine.reshape(-1, fine.shape[-2] * fine.shape[-1]).astype("float64")
    c2 = coarse.reshape(-1, coarse.shape[-2] * coarse.shape[-1]).astype("float64")
    lo, hi = bounds
    out = np.clip(f2, lo, hi)
    touched = np.zeros(f2.shape, dtype=bool)
    for t in range(f2.shape[0]):
        valid = np.flatnonzero(np.isfinite(f2[t]))
        if valid.size == 0:
            continue
        area = sparse.csr_array(weights[:, valid])
        total = np.asarray(area.sum(axis=1)).ravel()
        keep = np.flatnonzero((total > 0) & np.isfinite(c2[t]))
        if keep.size == 0:
            continue
        A = sparse.csr_array(sparse.diags_array(1.0 / total[keep]) @ area[keep])
        x = out[t, valid]
        residual = np.full(c2.shape[1], np.nan)
        residual[keep] = c2[t, keep] - A @ x
        shift = _interpolate(interpolation[valid], residual)
        hit = np.isfinite(shift)
        x = np.clip(x + np.where(hit, shift, 0.0), lo, hi)
        if exact:
            before = x
            x = _exact_shift(x, c2[t, keep], A, lo, hi)
            hit |= x != before
            left = float(np.abs(c2[t, keep] - A @ x).max())
            if left > _TOLERANCE:
                logger.info("residual correction: step %d keeps a residual of %.2g (a cell has all pixels at a bound)",
                            t, left)
        out[t, valid] = x
        touched[t, valid] = hit
    out[~np.isfinite(f2)] = np.nan
    shape = (*lead, fine.shape[-2], fine.shape[-1])
    return out.astype(fine.dtype).reshape(shape), touched.reshape(shape)


def _interpolate(weights: sparse.csr_array, coarse: FloatArray) -> FloatArray:
    """NaN-aware interpolation: weights renormalised over the finite coarse values."""
    ok = np.isfinite(coarse)
    num = weights @ np.where(ok, coarse, 0.0)
    den = weights @ ok.astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def residual_correct(
    fine: xr.Dataset,
    coarse: xr.DataArray,
    *,
    mode: Literal["smooth", "exact"] = "exact",
    bounds: tuple[float, float] = (0.0, 0.6),
) -> xr.Dataset:
    """Apply :func:`residual_correction_kernel` lazily, a few days of whole images per task.

    Each task holds whole images (every coarse cell needs all its pixels) of at most the
    days of one input chunk, fewer if needed to stay within about 512 MiB of working
    memory. Written region by region, a product
    split into several spatial tiles recomputes the day's prediction for each tile;
    choose ``chunks`` covering the domain in ``y``/``x`` where memory allows.

    Parameters
    ----------
    fine : xarray.Dataset
        ``sm`` and ``sm_flag`` on the fine grid (lazy).
    coarse : xarray.DataArray
        Coarse observations ``(time, y, x)`` on their own grid (any CRS).
    mode : {"smooth", "exact"}
        See the module docstring.
    bounds : (float, float)
        Physical range (m³ m⁻³).

    Returns
    -------
    xarray.Dataset
        Corrected ``sm``, and ``sm_flag`` with :data:`FLAG_CORRECTED` where a pixel
        was corrected.
    """
    fine_grid, coarse_grid = Grid.from_dataset(fine), Grid.from_dataset(coarse)
    kwargs = {
        "weights": Regridder(fine_grid, coarse_grid, "mean").weights,
        "interpolation": Regridder(coarse_grid, fine_grid, "bilinear").weights,
        "exact": mode == "exact", "bounds": bounds,
    }
    # whole images per task; at most the days of one prediction chunk (a product region then
    # needs no other region's prediction) and as few as keep a task within the memory budget
    current = max(fine["sm"].chunksizes["time"]) if fine["sm"].chunks is not None else int(fine.sizes["time"])
    days = max(1, min(current, _TASK_BYTES // (8 * 6 * fine.sizes["y"] * fine.sizes["x"])))
    sm = fine["sm"].chunk({"time": days, "y": -1, "x": -1})
    obs = coarse.reindex(time=fine["time"].values).drop_vars("spatial_ref", errors="ignore")
    obs = obs.rename({"y": "yc", "x": "xc"}).astype("float64")
    if sm.chunks is not None:
        obs = obs.chunk({"time": sm.chunksizes["time"], "yc": -1, "xc": -1})
    value, touched = xr.apply_ufunc(
        residual_correction_kernel, sm, obs,
        input_core_dims=[["y", "x"], ["yc", "xc"]], output_core_dims=[["y", "x"], ["y", "x"]],
        kwargs=kwargs, dask="parallelized", output_dtypes=[sm.dtype, bool],
    )
    value = value.transpose("time", "y", "x")
    flag = xr.where(touched.transpose("time", "y", "x"), fine["sm_flag"] | np.uint8(FLAG_CORRECTED), fine["sm_flag"])
    value.attrs = dict(fine["sm"].attrs)
    flag = flag.astype("uint8")
    flag.attrs = dict(fine["sm_flag"].attrs)
    return with_grid(xr.Dataset({"sm": value, "sm_flag": flag}), fine_grid)


# ---------------------------------------------------------------------- product
def write_downscaled(
    product: xr.Dataset,
    path: Path,
    *,
    chunks: Mapping[str, int],
    title: str,
    summary: str,
    source: str,
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Write a lazy product to a resumable Zarr store with CF-1.10 + ACDD attributes."""
    references = ("Rao et al. (2022): Daily soil moisture mapping at 1 km resolution based on SMAP data for "
                  "desertification areas in Northern China, Earth Syst. Sci. Data")
    attrs = acdd_attrs(product, title=title, summary=summary, source=source, references=references,
                       **dict(extra or {}))
    return write_product(product, path, chunks=dict(chunks), attrs=attrs, progress=progress)

