"""The ``soilfuse`` command line: parse, validate, call the library, say where results are.

Commands
--------
``soilfuse demo``            generate the synthetic world and run the default recipe on it
``soilfuse run CONFIG``      run a recipe from a YAML configuration
``soilfuse twin``            generate a synthetic world (files in real-data formats)
``soilfuse info FILE``       describe any supported file or Zarr store
``soilfuse validate P S``    score a gridded product against station data
``soilfuse show-versions``   versions of soilfuse and its dependencies

Errors print one line (``soilfuse: error: …``) and exit with status 2 for bad input,
1 for anything unexpected; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soilfuse import __version__
from soilfuse.exceptions import SoilfuseError

__all__ = ["main"]

logger = logging.getLogger("soilfuse")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``soilfuse`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("soilfuse: interrupted; finished chunks are kept and the run can be resumed.", file=sys.stderr)
        return 130
    except (SoilfuseError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
        if args.debug:
            raise
        print(f"soilfuse: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if args.debug:
            raise
        print(
            f"soilfuse: unexpected error ({type(err).__name__}): {_one_line(err)} "
            "— rerun with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return 1


# ---------------------------------------------------------------------- commands
def _cmd_info(args: argparse.Namespace) -> int:
    from soilfuse.io.describe import describe, format_description

    for i, path in enumerate(args.files):
        if i:
            print()
        print(format_description(describe(Path(path))))
    return 0


def _cmd_versions(args: argparse.Namespace) -> int:
    import platform

    from soilfuse.rundir import package_versions

    print(f"python: {platform.python_version()} ({platform.platform()})")
    for name, ver in package_versions().items():
        print(f"{name}: {ver}")
    return 0


def _cmd_twin(args: argparse.Namespace) -> int:
    region = _region(args.region)
    from soilfuse.twin import generate

    paths = generate(args.size, Path(args.out), seed=args.seed, region=region, start=args.start, end=args.end)
    print(f"synthetic world ({args.size}, seed {args.seed}) written to {Path(args.out).resolve()}")
    _print_twin_summary(paths)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from soilfuse.config import load_config
    from soilfuse.recipes.runner import run_recipe

    cfg = load_config(args.config)
    outputs = run_recipe(cfg)
    _print_outputs(cfg.run_dir, outputs)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from soilfuse.recipes.runner import run_demo

    run_dir, outputs = run_demo(Path(args.out), recipe=args.recipe, size=args.size, seed=args.seed)
    _print_outputs(run_dir, outputs)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from soilfuse.validate.compare import validate_files

    outputs = validate_files(
        Path(args.product), Path(args.stations), Path(args.out), variable=args.variable
    )
    _print_outputs(Path(args.out), outputs)
    return 0


# ---------------------------------------------------------------------- helpers
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soilfuse", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"soilfuse {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = sub.add_parser("demo", help="run the default recipe end to end on the synthetic world")
    s.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    s.add_argument("--recipe", default=None, help="recipe to run (default: the default recipe)")
    s.add_argument("--size", default="demo", choices=("small", "demo"), help="synthetic world size")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("run", help="run a recipe from a YAML configuration")
    s.add_argument("config", help="path of the run configuration (YAML)")
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("twin", help="generate a synthetic world with known truth")
    s.add_argument("--size", default="small", choices=("small", "demo", "bench"))
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--region", nargs=4, type=float, metavar=("WEST", "EAST", "SOUTH", "NORTH"))
    s.add_argument("--start", default=None, help="first day, YYYY-MM-DD")
    s.add_argument("--end", default=None, help="last day, YYYY-MM-DD")
    s.set_defaults(func=_cmd_twin)

    s = sub.add_parser("info", help="describe files: dims, variables, units, CRS, extent, time span")
    s.add_argument("files", nargs="+", help="files or Zarr stores")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("validate", help="score a gridded product against stations")
    s.add_argument("product", help="gridded product (Zarr or NetCDF)")
    s.add_argument("stations", help="station folder or file (soilfuse tables or ISMN files)")
    s.add_argument("--out", required=True, help="output folder for tables and figures")
    s.add_argument("--variable", default="sm", choices=("sm", "st"))
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser("show-versions", help="versions of soilfuse and its dependencies")
    s.set_defaults(func=_cmd_versions)
    return p


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Library chatter stays at WARNING unless asked for.
    for noisy in ("distributed", "numba", "matplotlib", "fsspec", "asyncio", "rasterio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose < 2 else logging.INFO)


def _region(values: list[float] | None) -> tuple[float, float, float, float] | None:
    if values is None:
        return None
    west, east, south, north = values
    if not (east > west and north > south):
        msg = f"--region must be WEST EAST SOUTH NORTH with east > west and north > south; got {values}."
        raise SoilfuseError(msg)
    return west, east, south, north


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def _print_outputs(run_dir: Path, outputs: dict[str, Any]) -> None:
    print(f"results in {Path(run_dir).resolve()}")
    for key, value in outputs.items():
        print(f"  {key}: {value}")


def _print_twin_summary(paths: dict[str, Any]) -> None:
    import json
    from collections import Counter

    folders = Counter(str(k).split("/")[0] for k in paths)
    for folder, n in sorted(folders.items()):
        print(f"  {folder}: {n} file(s)" if n > 1 else f"  {folder}")
    info = next((Path(v) for k, v in paths.items() if str(k).endswith("twin.json")), None)
    if info is not None and info.is_file():
        figures = json.loads(info.read_text()).get("figures", {})
        for key, value in _flat(figures).items():
            print(f"  {key}: {value}")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = round(v, 4) if isinstance(v, float) else v
    return out
