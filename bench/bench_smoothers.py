"""Benchmark soilfuse's Whittaker and Savitzky–Golay smoothers on a 1000 x 1000 x 365-day cube.

Data: a float32 Dask cube of ``--size`` x ``--size`` pixels (default 1000 x 1000) and
``--days`` daily steps (default 365), generated block by block (never held whole): a
seasonal NDVI-like curve whose amplitude and phase vary in space, plus 0.03 noise, with
``--gaps`` (default 40 %) of the values missing in runs, as cloud gaps are.

Cases, each against a naive per-pixel Python loop measured in the same run on the first
``--subset`` series (default 2000) and extrapolated to the whole cube:

1. ``soilfuse.gapfill.savgol(window=7, order=2)`` vs a loop that, per pixel, fills the
   gaps with ``numpy.interp``, calls ``scipy.signal.savgol_filter`` and blanks the gaps;
2. ``soilfuse.gapfill.whittaker(lmbda=100)`` (fixed λ) vs a per-pixel loop calling
   ``scipy.linalg.solveh_banded`` on ``W + λ DᵀD``, and vs ``whittaker_eilers`` (Rust)
   called pixel by pixel with that pixel's weights;
3. ``soilfuse.gapfill.whittaker(lmbda="vcurve")`` (13 λ on the grid plus the final
   solve) vs the same per-pixel ``solveh_banded`` loop doing the V-curve search.

Reported: wall time, pixel series per second, peak resident memory growth during the
run (psutil, sampled every 20 ms, relative to the resident set before the case), and
the speed ratio soilfuse / loop. The soilfuse cases run on Dask's threaded scheduler
with ``--workers`` threads and end in a reduction of the result (sum and flag count),
so nothing is stored; the cube is regenerated in every case, so the time of a pass
that only generates it is measured first and subtracted (its memory is included).

Run: ``.venv/bin/python bench/bench_smoothers.py`` (about 5-8 minutes on 2 idle cores;
``--size 500`` for a quick look, ``--skip-vcurve`` to leave out the slowest case).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import psutil
import xarray as xr
from scipy.linalg import solveh_banded
from scipy.signal import savgol_filter
from whittaker_eilers import WhittakerSmoother

from soilfuse.gapfill import DEFAULT_LAMBDAS, savgol, whittaker
from soilfuse.gapfill._kernels import difference_bands


# ---------------------------------------------------------------------- data
def _block(block_info: dict[Any, Any] | None = None, *, days: int, gaps: float) -> np.ndarray:
    info = block_info[None] if block_info else {}
    (t0, t1), (y0, y1), (x0, x1) = info["array-location"]
    rng = np.random.default_rng([y0, x0])
    ny, nx = y1 - y0, x1 - x0
    yy, xx = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    amp = 0.2 + 0.15 * np.sin(yy / 97.0) * np.cos(xx / 131.0)
    phase = 0.5 * np.sin((yy + xx) / 211.0)
    t = np.arange(t0, t1)[:, None, None]
    noise = rng.standard_normal((t1 - t0, ny, nx), dtype=np.float32)
    values = (0.3 + amp * np.sin(2 * np.pi * t / 365.0 + phase)).astype("float32") + 0.03 * noise
    # cloud gaps in runs: a gap starts with probability p and lasts ~4 days
    start = rng.random((t1 - t0, ny, nx), dtype=np.float32) < gaps / 4.0
    cloud = start.copy()
    for lag in range(1, 4):
        cloud[lag:] |= start[:-lag]
    values[cloud] = np.nan
    return values.astype("float32")


def make_cube(size: int, days: int, chunk: int, gaps: float) -> xr.DataArray:
    chunks = ((days,), *(((chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())),) * 2)
    data = dsa.map_blocks(_block, chunks=chunks, dtype="float32", days=days, gaps=gaps,
                          meta=np.empty((0, 0, 0), dtype="float32"))
    time_coord = pd.date_range("2019-01-01", periods=days)
    return xr.DataArray(data, dims=("time", "y", "x"), coords={"time": time_coord}, name="ndvi",
                        attrs={"units": "1"})


# ---------------------------------------------------------------------- naive loops
def loop_savgol(series: np.ndarray, window: int, order: int) -> np.ndarray:
    t = np.arange(series.shape[1], dtype="float64")
    out = np.full(series.shape, np.nan)
    for k, y in enumerate(series.astype("float64")):
        ok = np.isfinite(y)
        if not ok.any():
            continue
        filled = np.interp(t, t[ok], y[ok])
        out[k] = np.where(ok, savgol_filter(filled, window, order, mode="interp"), np.nan)
    return out


def _ab(w: np.ndarray, lam: float, bands: np.ndarray) -> np.ndarray:
    """Upper banded form of W + λ DᵀD for scipy.linalg.solveh_banded."""
    d = bands.shape[0] - 1
    n = w.size
    ab = np.zeros((d + 1, n))
    ab[d] = w + lam * bands[0]
    for k in range(1, d + 1):
        ab[d - k, k:] = lam * bands[k, k:]
    return ab


def loop_whittaker(series: np.ndarray, lmbda: float | str, order: int = 2) -> np.ndarray:
    n = series.shape[1]
    bands = difference_bands(n, order)
    grid = np.asarray(DEFAULT_LAMBDAS)
    logs = np.log10(grid)
    out = np.full(series.shape, np.nan)
    for k, y in enumerate(series.astype("float64")):
        w = np.isfinite(y).astype("float64")
        if w.sum() < order + 1:
            continue
        wy = np.where(w > 0, y, 0.0) * w
        if isinstance(lmbda, str):
            points = []
            for lam in grid:
                z = solveh_banded(_ab(w, lam, bands), wy)
                fid = np.sum(w * (np.where(w > 0, y, 0.0) - z) ** 2)
                rough = np.sum(np.diff(z, n=order) ** 2)
                points.append((np.log10(fid + 1e-300), np.log10(rough + 1e-300)))
            f, r = np.array(points).T
            step = np.hypot(np.diff(f), np.diff(r)) / np.diff(logs)
            best = int(np.argmin(step))
            lam_final = 10 ** ((logs[best] + logs[best + 1]) / 2)
        else:
            lam_final = float(lmbda)
        out[k] = solveh_banded(_ab(w, lam_final, bands), wy)
    return out


def loop_whittaker_eilers(series: np.ndarray, lmbda: float, order: int = 2) -> np.ndarray:
    n = series.shape[1]
    out = np.full(series.shape, np.nan)
    smoother = WhittakerSmoother(lmbda=lmbda, order=order, data_length=n, weights=[1.0] * n)
    for k, y in enumerate(series.astype("float64")):
        w = np.isfinite(y).astype("float64")
        smoother.update_weights(list(w))
        out[k] = smoother.smooth(list(np.where(w > 0, y, 0.0)))
    return out


# ---------------------------------------------------------------------- measuring
class PeakRSS:
    """Largest resident-set size seen by a sampling thread while the block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def timed(func: Callable[[], Any]) -> tuple[float, Any, float]:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        result = func()
        elapsed = time.perf_counter() - t0
    return elapsed, result, mem.growth_mb


def reduce_output(ds: xr.Dataset) -> tuple[float, int]:
    name = next(str(k) for k in ds.data_vars if not str(k).endswith(("_flag", "_lambda")))
    total, n_flag = dask.compute(ds[name].sum(), (ds[f"{name}_flag"] == 255).sum())
    return float(total), int(n_flag)


def _run_case(build: Callable[[], xr.Dataset]) -> tuple[float, int]:
    return reduce_output(build())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1000, help="pixels along y and x")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--chunk", type=int, default=250, help="spatial chunk edge of the generated cube")
    parser.add_argument("--gaps", type=float, default=0.4, help="fraction of missing values")
    parser.add_argument("--subset", type=int, default=2000, help="series timed in the naive loops")
    parser.add_argument("--workers", type=int, default=2, help="Dask threads")
    parser.add_argument("--skip-vcurve", action="store_true")
    args = parser.parse_args()

    cube = make_cube(args.size, args.days, args.chunk, args.gaps)
    n_series = args.size * args.size
    sub = cube.isel(y=slice(0, max(1, args.subset // args.size + 1))).values.reshape(args.days, -1)
    sub = np.ascontiguousarray(sub[:, : args.subset].T)
    print(f"cube: {args.size} x {args.size} px x {args.days} days float32 "
          f"({n_series * args.days * 4 / 2**30:.2f} GiB), {args.gaps:.0%} gaps, chunks {args.chunk}; "
          f"{args.workers} threads; loops on {sub.shape[0]} series")

    cases: list[tuple[str, Callable[[], xr.Dataset], list[tuple[str, Callable[[], Any]]]]] = [
        ("savgol w=7 o=2", lambda: savgol(cube, window=7, order=2),
         [("loop interp+savgol_filter", lambda: loop_savgol(sub, 7, 2))]),
        ("whittaker lambda=100", lambda: whittaker(cube, lmbda=100.0),
         [("loop solveh_banded", lambda: loop_whittaker(sub, 100.0)),
          ("loop whittaker_eilers", lambda: loop_whittaker_eilers(sub, 100.0))]),
    ]
    if not args.skip_vcurve:
        cases.append(("whittaker V-curve", lambda: whittaker(cube, lmbda="vcurve"),
                      [("loop solveh_banded V-curve", lambda: loop_whittaker(sub, "vcurve"))]))

    header = f"{'case':<30} {'wall s':>9} {'series/s':>12} {'peak MB':>9} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        gen_s, _, gen_mem = timed(lambda: float(cube.sum()))
    print(f"{'generate the cube only':<30} {gen_s:>9.1f} {n_series / gen_s:>12,.0f} {gen_mem:>9.0f} {'':>8}")
    for label, build, loops in cases:
        with dask.config.set(scheduler="threads", num_workers=args.workers):
            elapsed, _, mem = timed(partial(_run_case, build))
        net = max(elapsed - gen_s, 1e-9)  # the smoother's share: generation is timed above
        rate = n_series / net
        print(f"{'soilfuse ' + label:<30} {net:>9.1f} {rate:>12,.0f} {mem:>9.0f} {'':>8}")
        for loop_label, loop in loops:
            loop_s, _, loop_mem = timed(loop)
            loop_rate = sub.shape[0] / loop_s
            extrapolated = n_series / loop_rate
            print(f"{'  ' + loop_label:<30} {extrapolated:>9.1f} {loop_rate:>12,.0f} {loop_mem:>9.0f} "
                  f"{rate / loop_rate:>7.1f}x")
    print("soilfuse wall s: whole run minus the generation time; loops: extrapolated to the whole cube from the "
          "subset; ratio = soilfuse / loop speed")


if __name__ == "__main__":
    main()
