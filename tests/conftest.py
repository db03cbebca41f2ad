"""Shared pytest fixtures: the real-data folder and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real sample files (``../shared/data/real`` beside the clone).

    Override with ``SOILFUSE_REAL_DATA``. Missing data fail the test in CI and skip
    it elsewhere, so a clone without the shared folder still runs the rest.
    """
    path = Path(os.environ.get("SOILFUSE_REAL_DATA", _DEFAULT_REAL))
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data folder {path} is missing in CI")
        pytest.skip(f"real data folder {path} not found; set SOILFUSE_REAL_DATA")
    return path
