"""Run configuration: one YAML file per run, validated into typed objects.

A run configuration names the recipe, where its inputs are, the domain and period,
the random seed, how Dask runs, and the recipe's own options. Validation happens at
the edge (the CLI or :func:`load_config`); library code receives typed objects.

Every validation error is a :class:`~soilfuse.exceptions.ConfigError` whose message
names the key, shows the bad value and says what was expected::

    config.yaml: key 'period.start': got '2019-13-01'; expected a date like 2019-03-01.

Usage
-----
>>> cfg = parse_config({"recipe": "quadtree-st", "run_dir": "runs/x",
...                     "inputs": {"twin": "data/twin"}})
>>> cfg.recipe, cfg.seed
('quadtree-st', 0)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from soilfuse.exceptions import ConfigError

__all__ = [
    "DaskConfig",
    "DomainConfig",
    "InputsConfig",
    "PeriodConfig",
    "RunConfig",
    "dump_config",
    "load_config",
    "parse_config",
    "register_recipe_options",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DomainConfig(_Strict):
    """Target domain: region ``(west, east, south, north)`` in degrees and fine resolution."""

    region: tuple[float, float, float, float] | None = None
    resolution: float | None = Field(default=None, gt=0, description="fine-grid cell size (degrees)")

    @field_validator("region")
    @classmethod
    def _check_region(cls, v: tuple[float, float, float, float] | None) -> Any:
        if v is not None:
            west, east, south, north = v
            if not (east > west and north > south):
                msg = "expected (west, east, south, north) with east > west and north > south"
                raise ValueError(msg)
        return v


class PeriodConfig(_Strict):
    """Period of the product, inclusive."""

    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PeriodConfig:
        if self.start and self.end and self.end < self.start:
            msg = f"end {self.end} is before start {self.start}"
            raise ValueError(msg)
        return self


class DaskConfig(_Strict):
    """How Dask runs: threads on one machine, or a distributed cluster."""

    scheduler: Literal["threads", "synchronous", "local-cluster", "address"] = "threads"
    address: str | None = None
    n_workers: int = Field(default=2, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _address(self) -> DaskConfig:
        if self.scheduler == "address" and not self.address:
            msg = "scheduler 'address' needs 'address: tcp://host:port'"
            raise ValueError(msg)
        return self


class InputsConfig(_Strict):
    """Input locations. ``twin`` is a synthetic-world folder made by ``soilfuse twin``."""

    twin: Path | None = None
    stations: Path | None = None
    reanalysis: list[Path] | None = None
    coarse_sm: list[Path] | None = None
    modis: Path | None = None
    static: Path | None = None

    @model_validator(mode="after")
    def _something(self) -> InputsConfig:
        if not any(getattr(self, k) for k in type(self).model_fields):
            msg = "no inputs given; set 'twin' or the individual input paths"
            raise ValueError(msg)
        return self


class RunConfig(_Strict):
    """A validated run configuration (see the module docstring)."""

    recipe: str
    run_dir: Path
    inputs: InputsConfig
    seed: int = Field(default=0, ge=0)
    domain: DomainConfig = DomainConfig()
    period: PeriodConfig = PeriodConfig()
    dask: DaskConfig = DaskConfig()
    options: Any = None
    source: Path | None = Field(default=None, exclude=True)


# Recipes register a pydantic model for their ``options`` block.
_RECIPE_OPTIONS: dict[str, type[BaseModel]] = {}


def register_recipe_options(name: str) -> Callable[[type[BaseModel]], type[BaseModel]]:
    """Class decorator registering a recipe's options model under ``name``."""

    def deco(model: type[BaseModel]) -> type[BaseModel]:
        _RECIPE_OPTIONS[name] = model
        return model

    return deco


def parse_config(data: Mapping[str, Any], *, source: Path | None = None) -> RunConfig:
    """Validate a configuration mapping into a :class:`RunConfig`.

    Relative paths are resolved against the folder of ``source`` (the YAML file).

    Raises
    ------
    ConfigError
        Naming the first bad key, its value and what was expected.
    """
    where = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        msg = f"{where}the configuration must be a mapping of keys to values; got {type(data).__name__}."
        raise ConfigError(msg)
    _load_recipes()
    raw = dict(data)
    recipe = raw.get("recipe")
    if recipe not in _RECIPE_OPTIONS:
        known = ", ".join(sorted(_RECIPE_OPTIONS)) or "(none installed)"
        msg = f"{where}key 'recipe': got {recipe!r}; expected one of: {known}."
        raise ConfigError(msg)
    try:
        options = _RECIPE_OPTIONS[recipe].model_validate(raw.get("options") or {})
    except ValidationError as err:
        raise ConfigError(where + _describe(err, prefix="options.")) from err
    try:
        cfg = RunConfig.model_validate({**raw, "options": options, "source": source})
    except ValidationError as err:
        raise ConfigError(where + _describe(err)) from err
    if source is not None:
        cfg = _resolve_paths(cfg, source.parent)
    return cfg


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid YAML, or fails validation.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"Configuration file {path} does not exist; pass the path of a YAML run configuration."
        raise ConfigError(msg)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        msg = f"{path}: not valid YAML{loc}: {getattr(err, 'problem', err)}."
        raise ConfigError(msg) from err
    return parse_config(data or {}, source=path)


def dump_config(cfg: RunConfig) -> str:
    """The resolved configuration as YAML text (paths absolute, defaults filled)."""
    data = cfg.model_dump(mode="json", exclude={"source"})
    if isinstance(cfg.options, BaseModel):
        data["options"] = cfg.options.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False)


# ---------------------------------------------------------------------- helpers
def _load_recipes() -> None:
    """Import the recipes package so that every recipe registers its options."""
    from soilfuse.recipes import load_recipes

    load_recipes()


def _describe(err: ValidationError, *, prefix: str = "") -> str:
    first = err.errors()[0]
    key = prefix + ".".join(str(p) for p in first["loc"]) if first["loc"] else prefix.rstrip(".")
    value = first.get("input")
    reason = first["msg"]
    if first["type"] == "extra_forbidden":
        return f"key '{key}' is not a known setting (check its spelling and indentation)."
    if first["type"] == "missing":
        return f"key '{key}' is required but missing."
    shown = repr(value) if not isinstance(value, Mapping) else "a mapping"
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return f"key '{key}': got {shown}; expected {_expected(reason)}{more}."


def _expected(reason: str) -> str:
    reason = reason.removeprefix("Value error, ").removeprefix("Input should be ")
    return reason


def _resolve_paths(cfg: RunConfig, base: Path) -> RunConfig:
    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    inputs = cfg.inputs.model_copy(
        update={
            k: ([fix(p) for p in v] if isinstance(v, list) else fix(v))
            for k, v in cfg.inputs.model_dump().items()
            if v is not None
        }
    )
    run_dir = fix(cfg.run_dir)
    return cfg.model_copy(update={"inputs": inputs, "run_dir": run_dir})
