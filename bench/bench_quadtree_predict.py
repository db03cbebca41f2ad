"""Benchmark: quadtree-st gridded prediction — throughput and peak memory vs domain size.

Fits a six-rotation, six-depth :class:`~soilfuse.models.LayerCascade` of
:class:`~soilfuse.models.QuadtreeEnsemble` on synthetic station data, then predicts a
lazy covariate cube chunk by chunk into a resumable Zarr product
(:func:`soilfuse.predict.predict_cube` + :func:`soilfuse.predict.write_product`) for
square domains of ``--sizes`` cells on a side (each 4x the cells of the one before),
each in a fresh process. Prints pixel-days per second and the peak resident memory
(sampled) of the prediction, next to a baseline measured in the same process: one
bare XGBoost model (``inplace_predict``) on the same feature matrix held in memory.

Regions are computed as many at a time as Dask has workers (two here), so the peak is
that of two chunks in flight; it settles once a domain has enough regions for the two
to coincide at their largest (the smallest domain, with few regions, may stay below).

Run: ``.venv/bin/python bench/bench_quadtree_predict.py [--sizes 200 400 800] [--days 8]``
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import psutil
import xarray as xr

from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords
from soilfuse.models import LayerCascade, QuadtreeEnsemble
from soilfuse.predict import predict_cube, write_product

FEATURES = ["t2m", "lst_mean", "ssr", "tp", "evi", "elevation"]
DEPTHS = ["0cm", "5cm", "10cm", "15cm", "20cm", "40cm"]


class PeakRSS:
    """Samples the process's resident memory every 20 ms while active."""

    def __enter__(self) -> PeakRSS:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fit_model(seed: int = 0) -> LayerCascade:
    rng = np.random.default_rng(seed)
    n_st, n_days = 300, 60
    lon = np.repeat(rng.uniform(100, 104, n_st), n_days)
    lat = np.repeat(rng.uniform(30, 34, n_st), n_days)
    X = pd.DataFrame({"lon": lon, "lat": lat, **{f: rng.normal(size=lon.size) for f in FEATURES}})
    base = X["t2m"] * 5 + 280
    Y = pd.DataFrame({d: base + k + rng.normal(0, 0.5, lon.size) for k, d in enumerate(DEPTHS)})
    est = QuadtreeEnsemble(threshold=30, n_splits=2, param_grid={"n_estimators": [100], "max_depth": [6]},
                           region=(100, 104, 30, 34), random_state=seed)
    return LayerCascade(est, depths=DEPTHS, surface_features=("t2m", "lst_mean"), cv=2, random_state=seed).fit(X, Y)


def cube(n: int, days: int) -> xr.Dataset:
    grid = Grid.latlon((100.0, 104.0, 30.0, 34.0), 4.0 / n)
    chunks = (31, 100, 100)
    data = {f: (("time", "y", "x"), da.random.default_rng(k).normal(size=(days, n, n), chunks=chunks).astype("f4"))
            for k, f in enumerate(FEATURES)}
    ds = xr.Dataset(data, coords={"time": pd.date_range("2019-01-01", periods=days)})
    return with_grid(ds, grid)


def run_pipeline(model: LayerCascade, n: int, days: int) -> tuple[float, int]:
    levels = [float(d.removesuffix("cm")) for d in DEPTHS]
    columns = ["lon", "lat", *FEATURES]

    def fn(table: pd.DataFrame) -> dict[str, np.ndarray]:
        mean, spread = model.predict_spread(table[columns])
        return {"st": mean, "st_spread": spread}

    lazy = predict_cube(cube(n, days), fn, outputs={"st": {"units": "K"}, "st_spread": {"units": "K"}},
                        depth=depth_coords(levels, levels), required=["t2m"])
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as mem:
        t0 = time.perf_counter()
        write_product(lazy, Path(tmp) / "p.zarr", chunks={"time": 31, "y": 100, "x": 100}, progress=False)
        seconds = time.perf_counter() - t0
    return n * n * days / seconds, mem.peak


def run_bare(model: LayerCascade, n: int, days: int) -> tuple[float, int]:
    booster = model.estimators_[0].global_model_.get_booster()
    rows = n * n * days
    with PeakRSS() as mem:
        X = np.random.default_rng(0).normal(size=(rows, len(FEATURES))).astype("f4")
        t0 = time.perf_counter()
        booster.inplace_predict(X)
        seconds = time.perf_counter() - t0
    return rows / seconds, mem.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 400, 800], help="domain edges in cells")
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is None:
        # every measurement in a fresh process, so peak RSS is not inherited from the last one
        peaks = []
        for n in args.sizes:
            done = subprocess.run([sys.executable, __file__, "--one", str(n), "--days", str(args.days)], check=True,
                                  capture_output=True, text=True)
            line = done.stdout.strip().splitlines()[-1]
            print(line)
            peaks.append(float(line.rsplit("peak RSS ", 1)[1].split()[0]))
        for (a, pa), (b, pb) in itertools.pairwise(zip(args.sizes, peaks, strict=True)):
            print(f"peak RSS of the prediction, {b}^2 vs {a}^2 ({(b / a) ** 2:.0f}x the cells): {pb / pa:.2f}x")
        return
    with dask.config.set(scheduler="threads", num_workers=2):
        model = fit_model()
        # the pipeline first: the baseline's in-memory matrix would otherwise stay in the RSS
        rate, peak = run_pipeline(model, args.one, args.days)
        base_rate, base_mem = run_bare(model, args.one, args.days)
    print(f"{args.one}^2 x {args.days} d: bare XGBoost (1 model, in memory) {base_rate:,.0f} pixel-days/s, "
          f"peak RSS {base_mem / 2**20:.0f} MiB | soilfuse (36 models/pixel-day, chunked, Zarr) "
          f"{rate:,.0f} pixel-days/s = {rate / base_rate:.3f} x bare, peak RSS {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
