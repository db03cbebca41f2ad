"""Preprocessing: spectral indices, thermal covariates, terrain, antecedent precipitation and masks.

Every function takes xarray objects in canonical names and units
(``docs/conventions.md``) and returns new ones on the same coords with the CRS kept;
inputs are never modified and Dask-backed inputs stay lazy. Each module keeps its
numpy kernels (``*_kernel``) apart from the thin xarray wrappers listed here.

Spectral indices (:mod:`~soilfuse.preprocess.indices`), from ``refl_b1`` … ``refl_b7``
    :func:`ndvi`, :func:`evi`, :func:`ndwi`, :func:`lswi`, :func:`nsdsi`, :func:`nmdi`
    and :func:`spectral_indices` (several at once; registry :data:`INDICES`). NaN
    where a band is NaN or outside [−0.01, 1.6] or the denominator is near zero.

Thermal (:mod:`~soilfuse.preprocess.thermal`)
    :func:`lst_mean` and :func:`dtr` (K) from ``lst_day``/``lst_night``;
    :func:`fractional_cover` from NDVI; :func:`soil_evaporative_efficiency` (SEE)
    from daytime LST and NDVI per window (Merlin et al. 2008).

Terrain (:mod:`~soilfuse.preprocess.terrain`)
    :func:`slope_aspect` (Horn 1981, metric spacing on lat-lon and projected grids)
    and :func:`tpi`.

Precipitation (:mod:`~soilfuse.preprocess.antecedent`)
    :func:`antecedent_precipitation` — mean of the last ``m`` days (seed 002 eq. 1).

Masks (:mod:`~soilfuse.preprocess.masks`), True = remove
    :func:`snow_frozen_mask`, :func:`water_mask`, :func:`qc_bad_mask`,
    :func:`screen_qc`, :func:`apply_masks`.

Usage
-----
>>> import numpy as np, xarray as xr
>>> from soilfuse import preprocess
>>> bands = xr.Dataset({"refl_b1": ("x", [0.05]), "refl_b2": ("x", [0.40]), "refl_b3": ("x", [0.03])})
>>> round(float(preprocess.evi(bands)[0]), 4)
0.5932
>>> day = xr.DataArray([300.0], dims="x", attrs={"units": "K"})
>>> night = xr.DataArray([290.0], dims="x", attrs={"units": "K"})
>>> float(preprocess.dtr(xr.Dataset({"lst_day": day, "lst_night": night}))[0])
10.0

A typical covariate stack for a downscaling recipe::

    modis = read_modis(files, chunks={"time": 8, "y": 512, "x": 512})
    covariates = xr.merge([
        preprocess.spectral_indices(modis, ["ndvi", "evi", "ndwi", "lswi", "nsdsi"]),
        preprocess.slope_aspect(static["elevation"]),
        preprocess.tpi(static["elevation"]),
    ])
    bad = preprocess.snow_frozen_mask(modis["lst_day"], modis["albedo"]) | preprocess.water_mask(frac)
"""

from soilfuse.preprocess.antecedent import antecedent_precipitation
from soilfuse.preprocess.indices import INDICES, evi, lswi, ndvi, ndwi, nmdi, nsdsi, spectral_indices
from soilfuse.preprocess.masks import (
    apply_masks,
    qc_bad_mask,
    screen_qc,
    snow_frozen_mask,
    water_mask,
)
from soilfuse.preprocess.terrain import slope_aspect, tpi
from soilfuse.preprocess.thermal import dtr, fractional_cover, lst_mean, soil_evaporative_efficiency

__all__ = [
    "INDICES",
    "antecedent_precipitation",
    "apply_masks",
    "dtr",
    "evi",
    "fractional_cover",
    "lst_mean",
    "lswi",
    "ndvi",
    "ndwi",
    "nmdi",
    "nsdsi",
    "qc_bad_mask",
    "screen_qc",
    "slope_aspect",
    "snow_frozen_mask",
    "soil_evaporative_efficiency",
    "spectral_indices",
    "tpi",
    "water_mask",
]
