"""The synthetic twin: a seeded world with known truth, and observing systems that see it imperfectly.

The twin stands in for the real inputs (stations, reanalysis, satellites, maps) and
knows the true soil moisture and soil temperature everywhere, so every recipe can be
scored against truth at every pixel. It is built in three steps:

1. :func:`make_world` turns a :class:`TwinConfig` (size preset, region, period, seed)
   into a :class:`World`: static maps, daily forcing and physically based truth;
2. :func:`observe` runs the observing systems on it and returns
   :class:`Observations`: station networks with sensor errors and labelled faults,
   an ERA5-Land-like reanalysis, CCI- and SMAP-like satellite soil moisture, and
   MODIS-like optical/thermal products with clouds and QC bits;
3. :func:`write_twin` writes everything in the file formats of the real products,
   which the readers in :mod:`soilfuse.io` read back.

:func:`generate` runs all three and logs how far each observing system is from the
truth (the ``soilfuse twin`` command calls it). See ``docs/twin.md``.

Usage
-----
>>> from soilfuse.twin import TwinConfig, make_world, observe
>>> world = make_world(TwinConfig.from_size("small", end="2019-03-20"))  # doctest: +SKIP
>>> obs = observe(world)  # doctest: +SKIP
>>> sorted(obs.stations["network"].unique())  # doctest: +SKIP
['CMA', 'PLATEAU', 'SOILNET']
"""

from __future__ import annotations

from soilfuse.twin.config import SIZES, TwinConfig
from soilfuse.twin.observe import Observations, evaluate, observe
from soilfuse.twin.world import World, make_world
from soilfuse.twin.write import generate, write_twin

__all__ = [
    "SIZES",
    "Observations",
    "TwinConfig",
    "World",
    "evaluate",
    "generate",
    "make_world",
    "observe",
    "write_twin",
]
