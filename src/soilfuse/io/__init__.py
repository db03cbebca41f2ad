"""Readers and writers: gridded files, rasters, station tables and product formats.

* :func:`open_gridded` — NetCDF/HDF5, Zarr and rasters into the canonical layout.
* :func:`write_zarr`, :func:`write_netcdf`, :func:`write_geotiff` — CF-1.10 + ACDD outputs, atomic.
* :func:`init_zarr`, :func:`pending_regions`, :func:`is_complete` — resumable products.
* :func:`canonicalize`, :func:`with_grid` — bring datasets to ``(time, y, x)`` with a CRS.
* product readers live in :mod:`soilfuse.io.products`, station tables in
  :mod:`soilfuse.io.stations` and :mod:`soilfuse.io.ismn`.
"""

from soilfuse.io.canonical import canonicalize, with_grid
from soilfuse.io.geotiff import open_raster, write_geotiff
from soilfuse.io.gridded import open_gridded, write_netcdf, write_zarr
from soilfuse.io.store import completed_regions, init_zarr, is_complete, pending_regions

__all__ = [
    "canonicalize",
    "completed_regions",
    "init_zarr",
    "is_complete",
    "open_gridded",
    "open_raster",
    "pending_regions",
    "with_grid",
    "write_geotiff",
    "write_netcdf",
    "write_zarr",
]
