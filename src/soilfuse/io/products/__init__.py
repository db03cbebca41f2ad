"""Product-specific readers that return canonical, CF-annotated ``xarray.Dataset`` objects.

Every reader takes one file, a folder, a glob pattern or a list of files, and returns
a dataset in soilfuse's canonical layout (``docs/conventions.md``): canonical variable
names and units, dims ``(time, [depth,] y, x)`` with ``y`` north-up, the CRS on a
``spatial_ref`` coordinate, CF attributes, each variable's own product name kept in
``source_name``, and Dask arrays when ``chunks`` is given. Declared units that
differ from a file's raise :class:`~soilfuse.exceptions.UnitsError`; a missing
variable raises :class:`~soilfuse.exceptions.MissingVariableError`.

=================  ===============================================================
reader             product
=================  ===============================================================
:func:`read_era5`  ERA5 and ERA5-Land NetCDF / GRIB, hourly to daily
:func:`read_gldas` GLDAS-2.x Noah NetCDF and GLDAS-1 Noah GRIB, 3-hourly to daily
:func:`read_cci`   ESA CCI SM (COMBINED, PASSIVE, ACTIVE) and C3S SM, daily/monthly
:func:`read_lprm`  AMSR2 LPRM L3 soil moisture
:func:`read_smap`  SMAP L3 soil moisture
:func:`read_modis` MODIS land products
:func:`read_dem`   digital elevation models
=================  ===============================================================

Usage
-----
>>> from soilfuse.io.products import read_cci
>>> ds = read_cci("ESACCI-SOILMOISTURE-*.nc", region=(-5, 5, 40, 48))  # doctest: +SKIP
>>> ds["sm"].attrs["units"]  # doctest: +SKIP
'm3 m-3'
"""

from __future__ import annotations

from soilfuse.io.products.cci import CCI_FLAG_BITS, read_cci
from soilfuse.io.products.era5 import ERA5_LAYERS, ERA5_VARIABLES, read_era5
from soilfuse.io.products.gldas import GLDAS_LAYERS, read_gldas
from soilfuse.io.products.lprm import LPRM_BANDS, read_lprm

__all__ = [
    "CCI_FLAG_BITS",
    "ERA5_LAYERS",
    "ERA5_VARIABLES",
    "GLDAS_LAYERS",
    "LPRM_BANDS",
    "read_cci",
    "read_era5",
    "read_gldas",
    "read_lprm",
]

# The SMAP, MODIS and DEM readers are written in parallel; until they exist these
# imports are skipped (the integrator replaces the guards with plain imports).
try:
    from soilfuse.io.products.smap import read_smap

    __all__ += ["read_smap"]
except ModuleNotFoundError as err:  # only a missing module is skipped, never a broken one
    if err.name != "soilfuse.io.products.smap":
        raise
try:
    from soilfuse.io.products.modis import read_modis

    __all__ += ["read_modis"]
except ModuleNotFoundError as err:  # only a missing module is skipped, never a broken one
    if err.name != "soilfuse.io.products.modis":
        raise
try:
    from soilfuse.io.products.dem import read_dem

    __all__ += ["read_dem"]
except ModuleNotFoundError as err:  # only a missing module is skipped, never a broken one
    if err.name != "soilfuse.io.products.dem":
        raise
