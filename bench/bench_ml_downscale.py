"""Benchmark: prediction throughput and peak memory of the ``ml-downscale`` product writer.

A windowed downscaler (five models, ``test`` grids) is fitted on random samples and
applied to a lazy random predictor cube of 14 variables, written region by region to
a Zarr store (:func:`soilfuse.recipes._ml_downscale_predict.predict_fine` and
``write_downscaled``), for two cube lengths. Bounded memory shows as a peak RSS that
does not grow with the number of days.

    python bench/bench_ml_downscale.py [--size 400] [--days 64 256] [--selection ensemble]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import warnings
from pathlib import Path

import dask.array as dsa
import numpy as np
import pandas as pd
import psutil
import xarray as xr

from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.models.window import WindowedDownscaler, WindowModelSelector
from soilfuse.recipes._ml_downscale_data import MODIS_PREDICTORS
from soilfuse.recipes._ml_downscale_predict import predict_fine, write_downscaled

_STATIC = {"elevation", "slope", "aspect", "sand", "silt", "clay"}


def _cube(size: int, days: int) -> xr.Dataset:
    grid = Grid.latlon((100.0, 100.0 + 0.01 * size, 30.0, 30.0 + 0.01 * size), 0.01)
    time_ = pd.date_range("2020-01-01", periods=days)
    chunks = (32, min(size, 512), min(size, 512))
    data: dict[str, tuple[tuple[str, ...], dsa.Array]] = {}
    for k, name in enumerate(MODIS_PREDICTORS):
        rs = dsa.random.RandomState(k)
        if name in _STATIC:
            data[name] = (("y", "x"), rs.random_sample((size, size), chunks=chunks[1:]).astype("float32"))
        else:
            data[name] = (("time", "y", "x"), rs.random_sample((days, size, size), chunks=chunks).astype("float32"))
    data["input_flag"] = (("time", "y", "x"), dsa.zeros((days, size, size), chunks=chunks, dtype="uint8"))
    return with_grid(xr.Dataset(data, coords={"time": time_}), grid)


def _model(days: int) -> WindowedDownscaler:
    rng = np.random.default_rng(0)
    n = 150 * (days // 16 + 1)
    X = pd.DataFrame(rng.random((n, len(MODIS_PREDICTORS))), columns=list(MODIS_PREDICTORS))
    X.insert(0, "time", pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, days, n), "D"))
    y = 0.1 + 0.2 * X["lst_day"] + 0.05 * rng.standard_normal(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WindowedDownscaler(WindowModelSelector(grid="test", cv=3), progress=False, random_state=0).fit(X, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400, help="cube edge (cells)")
    parser.add_argument("--days", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--selection", choices=("selected", "ensemble"), default="selected")
    args = parser.parse_args()
    proc = psutil.Process()
    for days in args.days:
        model = _model(days)
        base = proc.memory_info().rss
        peak = [base]
        done = threading.Event()

        def watch(peak: list[int] = peak, done: threading.Event = done) -> None:
            while not done.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                time.sleep(0.1)

        threading.Thread(target=watch, daemon=True).start()
        lazy = predict_fine(_cube(args.size, days), model, MODIS_PREDICTORS, combine=args.selection)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_downscaled(lazy, Path(tmp) / "p.zarr", chunks={"time": 32, "y": 512, "x": 512}, title="bench",
                             summary="bench", source="bench", progress=False)
            seconds = time.perf_counter() - t0
        done.set()
        rows = days * args.size**2
        extra = (peak[0] - base) / 2**20
        print(f"days={days:4d} cells={args.size}x{args.size} rows={rows:,} time={seconds:6.1f} s "
              f"throughput={rows / seconds / 1e6:5.2f} M rows/s peak RSS above start={extra:6.0f} MiB")


if __name__ == "__main__":
    main()
