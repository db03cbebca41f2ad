"""Tests of the command line: versions, errors as one line, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from soilfuse import __version__
from soilfuse.cli import main


def test_main__version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"soilfuse {__version__}"


def test_main__show_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-versions"]) == 0
    out = capsys.readouterr().out
    assert "numpy:" in out and "xarray:" in out


def test_main__bad_config_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("recipe: no-such-recipe\nrun_dir: out\ninputs: {twin: t}\n")
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("soilfuse: error: ") and "key 'recipe'" in err[0]


def test_main__missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("inputs", ["{twin: no/such/twin}", "{coarse_sm: [., no/such/smap.nc]}"])
def test_main__missing_input_path_names_the_key_and_leaves_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inputs: str
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"recipe: ml-downscale\nrun_dir: out\ninputs: {inputs}\n")
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "key 'inputs." in err[0] and "does not exist" in err[0] and str(tmp_path) in err[0]
    assert not (tmp_path / "out").exists()


def test_main__bad_region(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["twin", "--out", str(tmp_path), "--region", "10", "0", "0", "1"]) == 2
    assert "--region must be WEST EAST SOUTH NORTH" in capsys.readouterr().err


def test_console_script__no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("soilfuse")
    proc = subprocess.run(
        [str(exe), "run", str(tmp_path / "missing.yaml")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("soilfuse: error:")
