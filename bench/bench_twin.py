"""Benchmark: twin generation time and peak memory against domain size (``bench`` preset).

Generates the ``bench`` world (0.01 deg, 3000 stations) over a short period for square
domains of ``--sizes`` cells on a side (subsets of the preset region anchored at its
north-west corner), each with ``soilfuse twin --size bench --region ... --start ... --end ...``
in a fresh child process. For each domain it reports wall time, CPU time (user + sys of
the child), throughput in pixel-days per wall second (output days, and simulated days
including the 90-day spin-up) and the peak resident memory of the child (``ru_maxrss``
from ``wait4``). Ratios are against the smallest domain measured in the same run: a
peak-memory ratio near 1 means memory does not grow with the domain (chunked
generation); the time ratio per pixel-day near 1 means generation scales linearly.

Run::

    .venv/bin/python bench/bench_twin.py --sizes 500 1000 2000 --start 2019-01-01 --end 2019-01-10

(the 2000 x 2000 domain takes ~15 CPU-minutes, most of it the 90-day spin-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from soilfuse.twin.config import SIZES
from soilfuse.twin.world import SPINUP_DAYS


def region_of(edge: int) -> tuple[float, float, float, float]:
    """``(west, east, south, north)`` of an ``edge`` x ``edge`` cell subset of the bench region."""
    west, east, south, north = SIZES["bench"]["region"]
    res = float(SIZES["bench"]["resolution"])
    if edge * res > min(east - west, north - south) + 1e-9:
        msg = f"A {edge}-cell domain does not fit in the bench region {SIZES['bench']['region']}."
        raise SystemExit(msg)
    return (west, round(west + edge * res, 6), round(north - edge * res, 6), north)


def run_one(edge: int, start: str, end: str, workdir: Path) -> dict[str, float]:
    """Generate one domain in a child process; return wall s, CPU s and peak RSS (MiB)."""
    out = workdir / f"twin{edge}"
    region = [str(v) for v in region_of(edge)]
    cmd = [str(Path(sys.executable).with_name("soilfuse")), "twin", "--size", "bench", "--out", str(out),
           "--region", *region, "--start", start, "--end", end]
    t0 = time.perf_counter()
    with open(workdir / f"twin{edge}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        msg = f"soilfuse twin failed for {edge} x {edge} (exit {proc.returncode}); see {workdir}/twin{edge}.log"
        raise SystemExit(msg)
    shutil.rmtree(out)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000], help="domain edges (cells)")
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2019-01-10")
    args = parser.parse_args()
    ndays = len(pd.date_range(args.start, args.end, freq="D"))
    load = os.getloadavg()
    print(f"bench preset, 0.01 deg, {SIZES['bench']['n_stations']} stations, {args.start} .. {args.end} "
          f"({ndays} days + {SPINUP_DAYS} spin-up); load average at start {load[0]:.1f} on {os.cpu_count()} CPUs")
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_twin_") as tmp:
        for edge in args.sizes:
            results[edge] = run_one(edge, args.start, args.end, Path(tmp))
            r = results[edge]
            print(f"  {edge} x {edge}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, peak RSS {r['peak_mib']:.0f} MiB",
                  flush=True)
    base = min(results)
    b = results[base]
    print(f"\n{'domain':>11s} {'wall s':>8s} {'CPU s':>8s} {'Mpx-day/s':>10s} {'sim Mpx-day/s':>14s} "
          f"{'peak MiB':>9s} {'s/px-day':>9s} {'memory':>7s}")
    for edge, r in results.items():
        px = edge * edge
        rate = px * ndays / r["wall"] / 1e6
        sim = px * (ndays + SPINUP_DAYS) / r["wall"] / 1e6
        per_px = (r["wall"] / px) / (b["wall"] / (base * base))
        print(f"{edge:>5d}x{edge:<5d} {r['wall']:8.1f} {r['cpu']:8.1f} {rate:10.3f} {sim:14.3f} "
              f"{r['peak_mib']:9.0f} {per_px:8.2f}x {r['peak_mib'] / b['peak_mib']:6.2f}x")
    top = max(results)
    print(f"\npeak RSS {top}x{top} / {base}x{base}: {results[top]['peak_mib'] / b['peak_mib']:.2f} "
          "(~1 means memory does not grow with the domain)")


if __name__ == "__main__":
    main()
