"""Tests of run configuration validation and the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from soilfuse.config import dump_config, load_config, parse_config, register_recipe_options
from soilfuse.exceptions import ConfigError
from soilfuse.rundir import RunDirectory, file_digest


@register_recipe_options("test-recipe")
class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_estimators: int = 10
    profile: str = "paper"


def _base(**kw: object) -> dict[str, object]:
    cfg: dict[str, object] = {"recipe": "test-recipe", "run_dir": "runs/x", "inputs": {"twin": "twin"}}
    cfg.update(kw)
    return cfg


def test_parse_config__defaults_and_options() -> None:
    cfg = parse_config(_base(options={"n_estimators": 5}))
    assert cfg.seed == 0
    assert cfg.dask.scheduler == "threads"
    assert isinstance(cfg.options, _Options) and cfg.options.n_estimators == 5


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ({"recipe": "nope"}, r"key 'recipe': got 'nope'; expected one of: .*test-recipe"),
        ({"seed": -1}, r"key 'seed': got -1; expected .*greater than or equal to 0"),
        ({"period": {"start": "2019-13-01"}}, r"key 'period.start': got '2019-13-01'"),
        ({"period": {"start": "2019-05-01", "end": "2019-01-01"}}, r"key 'period'.*before start"),
        ({"domain": {"region": [10, 0, 0, 1]}}, r"key 'domain.region'.*east > west"),
        ({"inputs": {}}, r"key 'inputs'.*no inputs given"),
        ({"colour": "red"}, r"key 'colour' is not a known setting"),
        ({"options": {"n_estimators": "many"}}, r"key 'options.n_estimators': got 'many'; expected a valid integer"),
        ({"options": {"depth": 3}}, r"key 'options.depth' is not a known setting"),
        ({"dask": {"scheduler": "address"}}, r"key 'dask'.*address"),
    ],
)
def test_parse_config__errors_name_key_value_and_expectation(override: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        parse_config(_base(**override))


def test_load_config__yaml_errors_and_relative_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: test-recipe\n  run_dir: : x\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 2"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    good = tmp_path / "run.yaml"
    good.write_text("recipe: test-recipe\nrun_dir: out\ninputs:\n  twin: ../twin\n")
    cfg = load_config(good)
    assert cfg.run_dir == (tmp_path / "out").resolve()
    assert cfg.inputs.twin == (tmp_path.parent / "twin").resolve()
    assert "n_estimators: 10" in dump_config(cfg)


def test_run_directory__layout_manifest_and_resume(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path / "r", seed=7, config_text="recipe: x\n")
    data = tmp_path / "input.bin"
    data.write_bytes(b"abc")
    run.record_inputs([data])
    with run.timer("fit"):
        pass
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "running"
    assert manifest["seed"] == 7
    # sha256 of b"abc"
    assert manifest["inputs"][str(data)].endswith("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert "numpy" in manifest["versions"] and "fit" in manifest["timings"]
    run.finish()
    again = RunDirectory.create(tmp_path / "r", seed=7)
    assert again.manifest["status"] == "running" and len(again.manifest["resumed"]) == 1
    assert {p.name for p in (tmp_path / "r").iterdir()} >= {"models", "tables", "product", "report", "config.yaml"}
    assert file_digest(data) == manifest["inputs"][str(data)]
