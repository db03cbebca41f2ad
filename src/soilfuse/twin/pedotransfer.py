"""Soil hydraulic and thermal properties from texture, organic matter and moisture.

Hydraulic properties follow the pedotransfer equations of Saxton & Rawls (2006,
*Soil Sci. Soc. Am. J.* 70:1569-1578, Table 1, equations 1-3, 5, 15-16): water
content at 1500 kPa (wilting point) and 33 kPa (field capacity), saturation
(porosity), the slope ``B`` of the log tension - log moisture curve, saturated
conductivity and the unsaturated conductivity ``K(θ) = Ks (θ/θs)^(3 + 2/λ)``
(Campbell/Brooks-Corey form, ``λ = 1/B``). Saxton & Rawls give no residual water
content; the twin uses ``0.4 θ_1500`` as the air-dry limit that soil evaporation
can reach (a model choice, stated here).

Thermal properties: volumetric heat capacity as the volume-weighted sum of the
constituents (de Vries 1963, *Physics of Plant Environment*, ch. 7) and thermal
conductivity by Johansen's (1975, PhD thesis, Trondheim) normalised-conductivity
method in the form of Peters-Lidard et al. (1998, *J. Atmos. Sci.* 55:1209-1224):
dry conductivity from bulk density, saturated conductivity as the geometric mean of
solids (quartz fraction taken equal to the sand fraction) and water (or ice), and the
Kersten number from the degree of saturation.

Usage
-----
>>> import numpy as np
>>> p = saxton_rawls(np.array([40.0]), np.array([20.0]), np.array([2.5]))   # loam
>>> [round(float(v[0]), 3) for v in (p.wilting_point, p.field_capacity, p.porosity)]
[0.137, 0.28, 0.459]
>>> round(float(p.ksat[0]), 1)
15.5
>>> thermal = ThermalParameters.from_soil(p.porosity, np.array([40.0]), p.bulk_density)
>>> round(float(thermal.conductivity(np.array([0.25]))[0]), 2)
1.16
>>> round(float(thermal.capacity(np.array([0.25]))[0]) / 1e6, 2)
2.08
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soilfuse._typing import FloatArray

__all__ = [
    "HydraulicProperties",
    "ThermalParameters",
    "saxton_rawls",
    "unsaturated_conductivity",
]

#: Residual (air-dry) water content as a fraction of the 1500 kPa water content.
RESIDUAL_FRACTION = 0.4

_RHO_SOLID = 2.65  # particle density, g cm-3
_C_MINERAL = 1.92e6  # J m-3 K-1 (de Vries 1963)
_C_WATER = 4.18e6
_C_ICE = 1.93e6
_K_QUARTZ = 7.7  # W m-1 K-1
_K_WATER = 0.57
_K_ICE = 2.2


@dataclass(frozen=True)
class HydraulicProperties:
    """Soil hydraulic properties (arrays of one shape).

    Attributes
    ----------
    wilting_point : numpy.ndarray
        Water content at 1500 kPa, m3 m-3.
    field_capacity : numpy.ndarray
        Water content at 33 kPa, m3 m-3.
    porosity : numpy.ndarray
        Saturated water content, m3 m-3.
    residual : numpy.ndarray
        Air-dry (residual) water content, m3 m-3.
    ksat : numpy.ndarray
        Saturated hydraulic conductivity, mm h-1.
    b : numpy.ndarray
        Slope ``B`` of ln(tension) vs ln(moisture) (``λ = 1/B``), dimensionless.
    bulk_density : numpy.ndarray
        Normal (matric) bulk density, g cm-3.
    """

    wilting_point: FloatArray
    field_capacity: FloatArray
    porosity: FloatArray
    residual: FloatArray
    ksat: FloatArray
    b: FloatArray
    bulk_density: FloatArray


def saxton_rawls(sand: FloatArray, clay: FloatArray, organic_matter: FloatArray) -> HydraulicProperties:
    """Hydraulic properties by the Saxton & Rawls (2006) pedotransfer equations.

    Parameters
    ----------
    sand, clay : numpy.ndarray
        Sand and clay content, % by weight (0-100).
    organic_matter : numpy.ndarray
        Organic matter, % by weight (the equations are fitted for <= 8 %).

    Returns
    -------
    HydraulicProperties
        Without density or gravel adjustments.

    Examples
    --------
    >>> p = saxton_rawls(np.array([80.0]), np.array([5.0]), np.array([1.0]))   # loamy sand
    >>> round(float(p.field_capacity[0]), 3) < 0.15
    True
    """
    s = np.asarray(sand, dtype="float64") / 100.0
    c = np.asarray(clay, dtype="float64") / 100.0
    om = np.asarray(organic_matter, dtype="float64")
    t1500t = -0.024 * s + 0.487 * c + 0.006 * om + 0.005 * s * om - 0.013 * c * om + 0.068 * s * c + 0.031
    t1500 = t1500t + (0.14 * t1500t - 0.02)
    t33t = -0.251 * s + 0.195 * c + 0.011 * om + 0.006 * s * om - 0.027 * c * om + 0.452 * s * c + 0.299
    t33 = t33t + (1.283 * t33t * t33t - 0.374 * t33t - 0.015)
    ts33t = 0.278 * s + 0.034 * c + 0.022 * om - 0.018 * s * om - 0.027 * c * om - 0.584 * s * c + 0.078
    ts33 = ts33t + (0.636 * ts33t - 0.107)
    ts = t33 + ts33 - 0.097 * s + 0.043
    b = (np.log(1500.0) - np.log(33.0)) / (np.log(t33) - np.log(t1500))
    ksat = 1930.0 * (ts - t33) ** (3.0 - 1.0 / b)
    return HydraulicProperties(
        wilting_point=t1500,
        field_capacity=t33,
        porosity=ts,
        residual=RESIDUAL_FRACTION * t1500,
        ksat=ksat,
        b=b,
        bulk_density=(1.0 - ts) * _RHO_SOLID,
    )


def unsaturated_conductivity(theta: FloatArray, porosity: FloatArray, ksat: FloatArray, b: FloatArray) -> FloatArray:
    """Unsaturated conductivity ``Ks (θ/θs)^(3 + 2B)`` (Saxton & Rawls 2006, eq. 16), mm h-1.

    Parameters
    ----------
    theta, porosity : numpy.ndarray
        Water content and saturated water content, m3 m-3.
    ksat : numpy.ndarray
        Saturated conductivity, mm h-1.
    b : numpy.ndarray
        Pore-size slope ``B`` (``3 + 2/λ = 3 + 2B``).
    """
    rel = np.clip(theta / porosity, 0.0, 1.0)
    return ksat * rel ** (3.0 + 2.0 * b)


@dataclass(frozen=True)
class ThermalParameters:
    """Moisture-independent parts of the soil thermal properties (arrays of one shape).

    Build with :meth:`from_soil`; :meth:`capacity` and :meth:`conductivity` then give
    the properties at any water content cheaply (the costly powers are precomputed).

    Attributes
    ----------
    porosity : numpy.ndarray
        m3 m-3.
    c_solid : numpy.ndarray
        Heat capacity of the solids per unit soil volume, J m-3 K-1.
    k_dry, k_sat, k_sat_frozen : numpy.ndarray
        Conductivity of dry, water-saturated and ice-saturated soil, W m-1 K-1.
    kersten_slope : numpy.ndarray
        0.7 for coarse soils (sand > 50 %), 1.0 for fine soils.
    """

    porosity: FloatArray
    c_solid: FloatArray
    k_dry: FloatArray
    k_sat: FloatArray
    k_sat_frozen: FloatArray
    kersten_slope: FloatArray

    @classmethod
    def from_soil(cls, porosity: FloatArray, sand: FloatArray, bulk_density: FloatArray) -> ThermalParameters:
        """Parameters from porosity (m3 m-3), sand (%, taken as the quartz fraction) and bulk density (g cm-3).

        Dry conductivity ``(0.135 ρb + 64.7) / (2700 - 0.947 ρb)`` (ρb in kg m-3); solids
        conductivity ``7.7^q k_o^(1-q)`` with ``k_o = 2.0`` (q > 0.2) or 3.0; saturated
        conductivity ``k_s^(1-θs) k_w^θs`` with water 0.57 and ice 2.2 W m-1 K-1
        (Peters-Lidard et al. 1998).
        """
        phi = np.asarray(porosity, dtype="float64")
        rho_b = np.asarray(bulk_density, dtype="float64") * 1000.0  # kg m-3
        quartz = np.clip(np.asarray(sand, dtype="float64") / 100.0, 0.0, 1.0)
        k_other = np.where(quartz > 0.2, 2.0, 3.0)
        k_solid = _K_QUARTZ**quartz * k_other ** (1.0 - quartz)
        return cls(
            porosity=phi,
            c_solid=_C_MINERAL * (1.0 - phi),
            k_dry=(0.135 * rho_b + 64.7) / (2700.0 - 0.947 * rho_b),
            k_sat=k_solid ** (1.0 - phi) * _K_WATER**phi,
            k_sat_frozen=k_solid ** (1.0 - phi) * _K_ICE**phi,
            kersten_slope=np.where(quartz > 0.5, 0.7, 1.0),
        )

    def capacity(self, theta: FloatArray, frozen: FloatArray | None = None) -> FloatArray:
        """Volumetric heat capacity (de Vries 1963), J m-3 K-1.

        ``C = 1.92e6 (1 - θs) + 4.18e6 θ``, with ice (1.93e6 J m-3 K-1) in place of
        water where ``frozen``; latent heat of freezing is not included.
        """
        c_water = _C_WATER if frozen is None else np.where(frozen, _C_ICE, _C_WATER)
        return self.c_solid + c_water * theta

    def conductivity(self, theta: FloatArray, frozen: FloatArray | None = None) -> FloatArray:
        """Thermal conductivity ``Ke (k_sat - k_dry) + k_dry``, W m-1 K-1.

        The Kersten number is ``max(0, slope log10(Sr) + 1)`` for unfrozen soil and
        ``Sr`` for frozen soil (Johansen 1975), ``Sr = θ/θs`` the degree of saturation.
        """
        sr = np.clip(theta / self.porosity, 1e-6, 1.0)
        ke = np.maximum(self.kersten_slope * np.log10(sr) + 1.0, 0.0)
        if frozen is None:
            return ke * (self.k_sat - self.k_dry) + self.k_dry
        ke = np.where(frozen, sr, ke)
        k_sat = np.where(frozen, self.k_sat_frozen, self.k_sat)
        return ke * (k_sat - self.k_dry) + self.k_dry
