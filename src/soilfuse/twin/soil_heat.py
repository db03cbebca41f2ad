"""Soil temperature: surface energy balance at the ground and 1-D heat conduction.

The daily-mean ground-surface temperature (:func:`surface_temperature`) is the air
temperature plus a radiative excess: absorbed shortwave at the ground (shaded by the
canopy, ``exp(-0.5 LAI)``), reduced by evaporative cooling of wet soil, minus half
the isothermal net longwave loss, over an exchange coefficient that grows with wind.
Under snow the ground is insulated: the surface value relaxes toward the soil just
below, capped at 0 °C, with weight ``exp(-snow depth / 8 cm)``.

Below the surface, temperature follows ``C ∂T/∂t = ∂/∂z (k ∂T/∂z)`` on a column of
nodes from 0 to 8 m (:data:`NODE_DEPTHS_M`; 5 cm spacing in the top 20 cm),
discretised by finite volumes and the implicit θ-method (θ = 1, backward Euler, by
default; θ = 0.5 is Crank-Nicolson) with the surface node held at the surface
temperature and the bottom node at the deep (mean annual) temperature. Heat
capacity ``C`` and conductivity ``k`` come from texture and moisture
(:mod:`soilfuse.twin.pedotransfer`); interface conductivities are harmonic means.
Each day is split into sub-steps; daily outputs are the mean over the sub-steps.

Usage
-----
>>> import numpy as np
>>> n = NODE_DEPTHS_M.size
>>> temp = np.full((n, 1), 280.0)
>>> cap, cond = np.full((n, 1), 2.5e6), np.full((n, 1), 1.2)
>>> new, mean = conduct(temp, cap, cond, np.array([290.0]), np.array([280.0]), dt=86400.0, n_sub=4)
>>> bool(290.0 > mean[node_index(5.0), 0] > mean[node_index(10.0), 0] > 280.0)
True
"""

from __future__ import annotations

import numpy as np

from soilfuse._typing import FloatArray
from soilfuse.exceptions import ConfigError
from soilfuse.twin.forcing import STEFAN_BOLTZMANN, T_FREEZE

__all__ = [
    "NODE_DEPTHS_M",
    "OUTPUT_DEPTHS_CM",
    "conduct",
    "node_index",
    "solve_tridiagonal",
    "surface_temperature",
]

#: Depths of the temperature nodes (m); node 0 is the surface, the last node the deep boundary.
NODE_DEPTHS_M = np.array([0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.55, 0.70, 0.85, 1.0, 1.6, 2.6, 4.5, 8.0])

#: Depths (cm) at which soil temperature is reported.
OUTPUT_DEPTHS_CM = (0.0, 5.0, 10.0, 15.0, 20.0, 40.0)

_SNOW_DENSITY = 250.0  # kg m-3
_SNOW_DAMPING_M = 0.08


def node_index(depth_cm: float) -> int:
    """Index of the node at ``depth_cm`` (cm).

    Raises
    ------
    ConfigError
        If no node lies at that depth.
    """
    hits = np.flatnonzero(np.isclose(NODE_DEPTHS_M * 100.0, depth_cm))
    if hits.size != 1:
        msg = f"No soil-temperature node at {depth_cm} cm; nodes are at {(NODE_DEPTHS_M * 100).tolist()} cm."
        raise ConfigError(msg)
    return int(hits[0])


def surface_temperature(
    t_air: FloatArray,
    ssr: FloatArray,
    strd: FloatArray,
    lai: FloatArray,
    soil_wetness: FloatArray,
    wind: FloatArray,
    swe_mm: FloatArray,
    t_shallow: FloatArray,
) -> FloatArray:
    """Daily-mean ground-surface (0 cm) temperature, K.

    Parameters
    ----------
    t_air : numpy.ndarray
        Daily mean 2 m air temperature, K.
    ssr : numpy.ndarray
        Net shortwave radiation above the canopy, W m-2.
    strd : numpy.ndarray
        Downward longwave radiation, W m-2.
    lai : numpy.ndarray
        Leaf area index, m2 m-2 (shades the ground by ``exp(-0.5 LAI)``).
    soil_wetness : numpy.ndarray
        Relative wetness of the top soil (0 dry .. 1 at field capacity); wet soil
        spends more energy on evaporation.
    wind : numpy.ndarray
        10 m wind speed, m s-1.
    swe_mm : numpy.ndarray
        Snow water equivalent, mm.
    t_shallow : numpy.ndarray
        Soil temperature just below the surface (previous step), K.
    """
    shade = np.exp(-0.5 * lai)
    lw_loss = 0.97 * STEFAN_BOLTZMANN * t_air**4 - strd
    exchange = 10.0 + 2.5 * wind + 4.0 * 0.97 * STEFAN_BOLTZMANN * t_air**3
    absorbed = ssr * shade * (1.0 - 0.5 * soil_wetness)
    bare = t_air + (absorbed - 0.5 * lw_loss * shade) / exchange
    insulation = np.exp(-(swe_mm * 1e-3 * 1000.0 / _SNOW_DENSITY) / _SNOW_DAMPING_M)
    snowy = insulation * np.minimum(bare, T_FREEZE) + (1.0 - insulation) * np.minimum(t_shallow, T_FREEZE)
    return np.where(swe_mm > 0.0, snowy, bare)


def solve_tridiagonal(lower: FloatArray, diag: FloatArray, upper: FloatArray, rhs: FloatArray) -> FloatArray:
    """Solve many tridiagonal systems at once (Thomas algorithm along axis 0).

    scipy has no batched tridiagonal solver (``solve_banded`` takes one system), so
    the elimination runs over the ``n`` rows with each step vectorised over the
    columns (pixels). The matrices must be diagonally dominant (true for the heat
    equation), so no pivoting is needed.

    Parameters
    ----------
    lower, diag, upper, rhs : numpy.ndarray
        Shape ``(n, pixels)``; ``lower[0]`` and ``upper[-1]`` are ignored.

    Returns
    -------
    numpy.ndarray
        Solution of shape ``(n, pixels)``.
    """
    cp, inv = _factor(lower, diag, upper)
    return _substitute(lower, cp, inv, rhs)


def _factor(lower: FloatArray, diag: FloatArray, upper: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = diag.shape[0]
    cp = np.empty_like(diag)
    inv = np.empty_like(diag)
    inv[0] = 1.0 / diag[0]
    cp[0] = upper[0] * inv[0]
    for i in range(1, n):
        inv[i] = 1.0 / (diag[i] - lower[i] * cp[i - 1])
        cp[i] = upper[i] * inv[i]
    return cp, inv


def _substitute(lower: FloatArray, cp: FloatArray, inv: FloatArray, rhs: FloatArray) -> FloatArray:
    n = rhs.shape[0]
    x = np.empty_like(rhs)
    x[0] = rhs[0] * inv[0]
    for i in range(1, n):
        x[i] = (rhs[i] - lower[i] * x[i - 1]) * inv[i]
    for i in range(n - 2, -1, -1):
        x[i] = x[i] - cp[i] * x[i + 1]
    return x


def conduct(
    temp: FloatArray,
    capacity: FloatArray,
    conductivity: FloatArray,
    t_top: FloatArray,
    t_bottom: FloatArray,
    *,
    dt: float,
    n_sub: int,
    theta: float = 1.0,
    depths: FloatArray = NODE_DEPTHS_M,
) -> tuple[FloatArray, FloatArray]:
    """Advance the soil-temperature column by ``dt`` seconds in ``n_sub`` implicit sub-steps.

    Parameters
    ----------
    temp : numpy.ndarray
        Temperatures (K) at the nodes, shape ``(nodes, pixels)``, at the start.
    capacity : numpy.ndarray
        Volumetric heat capacity at the nodes, J m-3 K-1, ``(nodes, pixels)``.
    conductivity : numpy.ndarray
        Thermal conductivity at the nodes, W m-1 K-1, ``(nodes, pixels)``.
    t_top, t_bottom : numpy.ndarray
        Surface and deep boundary temperatures (K) held over the step, ``(pixels,)``.
    dt : float
        Step length, s.
    n_sub : int
        Number of sub-steps.
    theta : float
        Implicitness: 1 backward Euler (default), 0.5 Crank-Nicolson.
    depths : numpy.ndarray
        Node depths, m (surface node first).

    Returns
    -------
    temp, mean : numpy.ndarray
        Temperatures at the end of the step and their mean over the sub-steps, both
        ``(nodes, pixels)``.

    Raises
    ------
    ConfigError
        If ``theta`` is outside ``[0.5, 1]`` or ``n_sub < 1``.
    """
    if not 0.5 <= theta <= 1.0 or n_sub < 1:
        msg = f"conduct needs 0.5 <= theta <= 1 and n_sub >= 1; got theta={theta}, n_sub={n_sub}."
        raise ConfigError(msg)
    h = dt / n_sub
    gap = np.diff(depths)[:, None]
    k_face = 2.0 * conductivity[:-1] * conductivity[1:] / (conductivity[:-1] + conductivity[1:])
    g = k_face / gap  # conductance of each interface, W m-2 K-1
    storage = capacity[1:-1] * (0.5 * (gap[:-1] + gap[1:]) / h)  # interior nodes
    g_up, g_down = g[:-1], g[1:]
    if theta == 1.0:
        lower, upper, diag = -g_up, -g_down, storage + g_up + g_down
    else:
        lower, upper = -theta * g_up, -theta * g_down
        diag = storage + theta * (g_up + g_down)
    cp, inv = _factor(lower, diag, upper)

    state = temp.copy()
    state[0] = t_top
    state[-1] = t_bottom
    total = np.zeros_like(state)
    for _ in range(n_sub):
        interior = state[1:-1]
        rhs = storage * interior
        if theta < 1.0:
            flux = g_down * (state[2:] - interior) - g_up * (interior - state[:-2])
            rhs = rhs + (1.0 - theta) * flux
        rhs[0] = rhs[0] + theta * g_up[0] * t_top
        rhs[-1] = rhs[-1] + theta * g_down[-1] * t_bottom
        state[1:-1] = _substitute(lower, cp, inv, rhs)
        total += state
    return state, total / n_sub
