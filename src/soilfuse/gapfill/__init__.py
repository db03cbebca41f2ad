"""Gap filling and temporal smoothing of daily satellite fields, with provenance flags.

Every function is xarray in / xarray out: it takes a field with a ``time`` dim (and
``y``, ``x``) where NaN marks a gap, never modifies it, and returns an
:class:`xarray.Dataset` with the field under its own name (same dtype, units,
attributes, coords and CRS) and a ``<name>_flag`` uint8 layer saying how each value
was obtained:

====  ==========================  =============================================
code  meaning                     made by
====  ==========================  =============================================
0     observed                    the input
1     temporal_interpolation      :func:`fill_spatiotemporal` step 1, :func:`whittaker` across gaps
2     spatial_interpolation       :func:`fill_spatiotemporal` step 2
3     stdf_regression             :func:`stdf_fill`
4     observed_smoothed           :func:`savgol`, :func:`whittaker` (observed value replaced by the smooth)
255   missing                     nothing could be made
====  ==========================  =============================================

(the registry is :data:`FLAG_MEANINGS`; the flag variable carries CF ``flag_values``
and ``flag_meanings``). A function given another one's output Dataset carries its
flags on, so steps chain.

Functions
    :func:`fill_spatiotemporal` — linear in time within ``max_gap`` days, then
    inverse-distance in space (Wang et al., seed 000 §2.2.1).
    :func:`savgol` — Savitzky–Golay smoothing along time (never fills).
    :func:`whittaker` — weighted Whittaker smoother with fixed λ, V-curve or GCV.
    :func:`stdf_fill` — STDF regression reconstruction of cloudy LST from proximal
    dates, NDVI and DEM (Song et al., seed 003 eq. 1).

Dask: smoothers and the interpolator need whole series, so they rechunk to one
``time`` chunk and spatial tiles within a memory budget (``task_bytes``); STDF needs
whole images, so it rechunks to spatially whole chunks of a few weeks plus a
``window_days`` halo. Graphs are built lazily; numbers do not depend on the chunking.

Usage
-----
The soil-temperature recipe's LST chain (daily day/night LST and EVI)::

    lst = gapfill.fill_spatiotemporal(modis["lst_day"], max_gap=16)
    lst = gapfill.savgol(lst, window=7, order=2)            # flags carried on
    evi = gapfill.whittaker(preprocess.evi(modis), lmbda="vcurve")
    lst_stdf = gapfill.stdf_fill(modis["lst_day"], evi["evi"], static["elevation"])

>>> import numpy as np, xarray as xr
>>> from soilfuse import gapfill
>>> da = xr.DataArray(np.array([1.0, np.nan, 3.0, 4.0, 5.0])[:, None, None],
...                   dims=("time", "y", "x"), name="evi")
>>> gapfill.fill_spatiotemporal(da)["evi"].values.ravel().tolist()
[1.0, 2.0, 3.0, 4.0, 5.0]
>>> gapfill.FLAG_MEANINGS[3]
'stdf_regression'
"""

from soilfuse.gapfill._common import FLAG_MEANINGS, MISSING, OBSERVED, SMOOTHED, SPATIAL, STDF, TEMPORAL
from soilfuse.gapfill.interpolate import fill_spatiotemporal
from soilfuse.gapfill.smooth import DEFAULT_LAMBDAS, savgol, whittaker
from soilfuse.gapfill.stdf import stdf_fill

__all__ = [
    "DEFAULT_LAMBDAS",
    "FLAG_MEANINGS",
    "MISSING",
    "OBSERVED",
    "SMOOTHED",
    "SPATIAL",
    "STDF",
    "TEMPORAL",
    "fill_spatiotemporal",
    "savgol",
    "stdf_fill",
    "whittaker",
]
