"""Configuration of the synthetic twin: size presets, region, period, seed and tiling.

A :class:`TwinConfig` is an immutable value that fully determines a twin world: the
same config (including ``seed``) always gives bit-identical maps, forcing and truth.
Three presets cover tests, the demo and benchmarks:

========  ==================  ========  ==========================  ========  ======
size      fine grid           domain    period                      stations  tile
========  ==================  ========  ==========================  ========  ======
small     64 x 64 at 0.05°    3.2°      120 days from 2019-03-01    40        64
demo      200 x 200 at 0.02°  4°        2018-01-01 .. 2019-12-31    300       100
bench     2000 x 2000 at 0.01° 20°      2019 (one year)             3000      250
========  ==================  ========  ==========================  ========  ======

``tile`` is the edge, in cells, of the square spatial tiles the world is generated in
(:func:`soilfuse.twin.world.make_world` keeps one tile per worker in memory).

Usage
-----
>>> from soilfuse.twin.config import TwinConfig
>>> cfg = TwinConfig.from_size("small", seed=3)
>>> cfg.grid.shape
(64, 64)
>>> len(cfg.times), str(cfg.times[0].date()), str(cfg.times[-1].date())
(120, '2019-03-01', '2019-06-28')
>>> len(TwinConfig.from_size("demo").tiles())
4
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from soilfuse._typing import Region
from soilfuse.exceptions import ConfigError, GridError
from soilfuse.grid import Grid

__all__ = ["SIZES", "TwinConfig"]

#: Presets by size name: region (west, east, south, north) in degrees, resolution in
#: degrees, first and last day (inclusive), number of stations and tile edge in cells.
SIZES: Mapping[str, Mapping[str, Any]] = {
    "small": {
        "region": (100.0, 103.2, 30.0, 33.2),
        "resolution": 0.05,
        "start": "2019-03-01",
        "end": "2019-06-28",
        "n_stations": 40,
        "tile": 64,
    },
    "demo": {
        "region": (99.6, 103.6, 29.6, 33.6),
        "resolution": 0.02,
        "start": "2018-01-01",
        "end": "2019-12-31",
        "n_stations": 300,
        "tile": 100,
    },
    "bench": {
        "region": (90.0, 110.0, 25.0, 45.0),
        "resolution": 0.01,
        "start": "2019-01-01",
        "end": "2019-12-31",
        "n_stations": 3000,
        "tile": 250,
    },
}

_MIN_TILE = 4


@dataclass(frozen=True)
class TwinConfig:
    """Everything that defines one synthetic world.

    Parameters
    ----------
    size : str
        Preset name (``"small"``, ``"demo"`` or ``"bench"``); recorded for provenance.
    seed : int
        Seed of every random field; the same seed gives a bit-identical world.
    region : tuple of float
        ``(west, east, south, north)`` in degrees (outer cell edges).
    resolution : float
        Fine-grid cell size in degrees.
    start, end : str
        First and last day of the period, ISO dates, both included.
    n_stations : int
        Number of in-situ stations the observing systems place.
    tile : int
        Edge of the square spatial tiles the world is generated in, in cells.

    Raises
    ------
    ConfigError
        If a field is out of range (checked on construction).
    """

    size: str
    seed: int
    region: Region
    resolution: float
    start: str
    end: str
    n_stations: int
    tile: int

    def __post_init__(self) -> None:
        try:
            Grid.latlon(self.region, self.resolution)
        except GridError as err:
            msg = f"TwinConfig has an invalid region/resolution: {err}"
            raise ConfigError(msg) from err
        try:
            start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        except (TypeError, ValueError) as err:
            msg = f"TwinConfig start/end must be ISO dates like '2019-03-01'; got {self.start!r}, {self.end!r}."
            raise ConfigError(msg) from err
        if end < start:
            msg = f"TwinConfig end {self.end!r} is before start {self.start!r}; swap them."
            raise ConfigError(msg)
        if not isinstance(self.seed, int) or self.seed < 0:
            msg = f"TwinConfig seed must be a non-negative integer; got {self.seed!r}."
            raise ConfigError(msg)
        if self.tile < _MIN_TILE:
            msg = f"TwinConfig tile must be at least {_MIN_TILE} cells; got {self.tile}."
            raise ConfigError(msg)
        if self.n_stations < 0:
            msg = f"TwinConfig n_stations must be >= 0; got {self.n_stations}."
            raise ConfigError(msg)

    @classmethod
    def from_size(
        cls,
        size: str,
        *,
        seed: int = 0,
        region: Region | None = None,
        start: str | None = None,
        end: str | None = None,
        resolution: float | None = None,
        tile: int | None = None,
    ) -> TwinConfig:
        """Config of a preset size, with optional overrides.

        Parameters
        ----------
        size : {"small", "demo", "bench"}
            Preset (see :data:`SIZES`).
        seed : int
            Random seed.
        region : tuple of float, optional
            ``(west, east, south, north)`` in degrees; the preset's by default.
        start, end : str, optional
            ISO dates of the first and last day (inclusive).
        resolution : float, optional
            Cell size in degrees.
        tile : int, optional
            Tile edge in cells.

        Returns
        -------
        TwinConfig

        Raises
        ------
        ConfigError
            If ``size`` is unknown or an override is invalid.
        """
        if size not in SIZES:
            msg = f"Unknown twin size {size!r}; expected one of {sorted(SIZES)}."
            raise ConfigError(msg)
        preset = SIZES[size]
        return cls(
            size=size,
            seed=int(seed),
            region=tuple(float(v) for v in (region or preset["region"])),  # type: ignore[arg-type]
            resolution=float(resolution if resolution is not None else preset["resolution"]),
            start=str(start or preset["start"]),
            end=str(end or preset["end"]),
            n_stations=int(preset["n_stations"]),
            tile=int(tile if tile is not None else preset["tile"]),
        )

    @property
    def grid(self) -> Grid:
        """The fine grid, ``Grid.latlon(region, resolution)``."""
        return Grid.latlon(self.region, self.resolution)

    @property
    def times(self) -> pd.DatetimeIndex:
        """Daily time axis from ``start`` to ``end`` inclusive (``datetime64[ns]``, 00:00 UTC)."""
        return pd.date_range(self.start, self.end, freq="D").as_unit("ns")

    def tiles(self) -> list[tuple[slice, slice]]:
        """Row and column slices of the spatial tiles, row-major from the north-west corner."""
        ny, nx = self.grid.shape
        return [
            (slice(r, min(r + self.tile, ny)), slice(c, min(c + self.tile, nx)))
            for r in range(0, ny, self.tile)
            for c in range(0, nx, self.tile)
        ]
