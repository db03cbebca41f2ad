"""Load a recipe's inputs from a synthetic-world folder (or matching real files).

A folder written by ``soilfuse twin`` holds the inputs in real-product formats
(``docs/twin.md``). These loaders read them with the ordinary readers of
:mod:`soilfuse.io`, so a recipe goes through the same code path as on real data; they
only know where each kind of file lives in such a folder:

========================  ==============================================
``static/*.tif``          elevation, land cover, climate zone, texture
``reanalysis/*.nc``       ERA5-Land-like daily fields
``modis/*.tif``           MODIS-like yearly stacks (LST, QC, reflectance…)
``satellite/smap/*.nc``   SMAP-like point lists (36 km EASE-Grid 2.0)
``satellite/cci/*.nc``    CCI-like 0.25° daily soil moisture
``stations/``             station tables (``stations.csv``, ``observations.parquet``)
``truth.zarr``            the truth, for scoring only
========================  ==============================================

Every loader raises :class:`~soilfuse.exceptions.DataError` naming the missing file
and the folder layout it expected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords_from_labels
from soilfuse.io.geotiff import open_raster
from soilfuse.io.gridded import open_gridded
from soilfuse.io.stations import StationData, read_stations

__all__ = [
    "TEXTURE_LAYERS",
    "load_modis",
    "load_reanalysis",
    "load_static",
    "load_stations",
    "load_truth",
    "require",
]

logger = logging.getLogger(__name__)

#: Soil-texture depth intervals (cm) of static maps, as band labels.
TEXTURE_LAYERS = ("0-5cm", "5-15cm", "15-30cm", "30-60cm", "60-100cm")


def require(folder: Path, pattern: str, what: str) -> list[Path]:
    """Files matching ``pattern`` under ``folder``, or a :class:`DataError` saying what is missing."""
    files = sorted(Path(folder).glob(pattern))
    if not files:
        msg = (
            f"No {what} found: expected files matching '{pattern}' in {folder}. "
            "Point 'inputs.twin' at a folder written by 'soilfuse twin', or give the input paths."
        )
        raise DataError(msg)
    return files


def load_static(folder: Path, *, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Static maps on the fine grid: elevation (m), slope/aspect (degree), land cover,
    climate zone and texture per depth interval as ``sand_0-5cm``… (%).

    Slope and aspect are derived from the elevation with
    :func:`soilfuse.preprocess.terrain.slope_aspect` (Horn's method, metric spacing).
    """
    from soilfuse.preprocess.terrain import slope_aspect

    static = Path(folder) / "static"
    out: dict[str, xr.DataArray] = {}
    elevation = _single(require(static, "elevation.tif", "elevation map")[0], "elevation", chunks)
    out["elevation"] = elevation
    terrain = slope_aspect(elevation, edge="reflect")
    out["slope"] = terrain["slope"]
    out["aspect"] = terrain["aspect"]
    for name in ("land_cover", "climate_zone", "water_fraction"):
        path = static / f"{name}.tif"
        if path.is_file():
            out[name] = _single(path, name, chunks)
    for name in ("sand", "silt", "clay"):
        path = static / f"{name}.tif"
        if not path.is_file():
            continue
        da = _single(path, name, chunks)
        if "depth" in da.dims:
            for k in range(da.sizes["depth"]):
                label = str(da["layer"].values[k]) if "layer" in da.coords else TEXTURE_LAYERS[k]
                out[f"{name}_{label}"] = da.isel(depth=k, drop=True)
        else:
            out[name] = da
    grid = Grid.from_dataset(elevation)
    ds = xr.Dataset({k: v.drop_vars([c for c in v.coords if c not in ("y", "x")]) for k, v in out.items()})
    return with_grid(ds, grid)


def load_reanalysis(
    folder: Path, variables: Sequence[str] | None = None, *, chunks: dict[str, int] | None = None
) -> xr.Dataset:
    """ERA5-Land-like daily fields (canonical names and units) from ``reanalysis/*.nc``."""
    from soilfuse.io.products import read_era5

    files = require(Path(folder) / "reanalysis", "*.nc", "reanalysis files")
    return read_era5(files, variables=list(variables) if variables else None, chunks=chunks)


def load_modis(
    folder: Path, layers: Sequence[str], *, qc: str | None = "good", chunks: dict[str, int] | None = None
) -> xr.Dataset:
    """MODIS-like layers (canonical names) from ``modis/*.tif``, QC-screened by default."""
    from soilfuse.io.products import read_modis

    files = require(Path(folder) / "modis", "*.tif", "MODIS files")
    return read_modis(files, layers=list(layers), qc=qc, chunks=chunks)  # type: ignore[arg-type]


def load_stations(
    folder: Path,
    *,
    variables: Sequence[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> StationData:
    """Station metadata and raw observations from ``stations/``.

    ``variables`` and ``start <= time < end`` select the observations while reading
    (see :func:`soilfuse.io.stations.read_stations`).
    """
    path = Path(folder) / "stations"
    if not path.is_dir():
        msg = f"No station folder {path}; expected stations.csv and observations.parquet there."
        raise DataError(msg)
    return read_stations(path, variables=variables, start=start, end=end)


def load_truth(folder: Path, variables: Sequence[str] | None = None) -> xr.Dataset:
    """The twin's truth (``truth.zarr``), lazily; for scoring only."""
    path = Path(folder) / "truth.zarr"
    if not path.exists():
        msg = f"No truth store {path}: scoring against truth needs a synthetic-world folder."
        raise DataError(msg)
    ds = open_gridded(path)
    return ds[list(variables)] if variables else ds


def _single(path: Path, name: str, chunks: dict[str, int] | None) -> xr.DataArray:
    ds = open_raster(path, chunks=chunks, variable=name)
    da = ds[name] if name in ds else ds[next(iter(ds.data_vars))]
    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.isel(band=0, drop=True)
    if "depth" in da.dims and "layer" not in da.coords:
        labels = list(TEXTURE_LAYERS[: da.sizes["depth"]])
        da = da.assign_coords(depth_coords_from_labels(labels))
    return da.astype(np.float32).rename(name)
