"""Daily meteorological forcing of the twin: temperature, precipitation, radiation, wind, snow.

All functions are numpy kernels on arrays of shape ``(days, pixels)`` (pixels of one
tile, flattened row-major) built from the static climatology of
:mod:`soilfuse.twin.static` and the smooth random series of
:mod:`soilfuse.twin.fields`:

* **2 m air temperature** - mean annual temperature (with its 6.5 K/km lapse rate)
  plus a seasonal cosine (minimum mid-January) whose amplitude grows poleward and
  inland, plus synoptic (450 km, lag-1 correlation 0.8) and mesoscale (60 km, 0.5)
  anomalies larger in winter, minus a cloud cooling term in summer (warming in winter).
* **precipitation** - a latent "weather" field (300 km synoptic + 45 km convective,
  AR(1) in time) rains where it exceeds the threshold that gives the local wet-day
  probability; the amount is proportional to the exceedance, scaled so the expected
  annual total equals the mean annual precipitation map. Wet-day probability and
  intensity peak in July (monsoon-like, stronger in the east). Cloud fraction is a
  smooth function of the same field, so rain falls on cloudy days.
* **shortwave** - daily-mean top-of-atmosphere irradiance by latitude and day
  (FAO-56, Allen et al. 1998, eqs. 21-25) times the clear-sky transmissivity
  ``0.75 + 2e-5 z`` (FAO-56 eq. 37) times the cloud attenuation ``1 - 0.75 c^3.4``
  (Kasten & Czeplak 1980), with a terrain factor on the direct part from slope and
  aspect at solar noon.
* **longwave** - ``ε σ T^4`` with the clear-sky emissivity of Brutsaert (1975) and the
  cloud correction ``ε = (1 - c) ε_clear + c`` (Crawford & Duchon 1999).
* **humidity, wind** - relative humidity from climate wetness and cloudiness; wind
  stronger on high ground and in spring with synoptic anomalies.
* **snow** - snowfall where t2m < 0 °C accumulates as water equivalent; degree-day
  melt of 3.5 mm K-1 day-1.

Usage
-----
>>> import numpy as np
>>> ra = toa_shortwave(np.array([30.0]), np.array([172, 355]))
>>> [round(float(v)) for v in ra[:, 0]]
[477, 228]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from soilfuse._typing import FloatArray
from soilfuse.twin.config import TwinConfig
from soilfuse.twin.fields import SmoothSeries

__all__ = [
    "DEGREE_DAY_FACTOR",
    "STEFAN_BOLTZMANN",
    "Climate",
    "WeatherFields",
    "daily_weather",
    "saturation_vapour_pressure",
    "snow_step",
    "toa_instant",
    "toa_shortwave",
]

STEFAN_BOLTZMANN = 5.670374419e-8  # W m-2 K-4
SOLAR_CONSTANT = 1367.0  # W m-2
#: Degree-day snowmelt factor, mm K-1 day-1.
DEGREE_DAY_FACTOR = 3.5
T_FREEZE = 273.15

#: Random weather series: name -> (spatial scale km, lag-1 autocorrelation).
WEATHER_SERIES: dict[str, tuple[float, float]] = {
    "t_synoptic": (450.0, 0.8),
    "t_meso": (60.0, 0.5),
    "w_synoptic": (300.0, 0.55),
    "w_meso": (45.0, 0.3),
    "u_synoptic": (600.0, 0.6),
    "v_synoptic": (600.0, 0.6),
    "h_synoptic": (400.0, 0.7),
}


@dataclass
class Climate:
    """Static climatology of the pixels of one tile, each an array of shape ``(pixels,)``.

    Attributes
    ----------
    lat : latitude, degrees. elevation : m. slope, aspect : degrees.
    mat : mean annual air temperature, °C. amplitude : half the annual range, K.
    map_mm : mean annual precipitation, mm. monsoon : summer-rain strength (0..1).
    """

    lat: FloatArray
    elevation: FloatArray
    slope: FloatArray
    aspect: FloatArray
    mat: FloatArray
    amplitude: FloatArray
    map_mm: FloatArray
    monsoon: FloatArray
    cos_slope: FloatArray = field(init=False)
    sin_slope: FloatArray = field(init=False)
    cos_aspect: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        slope, aspect = np.radians(self.slope), np.radians(self.aspect)
        self.cos_slope, self.sin_slope, self.cos_aspect = np.cos(slope), np.sin(slope), np.cos(aspect)

    @classmethod
    def from_maps(cls, maps: dict[str, FloatArray], lat: FloatArray) -> Climate:
        """Flatten the static maps of a tile (``lat`` are its row latitudes)."""
        shape = maps["elevation"].shape
        return cls(
            lat=np.broadcast_to(lat[:, None], shape).ravel().copy(),
            elevation=maps["elevation"].ravel(),
            slope=maps["slope"].ravel(),
            aspect=maps["aspect"].ravel(),
            mat=maps["mean_annual_temperature"].ravel(),
            amplitude=maps["temperature_amplitude"].ravel(),
            map_mm=maps["mean_annual_precipitation"].ravel(),
            monsoon=maps["monsoon"].ravel(),
        )

    def seasonal_temperature(self, doy: FloatArray) -> FloatArray:
        """Climatological daily air temperature (K) on days of year ``doy``, shape ``(days, pixels)``."""
        season = -np.cos(2.0 * np.pi * (np.asarray(doy, dtype="float64")[:, None] - 15.0) / 365.25)
        return T_FREEZE + self.mat + self.amplitude * season


class WeatherFields:
    """The random weather series of one tile, for the whole simulated period.

    Parameters
    ----------
    config : TwinConfig
        The world (seed and region fix the fields).
    lon, lat : numpy.ndarray
        1-D cell-centre coordinates of the tile.
    n_days : int
        Length of the simulated period including spin-up.
    """

    def __init__(self, config: TwinConfig, lon: FloatArray, lat: FloatArray, n_days: int) -> None:
        self._series = {
            name: SmoothSeries(config.seed, name, config.region, scale, rho, n_days, lon, lat)
            for name, (scale, rho) in WEATHER_SERIES.items()
        }

    def block(self, t0: int, t1: int) -> dict[str, FloatArray]:
        """Series of days ``t0 .. t1-1`` as ``(days, pixels)`` arrays."""
        out = {}
        for name, series in self._series.items():
            values = series.values(t0, t1)
            out[name] = values.reshape(values.shape[0], -1)
        return out


def _declination(doy: FloatArray) -> FloatArray:
    return 0.409 * np.sin(2.0 * np.pi * doy / 365.0 - 1.39)


def toa_shortwave(lat: FloatArray, doy: FloatArray) -> FloatArray:
    """Daily-mean top-of-atmosphere shortwave irradiance (W m-2), shape ``(days, pixels)``.

    FAO-56 (Allen et al. 1998) equations 21-25 with the solar constant 1367 W m-2.

    Parameters
    ----------
    lat : numpy.ndarray
        Latitudes, degrees, shape ``(pixels,)``.
    doy : numpy.ndarray
        Days of year, shape ``(days,)``.
    """
    phi = np.radians(np.asarray(lat, dtype="float64"))[None, :]
    d = np.asarray(doy, dtype="float64")[:, None]
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * d / 365.0)
    delta = _declination(d)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    return (SOLAR_CONSTANT / np.pi) * dr * (
        ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)
    )


def toa_instant(lat: FloatArray, doy: FloatArray, hour: float) -> FloatArray:
    """Top-of-atmosphere irradiance (W m-2) at local solar ``hour``, shape ``(days, pixels)``."""
    phi = np.radians(lat)[None, :]
    d = np.asarray(doy, dtype="float64")[:, None]
    delta = _declination(d)
    h = np.radians(15.0 * (hour - 12.0))
    cos_z = np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * math.cos(h)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * d / 365.0)
    return SOLAR_CONSTANT * dr * np.maximum(cos_z, 0.0)


def _noon_sun(lat: FloatArray, doy: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cosine and sine of the solar-noon zenith angle and +1/-1 for a sun in the south/north."""
    phi = np.radians(lat)[None, :]
    delta = _declination(np.asarray(doy, dtype="float64")[:, None])
    zenith = np.abs(phi - delta)
    return np.cos(zenith), np.sin(zenith), np.where(phi >= delta, -1.0, 1.0)


def _terrain_factor(clim: Climate, sun: tuple[FloatArray, FloatArray, FloatArray]) -> FloatArray:
    """Ratio of direct irradiance on the slope to that on flat ground at solar noon.

    ``cos(incidence) = cos s cos z + sin s sin z cos(aspect - sun azimuth)`` with the
    sun due south (azimuth 180°, ``cos(a - 180°) = -cos a``) or due north.
    """
    cos_z, sin_z, side = sun
    incidence = clim.cos_slope * cos_z + clim.sin_slope * clim.cos_aspect * (side * sin_z)
    return np.clip(incidence / np.maximum(cos_z, 0.15), 0.0, 2.0)


def saturation_vapour_pressure(t_kelvin: FloatArray) -> FloatArray:
    """Saturation vapour pressure over water (kPa), Tetens formula as in FAO-56 eq. 11."""
    t = t_kelvin - T_FREEZE
    return 0.6108 * np.exp(17.27 * t / (t + 237.3))


def daily_weather(clim: Climate, doy: FloatArray, fields: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """Daily weather of a block of days (arrays ``(days, pixels)``).

    Parameters
    ----------
    clim : Climate
        Climatology of the tile's pixels.
    doy : numpy.ndarray
        Day of year of each day of the block, shape ``(days,)``.
    fields : dict
        The block of :meth:`WeatherFields.block`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``t2m`` (K), ``tp`` (mm day-1), ``cloud_fraction`` (1), ``ssrd``, ``strd`` (W m-2),
        ``rh`` (1), ``u10``, ``v10``, ``wind10`` (m s-1), ``sw_day`` (clear-sky
        irradiance at 10:30, W m-2) and ``dtr_air`` (diurnal air temperature range, K).
    """
    d = np.asarray(doy, dtype="float64")[:, None]
    season = -np.cos(2.0 * np.pi * (d - 15.0) / 365.25)
    summer_rain = np.cos(2.0 * np.pi * (d - 197.0) / 365.25)
    m = clim.monsoon[None, :]

    weather = (0.75 * fields["w_synoptic"] + 0.66 * fields["w_meso"]) / math.hypot(0.75, 0.66)
    p_annual = np.clip(0.08 + 0.25 * clim.map_mm / 1000.0, 0.05, 0.5)[None, :]
    p_wet = np.clip(p_annual * (1.0 + 0.6 * m * summer_rain), 0.01, 0.9)
    threshold = ndtri(1.0 - p_wet)
    mean_excess = np.exp(-0.5 * threshold * threshold) / math.sqrt(2.0 * math.pi) / p_wet - threshold
    intensity = clim.map_mm[None, :] / (365.25 * p_annual * (1.0 + 0.15 * m * m)) * (1.0 + 0.5 * m * summer_rain)
    tp = np.where(weather > threshold, intensity * (weather - threshold) / mean_excess, 0.0)
    cloud = ndtr(1.3 * (weather - threshold) + 1.0)

    sigma_t = 2.4 - 0.6 * season
    cloud_effect = 0.5 + 1.5 * season
    anomaly = sigma_t * (0.9 * fields["t_synoptic"] + 0.436 * fields["t_meso"]) - cloud_effect * (cloud - 0.55)
    t2m = clim.seasonal_temperature(doy) + anomaly

    # Solar geometry depends on latitude only: evaluate it once per row of the tile.
    lats, row = np.unique(clim.lat, return_inverse=True)
    sun = tuple(v[:, row] for v in _noon_sun(lats, doy))
    transmissivity = (0.75 + 2e-5 * clim.elevation)[None, :]
    flat = toa_shortwave(lats, doy)[:, row] * transmissivity * (1.0 - 0.75 * cloud**3.4)
    diffuse = 0.2 + 0.7 * cloud
    ssrd = flat * (diffuse + (1.0 - diffuse) * _terrain_factor(clim, sun))  # type: ignore[arg-type]

    wetness = (clim.map_mm / (clim.map_mm + 600.0))[None, :]
    rh = np.clip(0.30 + 0.40 * wetness + 0.25 * (cloud - 0.5) + 0.07 * fields["h_synoptic"], 0.08, 0.98)
    e_hpa = 10.0 * rh * saturation_vapour_pressure(t2m)
    eps_clear = 1.24 * (e_hpa / t2m) ** (1.0 / 7.0)
    strd = ((1.0 - cloud) * eps_clear + cloud) * STEFAN_BOLTZMANN * t2m**4

    spring = 1.0 + 0.25 * np.cos(2.0 * np.pi * (d - 90.0) / 365.25)
    u10 = (0.8 + 1.0e-3 * clim.elevation)[None, :] * spring + 1.8 * fields["u_synoptic"]
    v10 = 0.3 + 1.4 * fields["v_synoptic"]
    return {
        "t2m": t2m,
        "tp": tp,
        "cloud_fraction": cloud,
        "ssrd": ssrd,
        "strd": strd,
        "rh": rh,
        "u10": u10,
        "v10": v10,
        "wind10": np.hypot(u10, v10),
        "sw_day": toa_instant(lats, doy, 10.5)[:, row] * transmissivity,
        "dtr_air": 3.0 + 9.0 * (1.0 - cloud),
    }


def snow_step(swe: FloatArray, tp: FloatArray, t2m: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One day of snow accumulation and degree-day melt.

    Parameters
    ----------
    swe : numpy.ndarray
        Snow water equivalent at the start of the day, mm.
    tp : numpy.ndarray
        Precipitation, mm day-1 (snow where ``t2m < 273.15 K``).
    t2m : numpy.ndarray
        Daily mean air temperature, K.

    Returns
    -------
    swe, rain, melt : numpy.ndarray
        New snow water equivalent (mm), liquid precipitation and melt (mm day-1).
    """
    cold = t2m < T_FREEZE
    snowfall = np.where(cold, tp, 0.0)
    rain = tp - snowfall
    pack = swe + snowfall
    melt = np.minimum(pack, DEGREE_DAY_FACTOR * np.maximum(t2m - T_FREEZE, 0.0))
    return pack - melt, rain, melt
