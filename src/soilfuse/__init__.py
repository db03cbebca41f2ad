"""soilfuse: fuse stations, reanalysis and satellites into validated 1 km soil grids.

The package follows the data flow of a run::

    grid, io -> regrid, preprocess, gapfill, stations -> sample -> models
             -> predict -> validate -> report

with :mod:`soilfuse.recipes` composing the stages and :mod:`soilfuse.cli` on top.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("soilfuse")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
