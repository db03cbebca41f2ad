"""Multi-layer soil water balance of the twin (0-100 cm, 11 layers, daily step).

The column has layers 0-5, 5-10 and nine 10 cm layers 10-20 ... 90-100 cm
(:data:`LAYER_TOPS_CM`). Each day (:func:`water_step`):

1. **Interception** of rain by the canopy, up to ``0.2 LAI`` mm and the potential
   evaporation, evaporates the same day.
2. **Infiltration** of throughfall plus snowmelt. The part falling on the saturated
   fraction of the cell runs off; that fraction is the square of the wetness of the
   top 20 cm between field capacity and saturation (a variable contributing area in
   the spirit of the HBV model, Bergström 1992). The rest infiltrates up to the
   empty pore space of the top layer plus ``Ksat`` over an 8-hour storm (reduced
   20-fold on frozen ground, scaled by a per-pixel factor for sealed urban ground);
   the excess runs off (infiltration excess). Infiltrated water fills the layers
   top-down to saturation; what the column cannot hold also runs off.
3. **Evapotranspiration**: potential evaporation (Priestley & Taylor 1972, α = 1.26,
   from net radiation) split by the canopy cover ``1 - exp(-0.5 LAI)`` into soil
   evaporation from the 0-5 cm layer, scaled by its wetness between residual and
   field capacity, and transpiration drawn from each layer in proportion to the
   root fraction (Jackson et al. 1996, ``Y = 1 - β^d``) times a stress factor rising
   linearly from wilting point to field capacity. Frozen layers do not transpire.
4. **Gravity drainage** layer by layer, top-down, with the Campbell conductivity
   ``K(θ) = Ks (θ/θs)^(3 + 2B)`` of Saxton & Rawls (2006) integrated exactly over
   each sub-step for a layer draining under unit gradient; the water moves to the
   layer below (as much as it can hold) and leaves the column at the bottom (free
   drainage). Frozen layers drain 20 times slower.
5. **Open water** cells (lakes) are kept saturated by a lateral inflow.

Water content stays within ``[residual, porosity]`` by construction and the balance
``rain + melt + inflow - interception - evaporation - transpiration - runoff -
drainage = Δstorage`` closes to rounding error.

Usage
-----
>>> import numpy as np
>>> from soilfuse.twin.pedotransfer import saxton_rawls
>>> p = saxton_rawls(np.full(11, 40.0), np.full(11, 20.0), np.full(11, 2.0))
>>> soil = SoilLayers.from_properties(p, n_pixels=1)
>>> theta = np.full((11, 1), 0.25)
>>> new, flux = water_step(theta, soil, rain=np.array([30.0]), melt=np.zeros(1), pet=np.array([3.0]),
...                        lai=np.array([1.0]), roots=root_fractions(np.array([2])),
...                        frozen=np.zeros((11, 1), bool), open_water=np.zeros(1, bool))
>>> bool(new[0, 0] > 0.25), bool(abs(flux.closure(theta, new)[0]) < 1e-9)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from soilfuse._typing import FloatArray
from soilfuse.twin.forcing import T_FREEZE, saturation_vapour_pressure
from soilfuse.twin.pedotransfer import HydraulicProperties

__all__ = [
    "LAYER_BOTTOMS_CM",
    "LAYER_TOPS_CM",
    "REPORT_BOTTOMS_CM",
    "REPORT_TOPS_CM",
    "THICKNESS_MM",
    "SoilLayers",
    "WaterFluxes",
    "layer_sum",
    "priestley_taylor",
    "report_layers",
    "root_fractions",
    "water_step",
]

#: Computational layers (cm).
LAYER_TOPS_CM = (0.0, 5.0, *(float(d) for d in range(10, 100, 10)))
LAYER_BOTTOMS_CM = (5.0, 10.0, *(float(d) for d in range(20, 110, 10)))
#: Reported layers (cm): 0-5, 0-10 (thickness-weighted), 10-20 ... 90-100.
REPORT_TOPS_CM = (0.0, 0.0, *(float(d) for d in range(10, 100, 10)))
REPORT_BOTTOMS_CM = (5.0, 10.0, *(float(d) for d in range(20, 110, 10)))

#: Thickness of the computed layers, mm, shape ``(11, 1)``.
THICKNESS_MM = 10.0 * (np.array(LAYER_BOTTOMS_CM) - np.array(LAYER_TOPS_CM))[:, None]

_STORM_HOURS = 8.0
_FROZEN_FACTOR = 0.05
_INTERCEPTION_PER_LAI = 0.2  # mm
_PT_ALPHA = 1.26
_LATENT_HEAT = 2.45  # MJ kg-1
#: Jackson et al. (1996) root-distribution parameter β by land-cover code (index = code;
#: forest: temperate deciduous forest, grassland: temperate grassland, cropland,
#: barren: desert; water, urban and unknown codes take the grassland value).
_ROOT_BETA = np.array([0.943, 0.966, 0.943, 0.961, 0.975, 0.943, 0.943])


@dataclass
class SoilLayers:
    """Hydraulic parameters of the 11 layers, each ``(11, pixels)``; ksat in mm h-1.

    Storage limits in mm (``sat_mm``, ``fc_mm``, ``wp_mm``, ``res_mm``) and the
    drainage exponents are derived on construction.
    """

    porosity: FloatArray
    field_capacity: FloatArray
    wilting_point: FloatArray
    residual: FloatArray
    ksat: FloatArray
    b: FloatArray
    sat_mm: FloatArray = field(init=False)
    fc_mm: FloatArray = field(init=False)
    wp_mm: FloatArray = field(init=False)
    res_mm: FloatArray = field(init=False)
    drain_exponent: FloatArray = field(init=False)
    drain_rate: FloatArray = field(init=False)
    _log_sat: FloatArray = field(init=False, repr=False)
    _inv_range_mm: FloatArray = field(init=False, repr=False)
    _drain_floor: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sat_mm = self.porosity * THICKNESS_MM
        self.fc_mm = self.field_capacity * THICKNESS_MM
        self.wp_mm = self.wilting_point * THICKNESS_MM
        self.res_mm = self.residual * THICKNESS_MM
        self.drain_exponent = 1.0 - (3.0 + 2.0 * self.b)  # 1 - c, negative
        self.drain_rate = self.ksat / self.sat_mm * (-self.drain_exponent)  # per hour
        self._log_sat = np.log(self.sat_mm)
        self._inv_range_mm = 1.0 / (self.fc_mm - self.wp_mm)
        self._drain_floor = np.maximum(self.res_mm, 1e-6 * self.sat_mm)

    @classmethod
    def from_properties(cls, props: HydraulicProperties, n_pixels: int) -> SoilLayers:
        """Layers from properties of shape ``(11,)`` or ``(11, pixels)``."""

        def shape(v: FloatArray) -> FloatArray:
            arr = np.asarray(v, dtype="float64")
            return np.broadcast_to(arr.reshape(11, -1), (11, n_pixels)).copy()

        return cls(
            porosity=shape(props.porosity),
            field_capacity=shape(props.field_capacity),
            wilting_point=shape(props.wilting_point),
            residual=shape(props.residual),
            ksat=shape(props.ksat),
            b=shape(props.b),
        )

    def availability(self, theta: FloatArray) -> FloatArray:
        """Plant water availability per layer, 0 at wilting point .. 1 at field capacity."""
        return np.clip((theta - self.wilting_point) / (self.field_capacity - self.wilting_point), 0.0, 1.0)


@dataclass(frozen=True)
class WaterFluxes:
    """Daily water fluxes of each pixel, mm day-1 (all ``>= 0``)."""

    rain: FloatArray
    melt: FloatArray
    inflow: FloatArray
    interception: FloatArray
    soil_evaporation: FloatArray
    transpiration: FloatArray
    runoff: FloatArray
    drainage: FloatArray

    @property
    def evapotranspiration(self) -> FloatArray:
        """Interception loss + soil evaporation + transpiration, mm day-1."""
        return self.interception + self.soil_evaporation + self.transpiration

    def closure(self, before: FloatArray, after: FloatArray) -> FloatArray:
        """Inputs - outputs - change in storage (mm); zero when the balance closes."""
        storage = layer_sum((after - before) * THICKNESS_MM)
        inputs = self.rain + self.melt + self.inflow
        return inputs - self.evapotranspiration - self.runoff - self.drainage - storage


def root_fractions(land_cover: npt.ArrayLike) -> FloatArray:
    """Root fraction of each layer by land cover (Jackson et al. 1996), ``(11, pixels)``, summing to 1."""
    codes = np.asarray(land_cover).ravel().astype("int64")
    beta = _ROOT_BETA[np.where((codes >= 1) & (codes < _ROOT_BETA.size), codes, 0)]
    tops = np.array(LAYER_TOPS_CM)[:, None]
    bottoms = np.array(LAYER_BOTTOMS_CM)[:, None]
    frac = beta[None, :] ** tops - beta[None, :] ** bottoms
    return frac / layer_sum(frac)


def layer_sum(values: FloatArray) -> FloatArray:
    """Sum over the first (layer) axis, accumulated layer by layer.

    numpy's ``sum`` switches to pairwise summation when the summed axis is contiguous
    (e.g. a single pixel), which would make a pixel's result depend on the tile size;
    an explicit sequential sum keeps tile-by-tile generation bit-identical.
    """
    total = values[0].copy()
    for row in values[1:]:
        total = total + row
    return total


def priestley_taylor(net_radiation: FloatArray, t_air: FloatArray, elevation: FloatArray) -> FloatArray:
    """Potential evaporation by Priestley & Taylor (1972), mm day-1 (>= 0).

    Parameters
    ----------
    net_radiation : numpy.ndarray
        Daily-mean net radiation, W m-2.
    t_air : numpy.ndarray
        Air temperature, K.
    elevation : numpy.ndarray
        Elevation, m (sets the psychrometric constant, FAO-56 eqs. 7-8).
    """
    t = t_air - T_FREEZE
    delta = 4098.0 * saturation_vapour_pressure(t_air) / (t + 237.3) ** 2
    pressure = 101.3 * ((293.0 - 0.0065 * elevation) / 293.0) ** 5.26
    gamma = 0.665e-3 * pressure
    energy = np.maximum(net_radiation, 0.0) * 0.0864 / _LATENT_HEAT
    return _PT_ALPHA * delta / (delta + gamma) * energy


def water_step(
    theta: FloatArray,
    soil: SoilLayers,
    *,
    rain: FloatArray,
    melt: FloatArray,
    pet: FloatArray,
    lai: FloatArray,
    roots: FloatArray,
    frozen: FloatArray,
    open_water: FloatArray,
    infiltration_factor: FloatArray | float = 1.0,
    n_drain: int = 2,
) -> tuple[FloatArray, WaterFluxes]:
    """Advance soil water content by one day.

    Parameters
    ----------
    theta : numpy.ndarray
        Volumetric water content of the 11 layers, m3 m-3, ``(11, pixels)``.
    soil : SoilLayers
        Hydraulic parameters.
    rain, melt : numpy.ndarray
        Liquid precipitation and snowmelt, mm day-1, ``(pixels,)``.
    pet : numpy.ndarray
        Potential evaporation, mm day-1.
    lai : numpy.ndarray
        Leaf area index, m2 m-2.
    roots : numpy.ndarray
        Root fractions ``(11, pixels)`` (:func:`root_fractions`).
    frozen : numpy.ndarray of bool
        Frozen layers ``(11, pixels)``; a frozen top layer impedes infiltration.
    open_water : numpy.ndarray of bool
        Cells kept saturated (lakes).
    infiltration_factor : numpy.ndarray or float
        Multiplier of the infiltration capacity (e.g. < 1 for sealed ground).
    n_drain : int
        Drainage sub-steps per day.

    Returns
    -------
    theta : numpy.ndarray
        New water content ``(11, pixels)``.
    fluxes : WaterFluxes
        The day's fluxes.
    """
    w = theta * THICKNESS_MM  # mm of water per layer
    any_frozen = bool(frozen.any())
    interception = np.minimum(np.minimum(rain, _INTERCEPTION_PER_LAI * lai), pet)
    throughfall = rain - interception + melt
    conduct = soil.ksat[0] * _STORM_HOURS * infiltration_factor
    if any_frozen:
        conduct = conduct * np.where(frozen[0], _FROZEN_FACTOR, 1.0)
    top = w[0] + w[1] + w[2]
    fc_top = soil.fc_mm[0] + soil.fc_mm[1] + soil.fc_mm[2]
    sat_top = soil.sat_mm[0] + soil.sat_mm[1] + soil.sat_mm[2]
    saturated = np.clip((top - fc_top) / (sat_top - fc_top), 0.0, 1.0) ** 2
    infiltration = np.minimum(throughfall * (1.0 - saturated), soil.sat_mm[0] - w[0] + conduct)
    # Fill the layers top-down to saturation: layer i takes what is left after the
    # free space of all layers above it.
    space = soil.sat_mm - w
    above = [np.zeros_like(infiltration)]
    for row in space[:-1]:
        above.append(above[-1] + row)
    add = np.minimum(np.maximum(infiltration - np.stack(above), 0.0), space)
    w = w + add
    runoff = throughfall - layer_sum(add)

    demand = pet - interception
    cover = 1.0 - np.exp(-0.5 * lai)
    res0 = soil.res_mm[0]
    wet_top = np.clip((w[0] - res0) / (soil.fc_mm[0] - res0), 0.0, 1.0)
    evap = demand * (1.0 - cover) * wet_top
    if any_frozen:
        evap = evap * np.where(frozen[0], 0.2, 1.0)
    evap = np.maximum(np.minimum(evap, w[0] - res0), 0.0)
    w[0] = w[0] - evap
    stress = np.clip((w - soil.wp_mm) * soil._inv_range_mm, 0.0, 1.0)
    if any_frozen:
        stress = stress * np.logical_not(frozen)
    uptake = np.minimum((demand * cover) * roots * stress, np.maximum(w - soil.wp_mm, 0.0))
    w = w - uptake

    w, drainage = _drain(w, soil, frozen if any_frozen else None, n_drain)

    deficit = np.where(open_water, layer_sum(soil.sat_mm - w), 0.0)
    w = np.where(open_water, soil.sat_mm, w)
    fluxes = WaterFluxes(
        rain=rain,
        melt=melt,
        inflow=deficit,
        interception=interception,
        soil_evaporation=evap,
        transpiration=layer_sum(uptake),
        runoff=runoff,
        drainage=drainage,
    )
    return w / THICKNESS_MM, fluxes


def _drain(
    w: FloatArray, soil: SoilLayers, frozen: FloatArray | None, n_drain: int
) -> tuple[FloatArray, FloatArray]:
    """Gravity drainage in ``n_drain`` sub-steps; returns new storage and bottom drainage (mm).

    In each sub-step every layer drains as if alone, by the exact solution of
    ``dθ/dt = -K(θ)/Δz`` with ``K = Ks (θ/θs)^c``: the relative saturation obeys
    ``s(t)^(1-c) = s0^(1-c) + (c - 1) Ks t / (Δz θs)``, evaluated for all layers at
    once with ``exp(log(.))`` and limited to the water above residual. Then, from
    the bottom up, each layer passes down only what the layer below can hold after
    its own drainage; the rest stays. The bottom layer drains freely out of the column.
    """
    expo = soil.drain_exponent
    rate = soil.drain_rate * (24.0 / n_drain)
    if frozen is not None:
        rate = rate * np.where(frozen, _FROZEN_FACTOR, 1.0)
    w_sat = soil.sat_mm
    keep = soil._drain_floor
    out = np.zeros(w.shape[1])
    n = w.shape[0]
    for _ in range(n_drain):
        log_s0 = np.log(np.maximum(w, keep)) - soil._log_sat
        s1 = np.exp(np.log(np.exp(expo * log_s0) + rate) / expo)
        loss = np.maximum(w - np.maximum(s1 * w_sat, keep), 0.0)
        passed = [loss[n - 1]]
        for i in range(n - 2, -1, -1):
            passed.append(np.minimum(loss[i], w_sat[i + 1] - w[i + 1] + passed[-1]))
        moved = np.stack(passed[::-1])
        w = w - moved
        w[1:] = w[1:] + moved[:-1]
        out = out + moved[-1]
    return w, out


def report_layers(theta: FloatArray, *, axis: int = 0) -> FloatArray:
    """Reported layers from the 11 computed ones: 0-5, 0-10 (thickness-weighted), 10-20 ... 90-100 cm.

    Parameters
    ----------
    theta : numpy.ndarray
        Water content with the 11 computed layers along ``axis``.
    axis : int
        The layer axis.

    Returns
    -------
    numpy.ndarray
        Same shape, the layer axis holding the 11 reported layers.
    """
    t = np.moveaxis(theta, axis, 0)
    top10 = 0.5 * (t[0] + t[1])
    return np.moveaxis(np.concatenate([t[:1], top10[None], t[2:]], axis=0), 0, axis)
