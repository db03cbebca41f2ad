"""Land-surface observables of the twin: LAI phenology, reflectance, albedo, skin temperature.

* **LAI** (:class:`Phenology`) - per land-cover minimum and maximum (the maximum
  scaled by a precipitation "vigour"), driven by a growing-degree rate (20-day
  running mean of the air temperature above a class base temperature; full
  canopy at 8 K above base) and by a 15-day running mean of the root-zone moisture
  availability.
* **Reflectance** in MODIS bands b1 (red), b2 (NIR), b3 (blue), b4 (green), b5
  (1.24 µm), b6 (1.64 µm), b7 (2.13 µm) (:func:`reflectance`) - a linear mixture of
  soil and canopy by the fractional cover ``1 - exp(-0.5 LAI)`` (Beer's law), with
  dry-soil spectra scaled by a brightness from texture and organic matter and
  darkened by surface moisture, more strongly in the shortwave infrared (as
  measured by Lobell & Asner 2002, *Soil Sci. Soc. Am. J.* 66:722-727); a water-
  stressed canopy reflects more in b6/b7. Snow (masked partly by the canopy), open
  water and sealed urban surfaces mix in by their fractions. Consequences the
  recipes rely on: NDVI and EVI track LAI; over soil, NSDSI ``(b6-b7)/b6`` and LSWI
  ``(b2-b6)/(b2+b6)`` rise and NMDI ``(b2-(b6-b7))/(b2+(b6-b7))`` falls with surface
  moisture.
* **Broadband albedo** from the bands by Liang's (2001, *Remote Sens. Environ.*
  76:213-238) MODIS narrow-to-broadband conversion.
* **Skin temperature** at the ~10:30 and ~22:30 overpasses under clear sky
  (:func:`skin_temperature`): by day the air temperature at 10:30 plus a radiative
  excess proportional to the absorbed clear-sky irradiance times one minus the
  evaporative fraction (from surface wetness for soil, root-zone availability for
  canopy), over an exchange coefficient larger for the aerodynamically rougher
  canopy; by night the 22:30 air temperature minus the net longwave loss over a
  coupling that grows with wind and the soil's thermal inertia (wet soil cools
  less), with smaller losses under cloudier skies. Dry soil therefore has a larger
  day-night range.

Usage
-----
>>> import numpy as np
>>> refl = np.array([[0.05], [0.40], [0.03], [0.08], [0.38], [0.22], [0.10]])
>>> ndvi, evi = vegetation_indices(refl)
>>> round(float(ndvi[0]), 3), round(float(broadband_albedo(refl)[0]), 3)
(0.778, 0.19)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soilfuse._typing import FloatArray
from soilfuse.twin.forcing import STEFAN_BOLTZMANN, T_FREEZE

__all__ = [
    "BANDS",
    "Phenology",
    "SurfaceParameters",
    "broadband_albedo",
    "reflectance",
    "skin_temperature",
    "vegetation_indices",
]

#: MODIS bands (name -> centre wavelength, µm).
BANDS = {"b1": 0.645, "b2": 0.859, "b3": 0.469, "b4": 0.555, "b5": 1.24, "b6": 1.64, "b7": 2.13}

# Spectra of the end-members, bands b1..b7 as columns.
_SOIL_DRY = np.array([0.22, 0.28, 0.12, 0.17, 0.33, 0.38, 0.34])[:, None]
_SOIL_DARKENING = np.array([0.40, 0.42, 0.38, 0.40, 0.45, 0.55, 0.62])[:, None]
_VEG = np.array([0.04, 0.42, 0.03, 0.08, 0.38, 0.22, 0.10])[:, None]
_VEG_STRESSED = np.array([0.06, 0.36, 0.04, 0.09, 0.38, 0.30, 0.17])[:, None]
_SNOW = np.array([0.85, 0.80, 0.88, 0.86, 0.55, 0.10, 0.05])[:, None]
_WATER = np.array([0.03, 0.02, 0.05, 0.05, 0.01, 0.005, 0.003])[:, None]
_URBAN = np.array([0.15, 0.20, 0.11, 0.13, 0.22, 0.25, 0.22])[:, None]
_LIANG = np.array([0.160, 0.291, 0.243, 0.116, 0.112, 0.0, 0.081])[:, None]

# LAI minimum, maximum and base temperature (°C) by land-cover code (index = code).
_LAI_MIN = np.array([0.5, 1.8, 0.3, 0.2, 0.05, 0.0, 0.3])
_LAI_MAX = np.array([2.0, 5.5, 2.8, 4.5, 0.5, 0.0, 1.3])
_T_BASE = np.array([5.0, 4.0, 3.0, 7.0, 3.0, 5.0, 5.0])
_URBAN_CODE = 6
_SEALED = 0.5  # sealed fraction of urban cells


@dataclass(frozen=True)
class SurfaceParameters:
    """Per-pixel surface parameters, each ``(pixels,)``.

    Attributes
    ----------
    brightness : dry-soil brightness factor (1). lai_min, lai_max : m2 m-2.
    t_base : base temperature of growth, K. water_fraction : open-water fraction (1).
    sealed : sealed (impervious) fraction (1).
    """

    brightness: FloatArray
    lai_min: FloatArray
    lai_max: FloatArray
    t_base: FloatArray
    water_fraction: FloatArray
    sealed: FloatArray

    @classmethod
    def from_maps(cls, maps: dict[str, FloatArray]) -> SurfaceParameters:
        """Parameters from the static maps of a tile (:func:`soilfuse.twin.static.static_maps`)."""
        code = maps["land_cover"].ravel().astype("int64")
        code = np.where((code >= 1) & (code < _LAI_MIN.size), code, 0)
        vigour = np.clip(maps["mean_annual_precipitation"].ravel() / 900.0, 0.35, 1.15)
        sand = maps["sand"][0].ravel()
        om = maps["organic_matter"][0].ravel()
        return cls(
            brightness=np.clip(0.85 + 0.3 * (sand - 40.0) / 40.0 - 0.1 * (om - 1.5), 0.6, 1.4),
            lai_min=_LAI_MIN[code],
            lai_max=_LAI_MIN[code] + (_LAI_MAX[code] - _LAI_MIN[code]) * vigour,
            t_base=_T_BASE[code] + T_FREEZE,
            water_fraction=maps["water_fraction"].ravel(),
            sealed=np.where(code == _URBAN_CODE, _SEALED, 0.0),
        )


class Phenology:
    """LAI state of a tile: running means of growing-degree rate and moisture availability.

    Parameters
    ----------
    params : SurfaceParameters
        Per-pixel parameters.
    t_recent : numpy.ndarray
        Air temperature representative of the last weeks before the start, K.
    """

    def __init__(self, params: SurfaceParameters, t_recent: FloatArray) -> None:
        self._p = params
        self.degree_rate = np.maximum(t_recent - params.t_base, 0.0)
        self.moisture = np.full(params.t_base.shape, 0.7)

    def step(self, t_air: FloatArray, availability: FloatArray) -> FloatArray:
        """Update with one day's air temperature (K) and root-zone availability (0..1); return LAI."""
        self.degree_rate = self.degree_rate + (np.maximum(t_air - self._p.t_base, 0.0) - self.degree_rate) / 20.0
        self.moisture = self.moisture + (availability - self.moisture) / 15.0
        warmth = np.clip(self.degree_rate / 8.0, 0.0, 1.0)
        return self._p.lai_min + (self._p.lai_max - self._p.lai_min) * warmth * (0.25 + 0.75 * self.moisture)


def cover_fraction(lai: FloatArray) -> FloatArray:
    """Fractional vegetation cover by Beer's law, ``1 - exp(-0.5 LAI)``."""
    return 1.0 - np.exp(-0.5 * lai)


def reflectance(
    params: SurfaceParameters,
    surface_wetness: FloatArray,
    lai: FloatArray,
    availability: FloatArray,
    swe_mm: FloatArray,
) -> FloatArray:
    """Surface reflectance in bands b1..b7, shape ``(7, pixels)``.

    Parameters
    ----------
    params : SurfaceParameters
        Per-pixel parameters.
    surface_wetness : numpy.ndarray
        Relative water content of the 0-5 cm layer between residual (0) and
        saturation (1).
    lai : numpy.ndarray
        Leaf area index, m2 m-2.
    availability : numpy.ndarray
        Root-zone water availability 0 (wilting) .. 1 (unstressed).
    swe_mm : numpy.ndarray
        Snow water equivalent, mm.
    """
    soil = params.brightness * _SOIL_DRY * (1.0 - _SOIL_DARKENING * surface_wetness)
    canopy = _VEG + (_VEG_STRESSED - _VEG) * (1.0 - availability)
    cover = cover_fraction(lai)
    land = cover * canopy + (1.0 - cover) * soil
    land = (1.0 - params.sealed) * land + params.sealed * _URBAN
    snow = np.clip(swe_mm / 15.0, 0.0, 1.0) * (1.0 - 0.6 * cover)
    land = (1.0 - snow) * land + snow * _SNOW
    return (1.0 - params.water_fraction) * land + params.water_fraction * _WATER


def vegetation_indices(refl: FloatArray) -> tuple[FloatArray, FloatArray]:
    """NDVI and EVI (Huete et al. 2002: G=2.5, C1=6, C2=7.5, L=1) from ``(7, ...)`` reflectances."""
    red, nir, blue = refl[0], refl[1], refl[2]
    ndvi = (nir - red) / (nir + red)
    evi = 2.5 * (nir - red) / (nir + 6.0 * red - 7.5 * blue + 1.0)
    return ndvi, evi


def broadband_albedo(refl: FloatArray) -> FloatArray:
    """Shortwave broadband albedo from MODIS bands (Liang 2001), from ``(7, ...)`` reflectances."""
    weights = _LIANG.reshape((7,) + (1,) * (refl.ndim - 1))
    total = weights[0] * refl[0]
    for band in range(1, 7):  # sequential sum: bit-identical for any array layout
        total = total + weights[band] * refl[band]
    return np.clip(total - 0.0015, 0.0, 1.0)


def skin_temperature(
    t_air: FloatArray,
    dtr_air: FloatArray,
    sw_day: FloatArray,
    albedo: FloatArray,
    strd: FloatArray,
    lai: FloatArray,
    surface_wetness: FloatArray,
    availability: FloatArray,
    wind: FloatArray,
    thermal_inertia: FloatArray,
    water_fraction: FloatArray,
    swe_mm: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Clear-sky skin temperature at ~10:30 and ~22:30 local time, K.

    Parameters
    ----------
    t_air : numpy.ndarray
        Daily mean air temperature, K.
    dtr_air : numpy.ndarray
        Diurnal range of air temperature, K.
    sw_day : numpy.ndarray
        Clear-sky shortwave irradiance at 10:30, W m-2.
    albedo : numpy.ndarray
        Broadband albedo.
    strd : numpy.ndarray
        Daily downward longwave radiation, W m-2 (carries the day's cloudiness).
    lai : numpy.ndarray
        Leaf area index, m2 m-2.
    surface_wetness : numpy.ndarray
        Relative wetness of the 0-5 cm soil (0 residual .. 1 field capacity).
    availability : numpy.ndarray
        Root-zone water availability (0..1).
    wind : numpy.ndarray
        Wind speed, m s-1.
    thermal_inertia : numpy.ndarray
        Thermal inertia of the top soil, ``sqrt(k C)``, J m-2 K-1 s-1/2.
    water_fraction : numpy.ndarray
        Open-water fraction.
    swe_mm : numpy.ndarray
        Snow water equivalent, mm.

    Returns
    -------
    day, night : numpy.ndarray
    """
    cover = cover_fraction(lai)
    absorbed = sw_day * (1.0 - albedo)
    soil_excess = absorbed * (1.0 - 0.8 * surface_wetness) / (22.0 + 4.0 * wind)
    canopy_excess = absorbed * (1.0 - 0.8 * availability) / (45.0 + 6.0 * wind)
    t_morning = t_air + 0.25 * dtr_air
    day = t_morning + (1.0 - cover) * soil_excess + cover * canopy_excess

    t_evening = t_air - 0.25 * dtr_air
    lw_loss = np.maximum(0.97 * STEFAN_BOLTZMANN * t_evening**4 - strd, 0.0)
    night = t_evening - lw_loss / (6.0 + 1.5 * wind + thermal_inertia / 200.0)

    snow = np.clip(swe_mm / 15.0, 0.0, 1.0)
    day = (1.0 - snow) * day + snow * np.minimum(day, T_FREEZE)
    night = (1.0 - snow) * night + snow * np.minimum(night, T_FREEZE)
    day = (1.0 - water_fraction) * day + water_fraction * (t_air + 0.5)
    night = (1.0 - water_fraction) * night + water_fraction * (t_air + 1.0)
    return day, night
