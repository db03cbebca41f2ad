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
from soilfuse.io.products.dem import read_dem
from soilfuse.io.products.era5 import ERA5_LAYERS, ERA5_VARIABLES, read_era5
from soilfuse.io.products.gldas import GLDAS_LAYERS, read_gldas
from soilfuse.io.products.lprm import LPRM_BANDS, read_lprm
from soilfuse.io.products.modis import QC_RULES, qc_good, read_modis
from soilfuse.io.products.smap import read_ease_land_points, read_smap, smap_points

__all__ = [
    "CCI_FLAG_BITS",
    "ERA5_LAYERS",
    "ERA5_VARIABLES",
    "GLDAS_LAYERS",
    "LPRM_BANDS",
    "QC_RULES",
    "qc_good",
    "read_cci",
    "read_dem",
    "read_ease_land_points",
    "read_era5",
    "read_gldas",
    "read_lprm",
    "read_modis",
    "read_smap",
    "smap_points",
]
