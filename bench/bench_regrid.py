"""Benchmark soilfuse.regrid on a 1000 x 1000 x 30-day 0.01 deg cube (5 % NaN).

Three cases, each against a naive baseline measured in the same run:

1. area-weighted mean 0.01 deg -> 0.1 deg (nested) vs ``xarray`` ``coarsen().mean()``
   (which ignores cell areas); also :func:`soilfuse.regrid.coarsen_mean`;
2. area-weighted mean 0.01 deg -> EASE-Grid 2.0 36 km vs binning the fine cell centres
   into EASE cells with area-weighted ``numpy.bincount``, one day at a time;
3. bilinear 0.01 deg -> EASE-Grid 2.0 36 km vs ``scipy.interpolate.RegularGridInterpolator``
   one day at a time (not NaN-aware: a NaN neighbour makes the target NaN).

Throughput is source cells x days per second, best of 5 calls, weights built beforehand
(their build time is printed separately). Peak memory is the largest resident-set growth
(psutil, sampled every 2 ms) during one call, measured in a fresh child process per
case in which glibc serves every allocation above 64 KiB with its own mapping, so freed
arrays leave the resident set at once. Ratios are soilfuse / baseline: speed > 1 is
faster, memory < 1 is leaner.

Run: ``.venv/bin/python bench/bench_regrid.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import xarray as xr
from pyproj import Transformer
from scipy.interpolate import RegularGridInterpolator

from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.regrid import Regridder, coarsen_mean

REGION = (100.0, 110.0, 30.0, 40.0)
N_DAYS = 30
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter number


def make_cube() -> xr.DataArray:
    grid = Grid.latlon(REGION, 0.01)
    rng = np.random.default_rng(42)
    lon, lat = np.meshgrid(grid.x, grid.y)
    base = 0.25 + 0.1 * np.sin(np.radians(20 * lon)) * np.cos(np.radians(25 * lat))
    days = np.arange(N_DAYS)[:, None, None]
    noise = 0.01 * rng.standard_normal((N_DAYS, 1, 1))
    values = (base + 0.02 * np.sin(days / 5.0) + noise).astype("float32")
    values[rng.random(values.shape) < 0.05] = np.nan
    da = xr.DataArray(values, dims=("time", "y", "x"), name="sm", attrs={"units": "m3 m-3"})
    return with_grid(da, grid)


def build_cases(da: xr.DataArray) -> tuple[dict[str, Callable[[], np.ndarray]], dict[str, str]]:
    """Callables to time, and a note per weights build (time, size)."""
    fine = Grid.from_dataset(da)
    coarse = Grid.latlon(REGION, 0.1)
    ease = Grid.ease2("36km").subset(REGION)
    lazy = da.chunk({"time": 5})
    notes = {}

    t0 = time.perf_counter()
    mean_01 = Regridder(fine, coarse, "mean")
    notes["weights mean -> 0.1 deg"] = f"{time.perf_counter() - t0:.2f} s, nnz {mean_01.weights.nnz}"
    t0 = time.perf_counter()
    mean_ease = Regridder(fine, ease, "mean")
    notes[f"weights mean -> EASE 36 km {ease.shape}"] = (
        f"{time.perf_counter() - t0:.2f} s, nnz {mean_ease.weights.nnz}, k={mean_ease.subsample}"
    )
    t0 = time.perf_counter()
    bilinear = Regridder(fine, ease, "bilinear")
    notes["weights bilinear -> EASE 36 km"] = f"{time.perf_counter() - t0:.3f} s, nnz {bilinear.weights.nnz}"

    lon, lat = np.meshgrid(fine.x, fine.y)
    ex, ey = Transformer.from_crs(fine.crs, ease.crs, always_xy=True).transform(lon, lat)
    rows, cols = ease.index(ex, ey)
    n_ease = ease.shape[0] * ease.shape[1]
    cell = np.where(rows >= 0, rows * ease.shape[1] + cols, n_ease).ravel()
    area = fine.cell_area().ravel()
    values = da.values

    def centre_binning() -> np.ndarray:
        out = np.empty((N_DAYS, *ease.shape))
        for i, day in enumerate(values.reshape(N_DAYS, -1)):
            ok = ~np.isnan(day)
            total = np.bincount(cell[ok], day[ok] * area[ok], n_ease + 1)
            weight = np.bincount(cell[ok], area[ok], n_ease + 1)
            with np.errstate(invalid="ignore"):
                out[i] = (total / weight)[:-1].reshape(ease.shape)
        return out

    tx, ty = np.meshgrid(ease.x, ease.y)
    tlon, tlat = Transformer.from_crs(ease.crs, fine.crs, always_xy=True).transform(tx, ty)
    points = np.column_stack([tlat.ravel(), tlon.ravel()])

    def interpolator_per_day() -> np.ndarray:
        out = np.empty((N_DAYS, *ease.shape))
        for i in range(N_DAYS):
            interp = RegularGridInterpolator(
                (fine.y[::-1], fine.x), values[i, ::-1], bounds_error=False, fill_value=np.nan
            )
            out[i] = interp(points).reshape(ease.shape)
        return out

    cases: dict[str, Callable[[], np.ndarray]] = {
        "mean 0.1: soilfuse Regridder, numpy": lambda: mean_01(da).values,
        "mean 0.1: soilfuse Regridder, dask time=5": lambda: mean_01(lazy).compute().values,
        "mean 0.1: soilfuse coarsen_mean, numpy": lambda: coarsen_mean(da, 10).values,
        "mean 0.1: baseline xarray coarsen().mean()": lambda: da.coarsen(y=10, x=10).mean().values,
        "mean EASE: soilfuse Regridder, numpy": lambda: mean_ease(da).values,
        "mean EASE: soilfuse Regridder, dask time=5": lambda: mean_ease(lazy).compute().values,
        "mean EASE: baseline centre binning per day": centre_binning,
        "bilinear EASE: soilfuse Regridder, numpy": lambda: bilinear(da).values,
        "bilinear EASE: baseline RegularGridInterpolator per day": interpolator_per_day,
    }
    return cases, notes


class PeakMemory:
    """Largest RSS growth (bytes) of this process while the context is open."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss - self.start)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.start = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss - self.start)


def child_peak_memory(name: str) -> None:
    """Child process: print the peak RSS growth (MiB) of one call of case ``name``."""
    name_c = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name_c) if name_c else None
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    cases, _ = build_cases(make_cube())
    func = cases[name]
    func()  # warm-up: imports, caches, thread pools
    gc.collect()
    if libc is not None:
        libc.malloc_trim(0)
    with PeakMemory() as mem:
        func()
    print(json.dumps({"peak_mib": mem.peak / 2**20}))


def peak_memory(name: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory", name], check=True, capture_output=True, text=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])


def best_time(func: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    da = make_cube()
    n_cells = da.size
    print(f"cube {da.shape} float32 at 0.01 deg, {np.isnan(da.values).mean():.1%} NaN, {n_cells / 1e6:.0f} M cells")
    cases, notes = build_cases(da)
    for key, note in notes.items():
        print(f"{key}: {note}")
    results: dict[str, tuple[float, float, np.ndarray]] = {}
    for name, func in cases.items():
        seconds, value = best_time(func)
        results[name] = (seconds, peak_memory(name), value)

    print(f"\n{'case':<56s} {'Mcells/s':>9s} {'peak MiB':>9s} {'speed':>7s} {'memory':>7s}")
    for name, (seconds, mib, _) in results.items():
        group = name.split(":")[0]
        base_name = next(k for k in results if k.startswith(group) and "baseline" in k)
        b_seconds, b_mib, _ = results[base_name]
        print(
            f"{name:<56s} {n_cells / seconds / 1e6:9.1f} {mib:9.1f} "
            f"{b_seconds / seconds:6.2f}x {mib / max(b_mib, 1e-3):6.2f}x"
        )

    print("\nagreement (max abs difference where both are valid):")
    pairs = [
        ("Regridder numpy vs dask, 0.1 deg", "mean 0.1: soilfuse Regridder", "mean 0.1: soilfuse Regridder, dask"),
        ("Regridder vs coarsen_mean, 0.1 deg", "mean 0.1: soilfuse Regridder", "mean 0.1: soilfuse coarsen_mean"),
        ("area-weighted vs unweighted coarsen, 0.1 deg", "mean 0.1: soilfuse Regridder", "mean 0.1: baseline"),
        ("overlap areas vs centre binning, EASE", "mean EASE: soilfuse Regridder", "mean EASE: baseline"),
        ("bilinear vs RegularGridInterpolator", "bilinear EASE: soilfuse", "bilinear EASE: baseline"),
    ]
    for label, a, b in pairs:
        x = next(v[2] for k, v in results.items() if k.startswith(a))
        y = next(v[2] for k, v in results.items() if k.startswith(b))
        both = np.isfinite(x) & np.isfinite(y)
        print(
            f"  {label}: {np.max(np.abs(x - y)[both]):.1e}; NaN share {np.isnan(x).mean():.1%} "
            f"vs {np.isnan(y).mean():.1%}"
        )

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        child_peak_memory(sys.argv[2])
    else:
        main()
