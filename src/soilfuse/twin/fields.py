"""Smooth, seeded random fields that can be evaluated on any tile of a domain.

The twin needs spatially correlated random fields (terrain roughness, soil texture,
weather anomalies) that are identical whether the domain is generated at once or tile
by tile. Each field is *value noise*: independent standard normal values on a regular
lattice of control points covering the region (with a margin), smoothed onto cell
centres by a cubic B-spline (a separable 4 x 4 kernel), then divided by the kernel's
root-sum-of-squares so that every cell has unit variance. The lattice spacing sets
the correlation length (the correlation falls to ~0.5 at about one spacing).

Determinism without holding the lattice: the values of lattice row ``r`` come from
their own random stream, seeded by ``(seed, crc32(name), r)``, so a tile draws only
the rows it touches, and the cell value is a fixed sequence of elementwise products
and sums - the same floating-point operations in the same order for any tile. Time
series are AR(1) in time at every lattice point (lag-1 correlation ``rho``, stationary
unit variance from the first step), which gives day-to-day persistence to smooth
spatial patterns. The lattice grows with the domain area divided by the squared
spacing only; for a 20° domain and 300 km weather scales it has a few hundred points.

Usage
-----
>>> import numpy as np
>>> region = (100.0, 103.2, 30.0, 33.2)
>>> lon = 100.025 + 0.05 * np.arange(64)
>>> lat = 33.175 - 0.05 * np.arange(64)
>>> f = smooth_field(0, "demo", region, 50.0, lon, lat)
>>> f.shape
(64, 64)
>>> bool(np.array_equal(f[:32, 32:], smooth_field(0, "demo", region, 50.0, lon[32:], lat[:32])))
True
>>> s = SmoothSeries(0, "weather", region, 300.0, 0.7, 10, lon, lat)
>>> s.values(0, 4).shape
(4, 64, 64)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from soilfuse._typing import FloatArray, IntArray, Region
from soilfuse.exceptions import ConfigError

__all__ = ["KM_PER_DEGREE", "Lattice", "SmoothSeries", "smooth_field"]

#: Length of one degree of latitude (km) on a sphere of radius 6371 km.
KM_PER_DEGREE = 111.195

_MARGIN = 3  # lattice points beyond the region on each side


@dataclass(frozen=True)
class Lattice:
    """Regular lattice of control points covering a region with a margin.

    Row 0 is the northernmost row; spacings are in degrees, chosen from a spacing in
    km at the region's central latitude.
    """

    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nrow: int
    ncol: int

    @classmethod
    def covering(cls, region: Region, spacing_km: float) -> Lattice:
        """Lattice with ``spacing_km`` between points over ``region`` plus a margin.

        Raises
        ------
        ConfigError
            If the spacing is not positive.
        """
        if not spacing_km > 0:
            msg = f"Lattice spacing must be a positive number of km; got {spacing_km}."
            raise ConfigError(msg)
        west, east, south, north = region
        lat_c = math.radians(0.5 * (south + north))
        dlat = spacing_km / KM_PER_DEGREE
        dlon = spacing_km / (KM_PER_DEGREE * max(math.cos(lat_c), 0.05))
        ncol = math.ceil((east - west) / dlon) + 2 * _MARGIN + 1
        nrow = math.ceil((north - south) / dlat) + 2 * _MARGIN + 1
        return cls(west - _MARGIN * dlon, north + _MARGIN * dlat, dlon, dlat, nrow, ncol)

    def col_weights(self, lon: FloatArray) -> tuple[IntArray, FloatArray]:
        """First lattice column and the 4 B-spline weights ``(4, n)`` of each longitude."""
        return _bspline((np.asarray(lon, dtype="float64") - self.lon0) / self.dlon, self.ncol, "longitude")

    def row_weights(self, lat: FloatArray) -> tuple[IntArray, FloatArray]:
        """First lattice row and the 4 B-spline weights ``(4, n)`` of each latitude."""
        return _bspline((self.lat0 - np.asarray(lat, dtype="float64")) / self.dlat, self.nrow, "latitude")


def _bspline(pos: FloatArray, size: int, what: str) -> tuple[IntArray, FloatArray]:
    """Uniform cubic B-spline weights at fractional lattice positions ``pos``."""
    idx = np.floor(pos).astype("int64")
    if idx.size and (idx.min() < 1 or idx.max() > size - 3):
        msg = (
            f"A {what} lies outside the random-field lattice (lattice index {idx.min()}..{idx.max()} "
            f"of {size}); evaluate fields only within the region the lattice was built for."
        )
        raise ConfigError(msg)
    t = pos - idx
    t2 = t * t
    t3 = t2 * t
    one = 1.0 - t
    w = np.stack([
        one * one * one / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ])
    return idx - 1, w


def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _row_noise(seed: int, name: str, row: int, shape: tuple[int, ...]) -> FloatArray:
    """Standard normal values of one lattice row (its own seeded stream)."""
    rng = np.random.default_rng([int(seed), _key(name), int(row)])
    return rng.standard_normal(shape)


def _interpolate(
    values: FloatArray, r_first: IntArray, wy: FloatArray, c_first: IntArray, wx: FloatArray
) -> FloatArray:
    """Separable B-spline sum ``sum_a sum_b wy[a] wx[b] values[..., r+a, c+b]``.

    Written as explicit 4-term sums (not a matrix product) so the floating-point
    operations for a cell do not depend on the tile it is computed in.
    """
    tmp = wx[0] * values[..., c_first]
    for b in range(1, 4):
        tmp = tmp + wx[b] * values[..., c_first + b]
    out = wy[0][:, None] * tmp[..., r_first, :]
    for a in range(1, 4):
        out = out + wy[a][:, None] * tmp[..., r_first + a, :]
    return out


def _norm(w: FloatArray) -> FloatArray:
    return np.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2] + w[3] * w[3])


def smooth_field(
    seed: int, name: str, region: Region, scale_km: float, lon: FloatArray, lat: FloatArray
) -> FloatArray:
    """A static unit-variance smooth random field on the cells ``lat x lon``.

    Parameters
    ----------
    seed : int
        World seed.
    name : str
        Field name; different names give independent fields.
    region : tuple of float
        ``(west, east, south, north)`` of the whole domain (fixes the lattice).
    scale_km : float
        Lattice spacing (correlation length) in km.
    lon, lat : numpy.ndarray
        1-D cell-centre longitudes (west to east) and latitudes (north to south),
        degrees, inside ``region`` or at most two lattice spacings outside.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(lat), len(lon))``, approximately standard normal.
    """
    lattice = Lattice.covering(region, scale_km)
    r_idx, wy = lattice.row_weights(lat)
    c_idx, wx = lattice.col_weights(lon)
    r0 = int(r_idx.min())
    rows = np.stack([_row_noise(seed, name, r, (lattice.ncol,)) for r in range(r0, int(r_idx.max()) + 4)])
    out = _interpolate(rows, r_idx - r0, wy, c_idx, wx)
    return out / (_norm(wy)[:, None] * _norm(wx)[None, :])


class SmoothSeries:
    """A daily series of unit-variance smooth random fields, AR(1) in time.

    The lattice values of the cells ``lat x lon`` are generated for all ``n_times``
    days on construction (a few lattice points per tile); :meth:`values` smooths a
    range of days onto the cells.

    Parameters
    ----------
    seed : int
        World seed.
    name : str
        Field name; different names give independent series.
    region : tuple of float
        ``(west, east, south, north)`` of the whole domain.
    scale_km : float
        Lattice spacing (spatial correlation length) in km.
    rho : float
        Lag-1 (day-to-day) autocorrelation, ``0 <= rho < 1``.
    n_times : int
        Number of days of the whole series (identical for every tile).
    lon, lat : numpy.ndarray
        1-D cell-centre coordinates of the tile (degrees).

    Raises
    ------
    ConfigError
        If ``rho`` is outside ``[0, 1)`` or ``n_times < 1``.
    """

    def __init__(
        self,
        seed: int,
        name: str,
        region: Region,
        scale_km: float,
        rho: float,
        n_times: int,
        lon: FloatArray,
        lat: FloatArray,
    ) -> None:
        if not 0.0 <= rho < 1.0 or n_times < 1:
            msg = f"SmoothSeries needs 0 <= rho < 1 and n_times >= 1; got rho={rho}, n_times={n_times}."
            raise ConfigError(msg)
        lattice = Lattice.covering(region, scale_km)
        r_idx, self._wy = lattice.row_weights(lat)
        c_idx, self._wx = lattice.col_weights(lon)
        r0, c0 = int(r_idx.min()), int(c_idx.min())
        c1 = int(c_idx.max()) + 4
        noise = np.stack(
            [_row_noise(seed, name, r, (n_times, lattice.ncol))[:, c0:c1] for r in range(r0, int(r_idx.max()) + 4)],
            axis=1,
        )
        innovation = math.sqrt(1.0 - rho * rho)
        noise[0] /= innovation  # start from the stationary distribution
        self._lattice = lfilter([innovation], [1.0, -rho], noise, axis=0)
        self._r = r_idx - r0
        self._c = c_idx - c0
        self._scale = _norm(self._wy)[:, None] * _norm(self._wx)[None, :]

    def values(self, t0: int, t1: int) -> FloatArray:
        """Fields of days ``t0 .. t1-1``, shape ``(t1 - t0, len(lat), len(lon))``."""
        out = _interpolate(self._lattice[t0:t1], self._r, self._wy, self._c, self._wx)
        return out / self._scale
