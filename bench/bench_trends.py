"""Benchmark the vectorised Sen's slope + Mann-Kendall test against a per-pixel pymannkendall loop.

Data: ``--ny`` x ``--nx`` pixels (default 200 x 200) of ``--years`` annual values
(default 30): a per-pixel linear trend plus noise rounded to 0.001 (so that ties occur)
and 5 % missing values.

Cases, measured in the same run on the same array:

1. ``soilfuse.validate.mann_kendall`` over all pixels at once (numpy kernel, one thread);
2. ``soilfuse.validate.trend_test`` on the same data as a Dask-backed DataArray
   (threaded scheduler, chunks of 50 x 50 pixels);
3. the baseline: ``pymannkendall.original_test`` called pixel by pixel in a Python loop
   (on ``--loop-pixels`` pixels, all by default; throughput is per pixel either way).

Reported: wall time (untraced call), pixels per second, peak traced memory of a second
call (``tracemalloc``, which numpy reports its buffers to; Dask's threads included), and
the speed ratio vectorised / loop. Agreement on the looped pixels is printed as the largest absolute differences of
slope and p-value.

Run: ``.venv/bin/python bench/bench_trends.py`` (a few minutes for the default size,
nearly all of it in the pymannkendall loop; ``--loop-pixels 4000`` shortens it).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import dask
import numpy as np
import pymannkendall as pmk
import xarray as xr

from soilfuse.validate import mann_kendall, trend_test


def make_data(ny: int, nx: int, years: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    slope = rng.normal(0.0, 0.002, (ny, nx))
    t = np.arange(years)
    values = 0.25 + slope[..., None] * t + rng.normal(0.0, 0.02, (ny, nx, years))
    values = np.round(values, 3)
    values[rng.random(values.shape) < 0.05] = np.nan
    return values


def measure(func: Callable[[], Any]) -> tuple[Any, float, float]:
    """Result, wall seconds and peak traced memory (MiB) of ``func``.

    Timed without tracing (``tracemalloc`` slows Python-level loops several-fold), then
    called again under ``tracemalloc`` for the peak memory.
    """
    t0 = time.perf_counter()
    out = func()
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, elapsed, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ny", type=int, default=200)
    parser.add_argument("--nx", type=int, default=200)
    parser.add_argument("--years", type=int, default=30)
    parser.add_argument("--loop-pixels", type=int, default=None, help="pixels in the pymannkendall loop (default: all)")
    args = parser.parse_args()

    data = make_data(args.ny, args.nx, args.years)
    n_pix = args.ny * args.nx
    print(f"{args.ny} x {args.nx} pixels x {args.years} years ({np.isnan(data).mean():.1%} missing)")

    res, t_vec, mem_vec = measure(lambda: mann_kendall(data))

    cube = xr.DataArray(np.moveaxis(data, -1, 0), dims=("time", "y", "x")).chunk({"time": -1, "y": 50, "x": 50})
    with dask.config.set(scheduler="threads", num_workers=2):
        _, t_dask, mem_dask = measure(lambda: trend_test(cube).compute())

    flat = data.reshape(-1, args.years)
    n_loop = n_pix if args.loop_pixels is None else min(args.loop_pixels, n_pix)
    idx = np.linspace(0, n_pix - 1, n_loop).astype(int)
    loop, t_loop, mem_loop = measure(lambda: [pmk.original_test(flat[i]) for i in idx])

    slope_diff = np.nanmax(np.abs(np.array([r.slope for r in loop]) - res.slope.reshape(-1)[idx]))
    p_diff = np.nanmax(np.abs(np.array([r.p for r in loop]) - res.p.reshape(-1)[idx]))

    rows = [
        ("soilfuse mann_kendall (numpy)", n_pix, t_vec, mem_vec),
        ("soilfuse trend_test (dask, 2 threads)", n_pix, t_dask, mem_dask),
        ("pymannkendall loop", n_loop, t_loop, mem_loop),
    ]
    print(f"{'case':40s} {'pixels':>8s} {'seconds':>9s} {'pixels/s':>11s} {'peak MiB':>9s}")
    for name, n, secs, mem in rows:
        print(f"{name:40s} {n:8d} {secs:9.3f} {n / secs:11.0f} {mem:9.1f}")
    print(
        f"speed ratio vectorised / loop: {(n_pix / t_vec) / (n_loop / t_loop):.0f}x "
        f"(dask: {(n_pix / t_dask) / (n_loop / t_loop):.0f}x)"
    )
    print(f"agreement on {n_loop} looped pixels: max |slope diff| = {slope_diff:.2e}, max |p diff| = {p_diff:.2e}")


if __name__ == "__main__":
    main()
