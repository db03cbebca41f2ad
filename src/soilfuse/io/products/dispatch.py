"""Open any supported gridded product with the reader that knows its quirks.

:func:`open_product` sniffs the variables of the first file and dispatches: ERA5 /
ERA5-Land (``swvl*``, ``stl*``, ``t2m``…) → :func:`read_era5`; ESA CCI / C3S
(``sm`` with ``flag`` or ``nobs``) → :func:`read_cci`; SMAP point lists
(``soil_moisture`` along ``index``) → :func:`read_smap`; GLDAS (``SoilMoi*``) →
:func:`read_gldas`; LPRM (``soil_moisture_c1``) → :func:`read_lprm`; anything else
(soilfuse products, Zarr stores, rasters) → :func:`soilfuse.io.gridded.open_gridded`.
A folder means all of its NetCDF files (of one product).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from soilfuse.exceptions import UnsupportedFileError
from soilfuse.io.gridded import NETCDF_SUFFIXES, ZARR_SUFFIXES, open_gridded

__all__ = ["open_product", "product_kind"]


def product_kind(path: str | Path) -> str:
    """``"era5"``, ``"cci"``, ``"smap"``, ``"gldas"``, ``"lprm"`` or ``"gridded"`` for one file."""
    p = Path(path)
    if p.is_dir() or p.suffix.lower() not in NETCDF_SUFFIXES:
        return "gridded"
    with xr.open_dataset(p, decode_times=False, engine=_engine(p)) as ds:
        names = set(map(str, ds.variables))
        dims = set(map(str, ds.dims))
    if names & {"swvl1", "stl1", "t2m", "tp", "ssrd"}:
        return "era5"
    if "soil_moisture_c1" in names:
        return "lprm"
    if "soil_moisture" in names and "index" in dims:
        return "smap"
    if any(n.startswith("SoilMoi") or n.startswith("SoilTMP") for n in names):
        return "gldas"
    if "sm" in names and names & {"flag", "nobs"}:
        return "cci"
    return "gridded"


def open_product(paths: str | Path | Sequence[str | Path], **kwargs: Any) -> xr.Dataset:
    """Canonical dataset of one product from a file, a folder or a list of files.

    Raises
    ------
    UnsupportedFileError
        If a folder holds no NetCDF files and is not a Zarr store.
    """
    files = _files(paths)
    kind = product_kind(files[0])
    from soilfuse.io import products

    readers: dict[str, Callable[..., xr.Dataset]] = {
        "era5": products.read_era5, "cci": products.read_cci, "smap": products.read_smap,
        "gldas": products.read_gldas, "lprm": products.read_lprm,
    }
    if kind in readers:
        return readers[kind](files, **kwargs)
    return open_gridded(files[0], **kwargs)


def _files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if p.is_dir() and not (p.suffix in ZARR_SUFFIXES or (p / "zarr.json").exists() or (p / ".zgroup").exists()):
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in NETCDF_SUFFIXES)
            if not found:
                msg = f"{p} is a folder without NetCDF files and is not a Zarr store; pass a product file."
                raise UnsupportedFileError(msg)
            return found
        return [p]
    return [Path(q) for q in paths]


def _engine(p: Path) -> str:
    with p.open("rb") as fh:
        magic = fh.read(8)
    return "scipy" if magic.startswith(b"CDF") else "h5netcdf"
