"""Canonical variables: names, units, CF attributes, valid ranges and unit conversion.

Every gridded variable that crosses a stage boundary has one canonical name and one
canonical unit (see ``docs/conventions.md``). Readers map product names to these and
call :func:`normalise_units`; a unit that is unknown, or that differs from what the
caller declared, raises :class:`~soilfuse.exceptions.UnitsError` instead of being
silently rescaled.

Usage
-----
>>> import xarray as xr
>>> t = xr.DataArray([20.0], attrs={"units": "degC"})
>>> float(normalise_units(t, "t2m")[0])
293.15
>>> VARIABLES["sm"].units
'm3 m-3'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from soilfuse.exceptions import MissingVariableError, UnitsError

__all__ = [
    "VARIABLES",
    "Variable",
    "canonical_unit",
    "check_declared_units",
    "convert_units",
    "normalise_units",
    "physical_clip",
    "unit_alias",
]


@dataclass(frozen=True)
class Variable:
    """A canonical variable: unit, CF names and the physically valid range."""

    name: str
    units: str
    long_name: str
    standard_name: str | None = None
    valid_min: float | None = None
    valid_max: float | None = None

    def attrs(self) -> dict[str, object]:
        """CF attributes for a DataArray holding this variable."""
        out: dict[str, object] = {"units": self.units, "long_name": self.long_name}
        if self.standard_name:
            out["standard_name"] = self.standard_name
        if self.valid_min is not None:
            out["valid_min"] = self.valid_min
        if self.valid_max is not None:
            out["valid_max"] = self.valid_max
        return out


def _v(name: str, units: str, long_name: str, standard_name: str | None = None,
       vmin: float | None = None, vmax: float | None = None) -> Variable:
    return Variable(name, units, long_name, standard_name, vmin, vmax)


_ALL = [
    # state variables (the products)
    _v("sm", "m3 m-3", "volumetric soil moisture", "volume_fraction_of_condensed_water_in_soil", 0.0, 1.0),
    _v("st", "K", "soil temperature", "soil_temperature", 180.0, 360.0),
    # meteorological forcing
    _v("t2m", "K", "2 m air temperature", "air_temperature", 180.0, 340.0),
    _v("tp", "mm day-1", "total precipitation", "lwe_precipitation_rate", 0.0, 2000.0),
    _v("ssrd", "W m-2", "surface downward shortwave radiation", "surface_downwelling_shortwave_flux_in_air",
       0.0, 1400.0),
    _v("ssr", "W m-2", "surface net shortwave radiation", "surface_net_downward_shortwave_flux", 0.0, 1400.0),
    _v("strd", "W m-2", "surface downward longwave radiation", "surface_downwelling_longwave_flux_in_air", 0.0, 800.0),
    _v("u10", "m s-1", "10 m eastward wind", "eastward_wind", -100.0, 100.0),
    _v("v10", "m s-1", "10 m northward wind", "northward_wind", -100.0, 100.0),
    _v("wind10", "m s-1", "10 m wind speed", "wind_speed", 0.0, 100.0),
    _v("e", "mm day-1", "evaporation (positive upward)", "lwe_water_evaporation_rate", -200.0, 200.0),
    _v("pev", "mm day-1", "potential evaporation (positive upward)", None, -200.0, 200.0),
    _v("sd", "m", "snow depth water equivalent", "lwe_thickness_of_surface_snow_amount", 0.0, 100.0),
    # thermal and optical covariates
    _v("lst_day", "K", "daytime land surface temperature", "surface_temperature", 180.0, 360.0),
    _v("lst_night", "K", "night-time land surface temperature", "surface_temperature", 180.0, 360.0),
    _v("lst_mean", "K", "mean of day and night land surface temperature", "surface_temperature", 180.0, 360.0),
    _v("tskin", "K", "skin temperature from passive microwave", "surface_temperature", 180.0, 360.0),
    _v("dtr", "K", "diurnal land surface temperature range (day minus night)", None, -60.0, 80.0),
    _v("ndvi", "1", "normalised difference vegetation index", "normalized_difference_vegetation_index", -1.0, 1.0),
    _v("evi", "1", "enhanced vegetation index", None, -1.0, 1.0),
    _v("lai", "m2 m-2", "leaf area index", "leaf_area_index", 0.0, 12.0),
    _v("albedo", "1", "surface broadband albedo", "surface_albedo", 0.0, 1.0),
    *(_v(f"refl_b{b}", "1", f"MODIS band {b} surface reflectance", "surface_bidirectional_reflectance", -0.01, 1.6)
      for b in range(1, 8)),
    # static maps
    _v("elevation", "m", "surface elevation above mean sea level", "surface_altitude", -500.0, 9000.0),
    _v("slope", "degree", "terrain slope", None, 0.0, 90.0),
    _v("aspect", "degree", "terrain aspect, clockwise from north", None, 0.0, 360.0),
    _v("sand", "%", "sand content", None, 0.0, 100.0),
    _v("silt", "%", "silt content", None, 0.0, 100.0),
    _v("clay", "%", "clay content", None, 0.0, 100.0),
    _v("land_cover", "1", "land cover class"),
    _v("climate_zone", "1", "climate zone class"),
    _v("sm_uncertainty", "m3 m-3", "soil moisture retrieval uncertainty (1 sigma)", None, 0.0, 1.0),
    _v("sm_saturation", "%", "soil moisture as degree of saturation", None, 0.0, 100.0),
    _v("land_fraction", "1", "land fraction of the cell", "land_area_fraction", 0.0, 1.0),
]

#: Registry of canonical variables by name.
VARIABLES: Mapping[str, Variable] = {v.name: v for v in _ALL}

# Unit aliases as found in real files, mapped to one spelling each.
_ALIASES: Mapping[str, str] = {
    "k": "K", "kelvin": "K", "degk": "K", "deg k": "K",
    "degc": "degC", "°c": "degC", "deg c": "degC", "celsius": "degC", "c": "degC", "degree_celsius": "degC",
    "m3 m-3": "m3 m-3", "m3/m3": "m3 m-3", "m^3 m^-3": "m3 m-3", "m**3 m**-3": "m3 m-3",
    "m³/m³": "m3 m-3", "m3m-3": "m3 m-3", "cm3 cm-3": "m3 m-3", "cm3/cm3": "m3 m-3",
    "cm^3/cm^3": "m3 m-3", "cm³/cm³": "m3 m-3", "m^3/m^3": "m3 m-3",
    "% vol": "percent_vol", "%vol": "percent_vol", "vol%": "percent_vol", "percent_vol": "percent_vol",
    "% saturation": "percent_saturation", "percent saturation": "percent_saturation",
    "mm day-1": "mm day-1", "mm/day": "mm day-1", "mm d-1": "mm day-1", "mm/d": "mm day-1",
    "kg m-2 day-1": "mm day-1",
    "mm h-1": "mm h-1", "mm/h": "mm h-1", "mm hr-1": "mm h-1",
    "kg m-2 s-1": "kg m-2 s-1", "kg m**-2 s**-1": "kg m-2 s-1", "mm s-1": "kg m-2 s-1",
    "w m-2": "W m-2", "w m**-2": "W m-2", "w/m2": "W m-2", "w/m^2": "W m-2", "w m^-2": "W m-2",
    "m s-1": "m s-1", "m s**-1": "m s-1", "m/s": "m s-1",
    "m": "m", "metre": "m", "meter": "m", "metres": "m", "meters": "m",
    "cm": "cm", "mm": "mm", "km": "km",
    "1": "1", "": "1", "-": "1", "dimensionless": "1", "fraction": "1", "none": "1",
    "%": "%", "percent": "%",
    "m2 m-2": "m2 m-2", "m2/m2": "m2 m-2", "m^2/m^2": "m2 m-2", "m**2 m**-2": "m2 m-2",
    "degree": "degree", "degrees": "degree", "deg": "degree",
    "j m-2": "J m-2", "j m**-2": "J m-2", "j m^-2": "J m-2",
    "(0 - 1)": "1", "0-1": "1",
    "kg m-2": "kg m-2", "kg m**-2": "kg m-2",
    "m of water equivalent": "m",
}

# (from, to) -> (scale, offset): to = from * scale + offset
_CONVERSIONS: Mapping[tuple[str, str], tuple[float, float]] = {
    ("degC", "K"): (1.0, 273.15),
    ("K", "degC"): (1.0, -273.15),
    ("percent_vol", "m3 m-3"): (0.01, 0.0),
    ("mm h-1", "mm day-1"): (24.0, 0.0),
    ("kg m-2 s-1", "mm day-1"): (86400.0, 0.0),
    ("cm", "m"): (0.01, 0.0),
    ("mm", "m"): (0.001, 0.0),
    ("km", "m"): (1000.0, 0.0),
    ("%", "1"): (0.01, 0.0),
    ("1", "%"): (100.0, 0.0),
}


def unit_alias(units: str | None) -> str:
    """The canonical spelling of a unit string.

    Raises
    ------
    UnitsError
        If the unit is not one soilfuse knows.
    """
    key = (units or "").strip().lower()
    for candidate in (key, key.replace("**", ""), key.replace("^", ""), key.replace("**", "^")):
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    msg = f"Unknown unit {units!r}; known units are: {sorted(set(_ALIASES.values()))}."
    raise UnitsError(msg)


def canonical_unit(variable: str) -> str:
    """The canonical unit of a canonical variable name (``sm_…``/``st_…`` prefixes allowed)."""
    return _lookup(variable).units


def _lookup(variable: str) -> Variable:
    if variable in VARIABLES:
        return VARIABLES[variable]
    base = variable.split("_")[0]
    if base in VARIABLES:
        return VARIABLES[base]
    msg = f"{variable!r} is not a canonical variable; known: {sorted(VARIABLES)}."
    raise MissingVariableError(msg)


def convert_units(da: xr.DataArray, to: str, *, name: str | None = None) -> xr.DataArray:
    """Convert ``da`` from its ``units`` attribute to ``to``.

    Parameters
    ----------
    da : xarray.DataArray
        Data with a ``units`` attribute.
    to : str
        Target unit.
    name : str, optional
        Variable name used in error messages.

    Returns
    -------
    xarray.DataArray
        A new array with converted values and ``units`` set to ``to``.

    Raises
    ------
    UnitsError
        If ``da`` has no units or there is no known conversion.
    """
    label = name or da.name or "variable"
    if "units" not in da.attrs:
        msg = (
            f"Variable {label!r} has no 'units' attribute, so it cannot be checked against "
            f"the expected {to!r}; declare its units in the input catalog."
        )
        raise UnitsError(msg)
    src = unit_alias(str(da.attrs["units"]))
    dst = unit_alias(to)
    if src == dst:
        out = da.copy(deep=False)
    elif (src, dst) in _CONVERSIONS:
        scale, offset = _CONVERSIONS[(src, dst)]
        out = da * scale + offset if offset else da * scale
        out.attrs = dict(da.attrs)
    else:
        msg = (
            f"Variable {label!r} is in {da.attrs['units']!r} but {to!r} was expected, and there "
            f"is no safe conversion between them; convert it before reading or fix its 'units'."
        )
        raise UnitsError(msg)
    out.attrs["units"] = to
    out.name = da.name
    return out


def normalise_units(da: xr.DataArray, variable: str) -> xr.DataArray:
    """Convert ``da`` to the canonical unit of ``variable`` and set its CF attributes.

    Raises
    ------
    UnitsError
        If the units are missing or cannot be converted.
    """
    var = _lookup(variable)
    out = convert_units(da, var.units, name=variable)
    attrs = dict(out.attrs)
    attrs.update(var.attrs())
    out.attrs = attrs
    return out


def check_declared_units(da: xr.DataArray, declared: str, *, name: str | None = None) -> None:
    """Raise if the ``units`` found in ``da`` differ from what the user declared.

    Raises
    ------
    UnitsError
        With both units in the message, when they are not the same unit.
    """
    found = da.attrs.get("units")
    label = name or da.name or "variable"
    if found is None:
        return
    if unit_alias(str(found)) != unit_alias(declared):
        msg = (
            f"Variable {label!r} is declared as {declared!r} but the file says {found!r}; "
            f"fix the declaration in the config or convert the file."
        )
        raise UnitsError(msg)


def physical_clip(da: xr.DataArray, variable: str) -> xr.DataArray:
    """Clip to the canonical variable's valid range (values outside become the bound)."""
    var = _lookup(variable)
    lo = -np.inf if var.valid_min is None else var.valid_min
    hi = np.inf if var.valid_max is None else var.valid_max
    return da.clip(lo, hi)
