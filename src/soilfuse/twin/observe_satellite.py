"""Coarse satellite soil moisture of the twin: ESA CCI-like (0.25°) and SMAP-like (36 km).

Both start from the area means of the truth that :mod:`soilfuse.twin.observe_grids`
accumulates on their grids, one block of days at a time, and add the errors and gaps
described there: compressed range, noise and CCI flag bits; SMAP's dry bias, moving
swaths and dropouts. Random draws are keyed on the day number and cell, so a block
gives the same values as the whole period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import FloatArray, Region
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import variable_attrs
from soilfuse.twin.fields import SmoothSeries
from soilfuse.twin.observe_common import day_numbers, hash_normal, hash_uniform, snap_region

__all__ = [
    "CCIModel",
    "SMAPModel",
    "cci_block",
    "cci_datasets",
    "cci_gap_series",
    "cci_grid",
    "smap_block",
    "smap_datasets",
    "smap_grid",
    "swath_mask",
]

_STREAM: dict[str, int] = {"cci_noise": 211, "cci": 202, "smap": 203, "smap_orbit": 205}


@dataclass(frozen=True)
class CCIModel:
    """Errors and gaps of the CCI-like combined soil moisture.

    Parameters
    ----------
    resolution : float
        Grid spacing in degrees.
    gain, offset : float
        The product is ``gain * truth + offset`` (m3 m-3) before noise.
    noise_sd : float
        Retrieval noise (m3 m-3).
    frozen_fraction : float
        Frozen share of the footprint from which the pixel is flagged 1.
    snow_swe : float
        Snow water equivalent (m) from which the pixel is flagged 1.
    dense_lai : float
        Footprint-mean LAI from which the pixel is flagged 2 (dense vegetation).
    failure_rate : float
        Probability of a retrieval failure (flag 4).
    low_weight_rate : float
        Probability of flag 16 (value kept, noise doubled).
    gap_fraction : float
        Mean share of pixels without an observation on a day (moving coherent gaps).
    gap_winter : float
        Extra share of such gaps in mid-winter (cosine in day of year).
    min_coverage : float
        Smallest land share of a cell for a value.
    """

    resolution: float = 0.25
    gain: float = 0.85
    offset: float = 0.04
    noise_sd: float = 0.03
    frozen_fraction: float = 0.2
    snow_swe: float = 0.005
    dense_lai: float = 4.0
    failure_rate: float = 0.03
    low_weight_rate: float = 0.05
    gap_fraction: float = 0.2
    gap_winter: float = 0.15
    min_coverage: float = 0.5


@dataclass(frozen=True)
class SMAPModel:
    """Errors and gaps of the SMAP-like 36 km AM (descending) soil moisture.

    Parameters
    ----------
    bias : float
        Additive bias (m3 m-3; SMAP tends to be dry).
    noise_sd : float
        Retrieval noise of ``soil_moisture`` (m3 m-3).
    dca_sd : float
        Extra noise of ``soil_moisture_dca`` relative to ``soil_moisture`` (m3 m-3).
    swath_km : float
        Swath width (km).
    orbits_per_day : float
        Orbits per day (14.625 for the 8-day exact repeat).
    track_tilt : float
        Longitude shift of a descending ground track per degree of latitude.
    frozen_fraction, snow_swe, dense_lai : float
        Thresholds as in :class:`CCIModel`; such pixels are dropped.
    rfi_rate : float
        Probability of a radio-frequency-interference dropout.
    min_coverage : float
        Smallest land share of a cell for a value.
    """

    bias: float = -0.02
    noise_sd: float = 0.03
    dca_sd: float = 0.01
    swath_km: float = 1000.0
    orbits_per_day: float = 14.625
    track_tilt: float = 0.2
    frozen_fraction: float = 0.2
    snow_swe: float = 0.005
    dense_lai: float = 4.5
    rfi_rate: float = 0.03
    min_coverage: float = 0.5


def cci_grid(region: Region, resolution: float = 0.25) -> Grid:
    """The CCI 0.25° grid (edges on multiples of 0.25°) covering ``region``."""
    return Grid.latlon(snap_region(region, resolution), resolution)


def smap_grid(region: Region) -> Grid:
    """The EASE-Grid 2.0 36 km cells intersecting ``region``."""
    return Grid.ease2("36km").subset(region)


# ====================================================================== CCI
def cci_gap_series(grid: Grid, n_times: int, seed: int, region: Region) -> SmoothSeries:
    """The smooth random field whose low values are the days without a CCI observation."""
    lon, lat = grid.lonlat()
    return SmoothSeries(seed, "cci-overpass-gaps", snap_region(region, 0.25), 250.0, 0.3, n_times, lon[0], lat[:, 0])


def cci_block(
    f: FloatArray, stat: Mapping[str, FloatArray], grid: Grid, times: pd.DatetimeIndex, days: slice,
    m: CCIModel, seed: int, gaps: SmoothSeries,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """CCI variables and their truth on the days ``days`` of ``times`` from the area means ``f``."""
    from scipy.special import ndtri

    truth, frozen, sd, lai = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
    ny, nx = grid.shape
    day = day_numbers(times[days])[:, None, None]
    r = np.arange(ny)[None, :, None]
    c = np.arange(nx)[None, None, :]
    noise = hash_normal(seed, _STREAM["cci_noise"], day, r, c)
    u_fail = hash_uniform(seed, _STREAM["cci"], day, r, c)
    u_low = hash_uniform(seed, _STREAM["cci"] + 1, day, r, c)
    lon, _ = grid.lonlat()
    doy = np.asarray(times[days].day_of_year)
    p_gap = m.gap_fraction + m.gap_winter * np.cos(2 * np.pi * (doy - 15) / 365.25)
    no_obs = gaps.values(days.start, days.stop) < ndtri(np.clip(p_gap, 1e-3, 1 - 1e-3))[:, None, None]
    valid_truth = np.isfinite(truth)
    flag = np.zeros(truth.shape, dtype="int16")
    flag |= np.where((frozen >= m.frozen_fraction) | (sd >= m.snow_swe), 1, 0).astype("int16")
    flag |= np.where(lai >= m.dense_lai, 2, 0).astype("int16")
    flag |= np.where(u_fail < m.failure_rate, 4, 0).astype("int16")
    low = u_low < m.low_weight_rate
    flag |= np.where(low, 16, 0).astype("int16")
    sigma = m.noise_sd * np.where(low, 2.0, 1.0)
    value = m.gain * truth + m.offset + sigma * noise
    above = value > stat["porosity"][None]
    flag |= np.where(above, 8, 0).astype("int16")
    value = np.clip(value, 0.0, None)
    masked = (flag & 7).astype(bool) | no_obs | ~valid_truth
    sm = np.where(masked, np.nan, value)
    flag = np.where(valid_truth, flag, 0)
    has = np.isfinite(sm)
    combos = np.array([1888, 1824, 1376], dtype="int16")
    pick = (hash_uniform(seed, _STREAM["cci"] + 2, day, r, c) * combos.size).astype(int)
    obs = {
        "sm": sm.astype("float32"),
        "sm_uncertainty": np.where(has, sigma * (1 + lai / 4), np.nan).astype("float32"),
        "flag": flag.astype("int8"),
        "t0": np.where(has, day + (1.5 - lon[None] / 15.0) / 24.0, np.nan),
        "dnflag": np.where(has, 2, 0).astype("int8"),
        "mode": np.where(has, 2, 0).astype("int8"),
        "sensor": np.where(has, combos[pick], 0).astype("int16"),
        "freqbandID": np.where(has, 11, 0).astype("int16"),
    }
    return obs, {"sm": truth.astype("float32"), "frozen_fraction": frozen.astype("float32")}


def cci_datasets(obs: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], grid: Grid,
                  times: pd.DatetimeIndex) -> tuple[xr.Dataset, xr.Dataset]:
    """The CCI variables (with CCI attributes) and their truth as datasets."""
    attrs = {
        "sm": variable_attrs("sm"), "sm_uncertainty": variable_attrs("sm_uncertainty"),
        "flag": {"long_name": "Flag"},
        "t0": {"long_name": "Observation Timestamp", "units": "days since 1970-01-01 00:00:00 UTC"},
        "dnflag": {"long_name": "Day / Night Flag"}, "mode": {"long_name": "Satellite  Mode"},
        "sensor": {"long_name": "Sensor"}, "freqbandID": {"long_name": "Frequency Band Identification"},
    }
    dims = ("time", "y", "x")
    ds = xr.Dataset({k: (dims, v, attrs[k]) for k, v in obs.items()}, coords={"time": times})
    ref = xr.Dataset({"sm": (dims, truth["sm"], variable_attrs("sm")),
                      "frozen_fraction": (dims, truth["frozen_fraction"])}, coords={"time": times})
    return with_grid(ds, grid), with_grid(ref, grid)


# ====================================================================== SMAP
def swath_mask(grid: Grid, times: pd.DatetimeIndex, m: SMAPModel, seed: int) -> np.ndarray:
    """Cells of ``grid`` inside an AM descending swath on each day, ``(time, y, x)`` bool.

    Ground tracks are spaced ``360 / orbits_per_day`` degrees of longitude and shift by
    the fractional part of ``orbits_per_day`` of that spacing every day (an 8-day
    repeat for 14.625 orbits per day), tilted by ``track_tilt`` degrees of longitude per
    degree of latitude; a cell is seen when its east-west distance to a track is below
    half the swath width.
    """
    spacing = 360.0 / m.orbits_per_day
    shift = (1.0 - (m.orbits_per_day % 1.0)) * spacing
    lon0 = float(hash_uniform(seed, _STREAM["smap_orbit"], 0)) * spacing
    lon, lat = grid.lonlat()
    day = day_numbers(times)
    track = (lon0 - day * shift) % spacing
    d = (lon[None] - m.track_tilt * (lat[None] - 30.0) - track[:, None, None] + spacing / 2) % spacing
    dist_km = np.abs(d - spacing / 2) * 111.32 * np.cos(np.deg2rad(lat))[None]
    return np.asarray(dist_km < m.swath_km / 2)


def smap_block(f: FloatArray, grid: Grid, times: pd.DatetimeIndex, m: SMAPModel,
                seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """SMAP soil moisture and its truth on the days ``times`` from the area means ``f``."""
    truth, frozen, sd, lai = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
    ny, nx = grid.shape
    day = day_numbers(times)[:, None, None]
    r = np.arange(ny)[None, :, None]
    c = np.arange(nx)[None, None, :]
    seen = swath_mask(grid, times, m, seed)
    hot = hash_uniform(seed, _STREAM["smap"], 0, r, c) < 0.05
    rfi = hash_uniform(seed, _STREAM["smap"] + 1, day, r, c) < np.where(hot, 0.5, m.rfi_rate)
    masked = (~seen | (frozen >= m.frozen_fraction) | (sd >= m.snow_swe) | (lai >= m.dense_lai)
              | rfi | ~np.isfinite(truth))
    value = np.clip(truth + m.bias + m.noise_sd * hash_normal(seed, _STREAM["smap"] + 2, day, r, c), 0.02, 0.6)
    dca = np.clip(value + m.dca_sd * hash_normal(seed, _STREAM["smap"] + 3, day, r, c), 0.02, 0.6)
    obs = {"sm": np.where(masked, np.nan, value).astype("float32"),
           "sm_dca": np.where(masked, np.nan, dca).astype("float32")}
    return obs, {"sm": truth.astype("float32"), "frozen_fraction": frozen.astype("float32"), "swath": seen}


def smap_datasets(obs: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], grid: Grid,
                   times: pd.DatetimeIndex) -> tuple[xr.Dataset, xr.Dataset]:
    """The SMAP soil moisture and its truth (with the swath mask) as datasets."""
    dims = ("time", "y", "x")
    ds = xr.Dataset({k: (dims, v, variable_attrs("sm")) for k, v in obs.items()}, coords={"time": times})
    ref = xr.Dataset({"sm": (dims, truth["sm"], variable_attrs("sm")),
                      "frozen_fraction": (dims, truth["frozen_fraction"]), "swath": (dims, truth["swath"])},
                     coords={"time": times})
    return with_grid(ds, grid), with_grid(ref, grid)
