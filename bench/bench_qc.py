"""Benchmark: station QC throughput (values/s) and peak memory, against flagit.

Builds ``--stations`` hourly soil-moisture series of ``--years`` years (calm signal,
0.004 m3 m-3 noise, a few spikes, drops and level shifts per year), runs
:func:`soilfuse.stations.run_qc` on the whole long table, and reports values per
second and the peak resident memory of the process. Then runs TU Wien's ``flagit``
0.3 (the ISMN quality control, Dorigo et al. 2013) on ``--flagit-stations`` of the
same series in each Python interpreter given with ``--flagit-python`` (flagit needs
its own environment: it crashes on pandas 3 with ``resample('H')``), in a
subprocess, and reports its values per second or its failure.

Run::

    .venv/bin/python bench/bench_qc.py --stations 200 --years 10 \\
        --flagit-python /path/to/pandas2-venv/bin/python --flagit-python /path/to/pandas3-venv/bin/python
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd


def make_series(k: int, n_hours: int, seed: int = 0) -> np.ndarray:
    """Hourly soil moisture (m3 m-3) of station ``k``: seasonal and 10-day waves, noise, faults."""
    rng = np.random.default_rng([seed, k])
    t = np.arange(n_hours)
    x = 0.25 + 0.05 * np.sin(2 * np.pi * t / (24 * 365.25)) + 0.02 * np.sin(2 * np.pi * t / 240.0)
    x = x + 0.004 * rng.standard_normal(n_hours)
    years = n_hours / (24 * 365.25)
    for _ in range(int(4 * years)):  # spikes
        i = int(rng.integers(24, n_hours - 24))
        x[i] += 0.15
    for _ in range(int(2 * years)):  # short drops
        i = int(rng.integers(24, n_hours - 48))
        x[i:i + int(rng.integers(2, 12))] *= 0.35
    for _ in range(int(years)):  # level shifts of 3-20 days
        i = int(rng.integers(24, n_hours - 24 * 21))
        x[i:i + 24 * int(rng.integers(3, 20))] += 0.07
    return x


# The flagit subprocess builds the same series from this function's source.
_SERIES_CODE = "import numpy as np\n" + textwrap.dedent(inspect.getsource(make_series))
_FLAGIT_CODE = _SERIES_CODE + '''
import json, sys, time, traceback
import pandas as pd
n_stations, n_hours = int(sys.argv[1]), int(sys.argv[2])
out = {"pandas": pd.__version__}
try:
    from flagit import flagit
    t0 = time.perf_counter()
    n = 0
    for k in range(n_stations):
        idx = pd.date_range("2010-01-01", periods=n_hours, freq="h")
        df = pd.DataFrame({"soil_moisture": make_series(k, n_hours) * 100.0}, index=idx)  # flagit works in % vol
        flagit.Interface(df).run(sat_point=45.0)
        n += n_hours
    out["seconds"] = time.perf_counter() - t0
    out["values"] = n
    out["values_per_s"] = n / out["seconds"]
except Exception as err:  # report the failure, whatever it is
    out["error"] = f"{type(err).__name__}: {err}"
    out["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
with open("/proc/self/status") as status:  # VmHWM: peak RSS of this process (Linux)
    out["peak_rss_mb"] = next(int(ln.split()[1]) for ln in status if ln.startswith("VmHWM")) / 1024
print(json.dumps(out))
'''


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM, Linux), in MB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def build_table(n_stations: int, n_hours: int) -> pd.DataFrame:
    """Long observation table of ``n_stations`` hourly series of ``n_hours``."""
    time_index = pd.date_range("2010-01-01", periods=n_hours, freq="h").to_numpy()
    ids = np.array([f"S{k:04d}" for k in range(n_stations)])
    return pd.DataFrame({
        "station_id": pd.Categorical(np.repeat(ids, n_hours)),
        "time": np.tile(time_index, n_stations),
        "depth_from": 0.0,
        "depth_to": 5.0,
        "variable": pd.Categorical(np.full(n_stations * n_hours, "sm")),
        "value": np.concatenate([make_series(k, n_hours) for k in range(n_stations)]),
        "flag": pd.Categorical(np.full(n_stations * n_hours, "G")),
    })


def run_flagit(python: str, n_stations: int, n_hours: int) -> dict[str, object]:
    """flagit in another interpreter; its timing or its error."""
    proc = subprocess.run([python, "-c", _FLAGIT_CODE, str(n_stations), str(n_hours)],
                          capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--flagit-python", action="append", default=[],
                        help="interpreter with flagit installed (repeatable)")
    parser.add_argument("--flagit-stations", type=int, default=2)
    args = parser.parse_args(argv)

    from soilfuse.stations import run_qc

    n_hours = int(args.years * 365.25 * 24)
    t0 = time.perf_counter()
    table = build_table(args.stations, n_hours)
    t_build = time.perf_counter() - t0
    rss_data = _peak_rss_mb()
    t0 = time.perf_counter()
    out = run_qc(table)
    t_qc = time.perf_counter() - t0
    n = len(table)
    flagged = float((out["qc_flag"] != "G").mean())
    print(f"soilfuse run_qc: {args.stations} stations x {n_hours} hourly values = {n:,} values")
    print(f"  build table {t_build:.1f} s; QC {t_qc:.1f} s -> {n / t_qc:,.0f} values/s; "
          f"{100 * flagged:.2f} % flagged")
    print(f"  peak RSS {_peak_rss_mb():,.0f} MB (after building the table: {rss_data:,.0f} MB)")
    for python in args.flagit_python:
        res = run_flagit(python, args.flagit_stations, n_hours)
        label = f"flagit ({python}, pandas {res.get('pandas', '?')})"
        if "values_per_s" in res:
            rate = float(res["values_per_s"])  # type: ignore[arg-type]
            print(f"{label}: {args.flagit_stations} stations in {res['seconds']:.1f} s -> {rate:,.0f} values/s "
                  f"(soilfuse is {n / t_qc / rate:,.0f}x faster); peak RSS {res['peak_rss_mb']:.0f} MB")
        else:
            print(f"{label}: FAILED - {res.get('error')}")
            tail = res.get("traceback_tail", [])
            for line in tail if isinstance(tail, list) else []:
                print(textwrap.indent(str(line), "    "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
