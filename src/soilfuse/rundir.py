"""The run directory: everything one run made, and a manifest that says how.

Layout (see ``docs/conventions.md``)::

    RUN/
      config.yaml     resolved configuration
      manifest.json   package versions, input file hashes, seeds, timings, status
      models/         fitted models in portable formats (XGBoost JSON/UBJ)
      tables/         training tables and metrics (CSV/Parquet)
      product/        Zarr product (+ NetCDF export)
      report/         self-contained HTML report and figures

The manifest's ``status`` is ``"running"`` until :meth:`RunDirectory.finish` marks
it ``"complete"``; an interrupted run keeps ``"running"`` (or ``"failed"`` with the
error) so nobody mistakes it for a finished product.

Usage
-----
>>> import tempfile, pathlib
>>> run = RunDirectory.create(pathlib.Path(tempfile.mkdtemp()) / "run", seed=1)
>>> with run.timer("fit"):
...     pass
>>> sorted(p.name for p in run.path.iterdir())
['manifest.json', 'models', 'product', 'report', 'tables']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["RunDirectory", "file_digest", "package_versions"]

logger = logging.getLogger(__name__)

_SUBDIRS = ("models", "tables", "product", "report")
_PACKAGES = (
    "soilfuse", "numpy", "scipy", "pandas", "xarray", "dask", "distributed", "zarr",
    "netCDF4", "h5netcdf", "rioxarray", "rasterio", "pyproj", "scikit-learn", "xgboost-cpu",
    "xgboost", "statsmodels", "pyarrow", "pydantic",
)
# Files larger than this are hashed by their first and last MiB plus size: hashing
# hundreds of GB of inputs fully would dominate a production run.
_FULL_HASH_LIMIT = 256 * 2**20


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing packages are left out)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def file_digest(path: Path) -> str:
    """SHA-256 of a file (``sha256:…``), or of its head, tail and size when very large."""
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
            return f"sha256:{h.hexdigest()}"
        h.update(fh.read(2**20))
        fh.seek(-(2**20), os.SEEK_END)
        h.update(fh.read(2**20))
    h.update(str(size).encode())
    return f"sha256-partial:{h.hexdigest()}"


class RunDirectory:
    """A run's folder with its manifest. Build with :meth:`create`."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    @classmethod
    def create(cls, path: str | Path, *, seed: int = 0, config_text: str | None = None) -> RunDirectory:
        """Create (or reopen, to resume) a run directory and start its manifest.

        Parameters
        ----------
        path : str or Path
            Folder of the run; created with its subfolders if missing.
        seed : int
            The run's random seed, recorded in the manifest.
        config_text : str, optional
            Resolved YAML configuration, written to ``config.yaml``.
        """
        root = Path(path)
        for sub in _SUBDIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        previous = root / "manifest.json"
        manifest: dict[str, Any]
        if previous.is_file():
            manifest = json.loads(previous.read_text())
            manifest.setdefault("resumed", []).append(_now())
        else:
            manifest = {"created": _now(), "inputs": {}, "timings": {}}
        manifest.update(
            {
                "status": "running",
                "seed": seed,
                "versions": package_versions(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            }
        )
        run = cls(root, manifest)
        if config_text is not None:
            (root / "config.yaml").write_text(config_text)
        run.save()
        return run

    def sub(self, name: str) -> Path:
        """Path of a standard subfolder (``models``, ``tables``, ``product``, ``report``)."""
        if name not in _SUBDIRS:
            msg = f"Unknown run subfolder {name!r}; expected one of {_SUBDIRS}."
            raise ValueError(msg)
        return self.path / name

    def record_inputs(self, paths: Iterable[Path]) -> None:
        """Hash input files (recursing into folders) into the manifest."""
        for p in paths:
            files = sorted(q for q in Path(p).rglob("*") if q.is_file()) if Path(p).is_dir() else [Path(p)]
            for f in files:
                self.manifest["inputs"][str(f)] = file_digest(f)
        self.save()

    def record(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value in the manifest."""
        self.manifest[key] = value
        self.save()

    @contextlib.contextmanager
    def timer(self, stage: str) -> Iterator[None]:
        """Time a stage (wall-clock seconds) into the manifest's ``timings``."""
        t0 = time.perf_counter()
        logger.info("stage %s started", stage)
        try:
            yield
        finally:
            seconds = round(time.perf_counter() - t0, 3)
            self.manifest["timings"][stage] = seconds
            logger.info("stage %s took %.1f s", stage, seconds)
            self.save()

    def finish(self, status: str = "complete", *, error: str | None = None) -> None:
        """Mark the run ``complete`` (or ``failed`` with the error message)."""
        self.manifest["status"] = status
        self.manifest["finished"] = _now()
        if error:
            self.manifest["error"] = error
        self.save()

    def save(self) -> None:
        """Write the manifest atomically."""
        tmp = self.path / "manifest.json.tmp"
        tmp.write_text(json.dumps(self.manifest, indent=2, sort_keys=True, default=str))
        tmp.replace(self.path / "manifest.json")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
