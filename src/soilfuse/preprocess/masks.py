"""Masks of unusable pixels: snow/frozen ground, open water, and MODIS QC screening.

Masks are boolean DataArrays that are **True where a pixel must be removed**; apply
them with :func:`apply_masks` (or ``da.where(~mask)``). A NaN input never flags a
pixel (the comparison is False), so missing covariates do not spread a mask.

* :func:`snow_frozen_mask` — daytime LST below 0 °C **and** albedo above 0.3 (Cui et
  al. 2020, as used by Liu et al., seed 002 §2.1.1).
* :func:`water_mask` — open-water fraction above 20 % of the cell (seed 002 §2.1.1).
* :func:`qc_bad_mask` / :func:`screen_qc` — MODIS quality screening keeping only
  "good quality" pixels, by :func:`soilfuse.io.products.modis.qc_good` with the bit
  semantics of :data:`soilfuse.io.products.modis.QC_RULES`:

  - ``MOD11`` (MOD11A1/MYD11A1 ``QC_Day``/``QC_Night``): bits 0-1 (mandatory QA) == 00,
    LST produced with good quality; 01 other quality, 10 not produced due to cloud,
    11 not produced for other reasons are all rejected.
  - ``MOD13`` (``VI Quality``): bits 0-1 (MODLAND QA) == 00, VI produced with good quality.
  - ``MOD09`` (``state_1km``): bits 0-1 (cloud state) == 00 clear or 11 "not set,
    assumed clear"; the fill word 0xFFFF is rejected.

Usage
-----
>>> import numpy as np, xarray as xr
>>> lst = xr.DataArray([270.0, 270.0, 280.0, np.nan], dims="x", attrs={"units": "K"})
>>> alb = xr.DataArray([0.5, 0.2, 0.5, 0.5], dims="x", attrs={"units": "1"})
>>> snow_frozen_mask(lst, alb).values.tolist()
[True, False, False, False]
>>> qc = xr.DataArray(np.array([0, 1, 2, 5], dtype="uint8"), dims="x")
>>> screen_qc(lst, qc, product="MOD11").values.tolist()
[270.0, nan, nan, nan]
"""

from __future__ import annotations

import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.io.products.modis import QC_RULES, qc_good
from soilfuse.preprocess._common import variable_as
from soilfuse.variables import convert_units

__all__ = ["QC_RULES", "apply_masks", "qc_bad_mask", "qc_good", "screen_qc", "snow_frozen_mask", "water_mask"]


def snow_frozen_mask(
    lst_day: xr.DataArray, albedo: xr.DataArray, *, lst_max: float = 273.15, albedo_min: float = 0.3
) -> xr.DataArray:
    """True where the surface is snow-covered or frozen: ``LST_day < lst_max`` and ``albedo > albedo_min``.

    Parameters
    ----------
    lst_day : xarray.DataArray
        Daytime LST with declared units (K or degC).
    albedo : xarray.DataArray
        Broadband albedo (1), broadcastable against ``lst_day``.
    lst_max : float
        Temperature threshold in K (0 °C).
    albedo_min : float
        Albedo threshold (1).

    Returns
    -------
    xarray.DataArray
        ``snow_frozen`` boolean mask (True = remove).

    Raises
    ------
    UnitsError
        If LST has no temperature units or albedo declares units other than 1.
    """
    lst = variable_as(lst_day, "lst_day")
    alb = variable_as(albedo, "albedo")
    mask = (lst < lst_max) & (alb > albedo_min)
    mask = mask.rename("snow_frozen")
    mask.attrs = {"long_name": "snow-covered or frozen surface (True = remove)",
                  "comment": f"LST_day < {lst_max} K and albedo > {albedo_min} (Cui et al. 2020)"}
    return mask


def water_mask(water_fraction: xr.DataArray, *, max_fraction: float = 0.2) -> xr.DataArray:
    """True where the open-water fraction of a cell exceeds ``max_fraction``.

    Parameters
    ----------
    water_fraction : xarray.DataArray
        Water fraction (1, or % when its ``units`` say so; converted).
    max_fraction : float
        Largest tolerated fraction (1); 0.2 = 20 %.

    Returns
    -------
    xarray.DataArray
        ``water`` boolean mask (True = remove).

    Raises
    ------
    DataError
        If ``max_fraction`` is not in [0, 1].
    """
    if not 0.0 <= max_fraction <= 1.0:
        msg = f"max_fraction is a fraction in [0, 1]; got {max_fraction} (20 % is 0.2)."
        raise DataError(msg)
    frac = convert_units(water_fraction, "1") if "units" in water_fraction.attrs else water_fraction
    mask = (frac > max_fraction).rename("water")
    mask.attrs = {"long_name": "open water (True = remove)",
                  "comment": f"water fraction > {max_fraction:g} of the cell"}
    return mask


def qc_bad_mask(qc: xr.DataArray, *, product: str) -> xr.DataArray:
    """True where a MODIS QC layer says the value is not of good quality.

    Parameters
    ----------
    qc : xarray.DataArray
        Raw integer QC layer (e.g. ``qc_day`` from :func:`soilfuse.io.products.read_modis`).
    product : {"MOD11", "MOD13", "MOD09"}
        Product family (``MYD``/``MCD`` and full names accepted); bit rules in the
        module docstring.

    Returns
    -------
    xarray.DataArray
        ``qc_bad`` boolean mask (True = remove); lazy for Dask input.

    Raises
    ------
    DataError
        If the product has no QC rule.
    """
    mask = ~qc_good(qc, product)
    mask = mask.rename("qc_bad")
    mask.attrs = {"long_name": f"not good quality by {product} QC (True = remove)",
                  "comment": "negation of soilfuse.io.products.modis.qc_good"}
    return mask


def screen_qc(da: xr.DataArray, qc: xr.DataArray, *, product: str) -> xr.DataArray:
    """``da`` with values whose QC is not "good quality" set to NaN (attributes kept).

    Parameters
    ----------
    da : xarray.DataArray
        Data layer (e.g. ``lst_day``).
    qc : xarray.DataArray
        Its QC layer, same shape.
    product : str
        Product family, see :func:`qc_bad_mask`.

    Returns
    -------
    xarray.DataArray
    """
    return apply_masks(da, qc_bad_mask(qc, product=product))


def apply_masks(da: xr.DataArray, *masks: xr.DataArray) -> xr.DataArray:
    """``da`` set to NaN wherever any mask is True; name and attributes kept.

    Parameters
    ----------
    da : xarray.DataArray
        Data.
    *masks : xarray.DataArray
        Boolean masks broadcastable against ``da`` (True = remove).

    Returns
    -------
    xarray.DataArray
    """
    out = da
    for mask in masks:
        out = out.where(~mask.astype(bool))
    out.attrs = dict(da.attrs)
    return out.rename(da.name)
