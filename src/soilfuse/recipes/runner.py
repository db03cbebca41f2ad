"""Run a recipe from a validated configuration, and the built-in demo.

:func:`run_recipe` opens the run directory, writes the resolved configuration and the
manifest, sets up Dask as configured, and calls the recipe's runner. :func:`run_demo`
generates the synthetic world (once) and runs the default recipe on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soilfuse.config import DaskConfig, RunConfig, dump_config, parse_config
from soilfuse.exceptions import ConfigError
from soilfuse.recipes import RECIPES, load_recipes
from soilfuse.rundir import RunDirectory

__all__ = ["DEFAULT_RECIPE", "check_inputs_exist", "dask_context", "run_demo", "run_recipe"]

logger = logging.getLogger(__name__)

#: The recipe ``soilfuse demo`` runs when none is named.
DEFAULT_RECIPE = "quadtree-st"

#: Period of the demo run per world size: winter to early summer of the demo world's
#: second year keeps the run near ten minutes on two cores (a whole year of six depths
#: × six rotations is about twice as long; change ``period`` in a config to run it).
DEMO_PERIODS: dict[str, dict[str, str]] = {"demo": {"start": "2019-01-01", "end": "2019-06-30"}}

#: Chunks of the demo: 100 × 100 cells so that both cores predict at once.
DEMO_CHUNKS = {"time": 30, "y": 100, "x": 100}


def run_recipe(cfg: RunConfig) -> dict[str, Any]:
    """Run ``cfg.recipe`` into ``cfg.run_dir``; returns the paths of its outputs.

    The manifest's status is ``complete`` only when the recipe finished; a failure
    records ``failed`` and the error, and re-raises.
    """
    if cfg.recipe not in RECIPES:
        msg = f"key 'recipe': got {cfg.recipe!r}; expected one of: {', '.join(sorted(RECIPES))}."
        raise ConfigError(msg)
    check_inputs_exist(cfg)
    run = RunDirectory.create(cfg.run_dir, seed=cfg.seed, config_text=dump_config(cfg))
    inputs = [p for p in (cfg.inputs.twin, cfg.inputs.stations, cfg.inputs.static) if p is not None]
    try:
        run.record_inputs(inputs)
        with dask_context(cfg.dask):
            outputs = RECIPES[cfg.recipe](cfg, run)
    except BaseException as err:
        run.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    run.record("outputs", {k: str(v) for k, v in outputs.items()})
    run.finish("complete")
    return outputs


def check_inputs_exist(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` naming the first ``inputs`` path that does not exist.

    Called before the run directory is created, so a mistyped path leaves nothing behind.
    """
    base = f" (relative paths are read from {cfg.source.parent})" if cfg.source is not None else ""
    for key, value in cfg.inputs:
        for path in value if isinstance(value, list) else [value]:
            if path is not None and not Path(path).exists():
                msg = f"key 'inputs.{key}': {path} does not exist; correct the path in the configuration{base}."
                raise ConfigError(msg)


def run_demo(
    out: Path, *, recipe: str | None = None, size: str = "demo", seed: int = 0
) -> tuple[Path, dict[str, Any]]:
    """Generate the synthetic world into ``out/twin`` (if needed) and run a recipe on it.

    Returns
    -------
    run_dir, outputs
        The run directory and the recipe's outputs. When no recipe is installed yet,
        the outputs are the synthetic world's files and figures.
    """
    from soilfuse.twin import generate

    out = Path(out)
    twin_dir = out / f"twin-{size}-seed{seed}"
    marker = twin_dir / "twin.json"
    if marker.is_file():
        logger.info("reusing synthetic world in %s", twin_dir)
        paths: dict[str, Any] = {"twin": twin_dir}
    else:
        paths = generate(size, twin_dir, seed=seed)
    name = recipe or DEFAULT_RECIPE
    load_recipes()
    if name not in RECIPES:
        if recipe is not None:
            msg = f"--recipe: got {recipe!r}; expected one of: {', '.join(sorted(RECIPES)) or '(none)'}."
            raise ConfigError(msg)
        figures = json.loads(marker.read_text()).get("figures", {}) if marker.is_file() else {}
        return twin_dir, {**{k: str(v) for k, v in paths.items()}, **_flatten(figures)}
    cfg = parse_config(
        {
            "recipe": name,
            "run_dir": str(out / name),
            "seed": seed,
            "inputs": {"twin": str(twin_dir)},
            "period": DEMO_PERIODS.get(size, {}),
            "options": {"profile": "demo" if size == "demo" else "test", "chunks": DEMO_CHUNKS},
        }
    )
    return cfg.run_dir, run_recipe(cfg)


@contextlib.contextmanager
def dask_context(cfg: DaskConfig) -> Iterator[None]:
    """Run the enclosed block on the Dask scheduler the configuration names."""
    import dask

    if cfg.scheduler in ("threads", "synchronous"):
        with dask.config.set(scheduler=cfg.scheduler):
            yield
        return
    from distributed import Client, LocalCluster

    if cfg.scheduler == "local-cluster":
        cluster = LocalCluster(n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker)
        with cluster, Client(cluster):
            yield
        return
    with Client(cfg.address):
        yield


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
