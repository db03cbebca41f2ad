"""Write a twin in the file formats of the real inputs, and :func:`generate` one end to end.

:func:`write_twin` writes everything a recipe reads, in the formats of the real
products, so recipes run the same readers on twin and real data (layout in
``docs/twin.md``)::

    OUT/static/*.tif                         static maps (GeoTIFF, layered maps as bands)
    OUT/reanalysis/era5land_<YYYY>.nc        ERA5-Land-like daily fields, CDS style
    OUT/satellite/cci/ESACCI-…-<YYYYMMDD>000000-fv08.1.nc   one file per day
    OUT/satellite/smap/Twin_<YYYY-MM-DD>.nc  SMAP-like point lists, one file per day
    OUT/modis/<product>_<layer>_<YYYY>.tif   MODIS-like yearly stacks, MODIS packing
    OUT/stations/…                           stations.csv, observations.parquet,
                                             faults.csv, sensors.csv,
                                             station_truth.parquet, ismn/…/*.stm
    OUT/truth.zarr, static.zarr, forcing.zarr
    OUT/twin.json                            config, grids, files, error figures

:func:`generate` observes with ``stream_stations=True, stream_grids=True``: the station
records and the reanalysis, CCI and SMAP products are then simulated while they are
written (a batch of sensors, a block of days at a time) and scored on the way, so
memory does not grow with the stations or the period. Given in-memory observations,
:func:`write_twin` writes the same files.

Writes are atomic: everything goes to ``OUT.partial`` and is renamed to ``OUT`` once
complete, so an interrupted run never leaves a folder that looks finished. Files are
bit-reproducible: the same config and seed give byte-identical files (timestamps in
file metadata are the last day of the simulated period, not the wall clock).

Usage
-----
>>> from soilfuse.twin import generate
>>> files = generate("small", "runs/twin-small", seed=0)  # doctest: +SKIP
>>> files["twin.json"].name  # doctest: +SKIP
'twin.json'
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
from pyproj import Transformer

from soilfuse._typing import Region
from soilfuse.exceptions import ConfigError
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.io.geotiff import write_geotiff
from soilfuse.io.gridded import write_zarr
from soilfuse.twin.config import TwinConfig
from soilfuse.twin.observe import Observations, StationSummary, evaluate, observe
from soilfuse.twin.observe_common import profile_of
from soilfuse.twin.observe_grids import grid_blocks
from soilfuse.twin.observe_scores import GridScores
from soilfuse.twin.observe_stations import StationBatch, StationPlan, faults_frame, station_batches
from soilfuse.twin.world import make_world

__all__ = ["MODIS_FILES", "generate", "write_twin"]

logger = logging.getLogger(__name__)

#: MODIS-like layers: canonical name -> (file stem, time dim, dtype, scale, nodata).
MODIS_FILES: Mapping[str, tuple[str, str, str, float | None, float | None]] = {
    "lst_day": ("MOD11A1_LST_Day_1km", "time", "uint16", 0.02, 0),
    "lst_night": ("MOD11A1_LST_Night_1km", "time", "uint16", 0.02, 0),
    "qc_day": ("MOD11A1_QC_Day", "time", "uint8", None, None),
    "qc_night": ("MOD11A1_QC_Night", "time", "uint8", None, None),
    **{f"refl_b{b}": (f"MOD09GA_sur_refl_b0{b}", "time", "int16", 1e-4, -28672) for b in range(1, 8)},
    "ndvi": ("MOD13A2_NDVI", "time_16d", "int16", 1e-4, -3000),
    "evi": ("MOD13A2_EVI", "time_16d", "int16", 1e-4, -3000),
    "lai": ("MCD15A2H_Lai", "time_8d", "uint8", 0.1, 255),
    "albedo": ("MCD43A3_Albedo", "time", "int16", 1e-3, 32767),
}
# Daily layers full of sensor noise shrink by only ~25 % under deflate, which triples
# their writing time; they are stored uncompressed, the others deflated.
_UNCOMPRESSED = ("lst_day", "lst_night", "albedo", *(f"refl_b{b}" for b in range(1, 8)))

# ERA5 short name -> (canonical name, layer index or None, factor to ERA5 units, units, long name)
_ERA5: tuple[tuple[str, str, int | None, float, str, str], ...] = (
    ("t2m", "t2m", None, 1.0, "K", "2 metre temperature"),
    ("tp", "tp", None, 1e-3, "m", "Total precipitation"),
    ("ssrd", "ssrd", None, 86400.0, "J m**-2", "Surface solar radiation downwards"),
    ("ssr", "ssr", None, 86400.0, "J m**-2", "Surface net short-wave (solar) radiation"),
    ("strd", "strd", None, 86400.0, "J m**-2", "Surface thermal radiation downwards"),
    ("u10", "u10", None, 1.0, "m s**-1", "10 metre U wind component"),
    ("v10", "v10", None, 1.0, "m s**-1", "10 metre V wind component"),
    ("e", "e", None, -1e-3, "m of water equivalent", "Evaporation"),
    ("pev", "pev", None, -1e-3, "m", "Potential evaporation"),
    ("sd", "sd", None, 1.0, "m of water equivalent", "Snow depth water equivalent"),
    *((f"swvl{k}", "sm", k - 1, 1.0, "m**3 m**-3", f"Volumetric soil water layer {k}") for k in range(1, 5)),
    *((f"stl{k}", "st", k - 1, 1.0, "K", f"Soil temperature level {k}") for k in range(1, 5)),
)

_CCI_FLAG_VALUES = list(range(32))
_ISMN_MAX_STATIONS = 24
# Rows per Parquet row group: pyarrow's default for a whole-table write, so that the
# streamed station tables are byte-identical to writing them in one piece.
_ROW_GROUP = 1024 * 1024
#: Sensors simulated and written at a time by the streaming station writer.
_STATION_BATCH = 128


# ====================================================================== helpers
def _stamp(world: Any) -> str:
    """The deterministic timestamp written into file metadata: the period's last day."""
    return f"{pd.Timestamp(world.config.end).strftime('%Y-%m-%d')}T00:00:00Z"


def _fixed_attrs(world: Any, title: str) -> dict[str, str]:
    stamp = _stamp(world)
    return {"title": title, "date_created": stamp, "date_modified": stamp,
            "history": f"{stamp} synthetic twin written by soilfuse (seed {world.config.seed})",
            "source": "soilfuse synthetic twin"}


def _cci_flag_meanings() -> str:
    """CCI ``flag_meanings`` of the values 0-31 (single bits by name, others as combinations)."""
    names = {1: "snow_coverage_or_temperature_below_zero", 2: "dense_vegetation",
             4: "others_no_convergence_in_the_model_thus_no_valid_sm_estimates",
             8: "soil_moisture_value_exceeds_physical_boundary", 16: "weight_of_measurement_below_threshold"}
    words = []
    for v in _CCI_FLAG_VALUES:
        bits = [b for b in (1, 2, 4, 8, 16) if v & b]
        if not bits:
            words.append("no_data_inconsistency_detected")
        elif len(bits) == 1:
            words.append(names[bits[0]])
        else:
            words.append("combination_of_flag_values_" + "_and_".join(str(b) for b in bits))
    return " ".join(words)


# ====================================================================== static maps
def _write_static(world: Any, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    static = world.static
    for name in static.data_vars:
        da = static[name]
        if not {"y", "x"} <= set(da.dims):
            continue
        if da.ndim == 3:
            prof, tops, bottoms = profile_of(static, str(name))
            coords = cf.depth_coords(tops.tolist(), bottoms.tolist())
            da = xr.DataArray(prof.data, dims=("depth", "y", "x"),
                              coords={"depth": coords["depth"], "layer": coords["layer"],
                                      "y": static["y"], "x": static["x"],
                                      "spatial_ref": static["spatial_ref"]},
                              attrs=dict(da.attrs), name=str(name))
        dtype = "uint8" if name in ("land_cover", "climate_zone") else "float32"
        da = da.astype(dtype) if dtype == "uint8" else da.astype("float32")
        written.append(write_geotiff(da, folder / f"{name}.tif", dtype=dtype))
    return written


# ====================================================================== reanalysis
class _ReanalysisFiles:
    """Write the yearly ``era5land_<YYYY>.nc`` files (CDS style) block of days by block of days.

    A year's file is created with its whole time axis when the first of its days
    arrives and closed when the next year starts (or on :meth:`close`), so only the
    block being appended is in memory. Use as a context manager.

    Parameters
    ----------
    world : soilfuse.twin.World
        The world (period and history attribute).
    folder : pathlib.Path
        Target folder.
    """

    def __init__(self, world: Any, folder: Path) -> None:
        self.world = world
        self.folder = folder
        self.times = pd.DatetimeIndex(world.truth["time"].values)
        self.written: list[Path] = []
        self._nc: Any = None
        self._year: int | None = None

    def __enter__(self) -> _ReanalysisFiles:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, rea: xr.Dataset) -> None:
        """Write the days of ``rea`` (the reanalysis dataset of consecutive days, canonical units)."""
        block = pd.DatetimeIndex(rea["time"].values)
        for year in sorted(set(block.year)):
            days = np.nonzero(block.year == year)[0]
            if year != self._year:
                self._open(year, rea)
            at = int(np.searchsorted(self.times[self.times.year == year], block[days[0]]))
            sel = rea.isel(time=days)
            for short, canon, layer, factor, _, _ in _ERA5:
                values = sel[canon].values if layer is None else sel[canon].values[:, layer]
                self._nc[short][at:at + days.size] = (values * factor).astype("float32")

    def close(self) -> None:
        """Close the open file, if any."""
        if self._nc is not None:
            self._nc.close()
            self._nc, self._year = None, None

    def _open(self, year: int, rea: xr.Dataset) -> None:
        """Create ``era5land_<year>.nc`` with its coordinates, land-sea mask and empty fields."""
        import netCDF4

        self.close()
        times = self.times[self.times.year == year]
        path = self.folder / f"era5land_{year}.nc"
        nc = netCDF4.Dataset(path, "w", format="NETCDF4")
        dims = ("valid_time", "latitude", "longitude")
        for dim, size in zip(dims, (times.size, rea.sizes["y"], rea.sizes["x"]), strict=True):
            nc.createDimension(dim, size)
        nan = np.float32(np.nan)
        for short, _, _, _, units, long_name in _ERA5:
            var = nc.createVariable(short, "float32", dims, fill_value=nan)
            var.setncatts({"units": units, "long_name": long_name, "GRIB_shortName": short})
        lsm = nc.createVariable("lsm", "float32", dims[1:], fill_value=nan)
        lsm.setncatts({"units": "(0 - 1)", "long_name": "Land-sea mask", "standard_name": "land_binary_mask"})
        lsm[...] = rea["land_fraction"].values.astype("float32")
        valid_time = nc.createVariable("valid_time", "int64", ("valid_time",))
        valid_time.setncatts({"long_name": "time", "standard_name": "time", "units": "days since 1970-01-01",
                              "calendar": "proleptic_gregorian"})
        valid_time[...] = (times - pd.Timestamp("1970-01-01")).days.to_numpy("int64")
        for dim, src, units, standard in (("latitude", "y", "degrees_north", "latitude"),
                                          ("longitude", "x", "degrees_east", "longitude")):
            coord = nc.createVariable(dim, "float64", (dim,), fill_value=np.float64(np.nan))
            coord.setncatts({"units": units, "standard_name": standard})
            coord[...] = rea[src].values
        nc.setncatts({"Conventions": "CF-1.7", "institution": "soilfuse synthetic twin (ERA5-Land-like)",
                      "title": "ERA5-Land-like daily fields of the soilfuse synthetic twin",
                      "product": "ERA5-Land", "time_aggregation": "daily",
                      "history": _fixed_attrs(self.world, "")["history"]})
        self._nc, self._year = nc, year
        self.written.append(path)


def _write_grids(world: Any, obs: Observations, partial: Path) -> list[Path]:
    """Write the reanalysis, CCI and SMAP files into ``partial``; return their paths.

    When ``obs.grid_plan`` is set, the products are computed and written block of days
    by block of days (:func:`~soilfuse.twin.observe_grids.grid_blocks`), and their error
    figures accumulated into ``obs.grid_scores``; else the in-memory products are written.
    """
    plan = obs.grid_plan
    blocks: Iterable[Mapping[str, xr.Dataset]] = (
        [{"reanalysis": obs.reanalysis, "cci": obs.cci, "smap": obs.smap}] if plan is None else grid_blocks(plan))
    scores = GridScores()
    smap_grid = Grid.from_dataset(obs.smap)
    written: list[Path] = []
    with _ReanalysisFiles(world, partial / "reanalysis") as reanalysis:
        for block in blocks:
            reanalysis.append(block["reanalysis"])
            written += _write_cci(world, block["cci"], partial / "satellite" / "cci")
            written += _write_smap(block["smap"], smap_grid, partial / "satellite" / "smap")
            if plan is not None:
                scores.add(block)
    if plan is not None:
        obs.grid_scores = scores
    return reanalysis.written + written


# ====================================================================== small NetCDF files
def _write_nc(path: Path, dims: Mapping[str, int], variables: list[tuple[str, tuple[str, ...], Any,
              Mapping[str, Any], Any]], attrs: Mapping[str, Any], *,
              fmt: Literal["NETCDF4", "NETCDF4_CLASSIC"] = "NETCDF4") -> Path:
    """Write one small NetCDF-4 file with the netCDF4 library.

    Used for the thousands of one-day CCI and SMAP files: building an xarray Dataset
    and going through its backend costs ~30 ms a file, netCDF4 directly ~3 ms. Each
    variable is ``(name, dims, values, attributes, fill value or None)``.
    """
    import netCDF4

    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        for dim, size in dims.items():
            nc.createDimension(dim, size)
        for name, vdims, values, vattrs, fill in variables:
            arr = np.asarray(values)
            var = nc.createVariable(name, arr.dtype, vdims, fill_value=fill)
            var.set_auto_maskandscale(False)
            if vattrs:
                var.setncatts(dict(vattrs))
            if fill is not None and arr.dtype.kind == "f":
                arr = np.where(np.isnan(arr), fill, arr).astype(arr.dtype)
            var[...] = arr
        nc.setncatts(dict(attrs))
    return path


# ====================================================================== CCI
_CCI_FILL = {"sm": -9999.0, "sm_uncertainty": -9999.0, "t0": -9999.0, "flag": 127, "dnflag": 0,
             "mode": 0, "sensor": 0, "freqbandID": 0}


def _write_cci(world: Any, cci: xr.Dataset, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    lat = cci["y"].values.astype("float32")
    lon = cci["x"].values.astype("float32")
    flag_attrs = {"long_name": "Flag", "flag_values": np.array([*_CCI_FLAG_VALUES, 127], dtype="int8"),
                  "flag_meanings": _cci_flag_meanings() + " NaN"}
    attrs = {
        "title": "ESA CCI Surface Soil Moisture COMBINED active+passive Product (soilfuse synthetic twin)",
        "institution": "soilfuse synthetic twin", "product_version": "08.1", "Conventions": "CF-1.6",
        "time_coverage_resolution": "P1D", "spatial_resolution": "25km",
        "geospatial_lat_resolution": "0.25 degree", "geospatial_lon_resolution": "0.25 degree",
        "date_created": _stamp(world),
    }
    values = {name: cci[name].values for name in _CCI_FILL}
    var_attrs = {name: {k: v for k, v in cci[name].attrs.items() if k not in ("grid_mapping", "standard_name")}
                 for name in _CCI_FILL}
    var_attrs["flag"] = flag_attrs
    dtypes = {"sm": "float32", "sm_uncertainty": "float32", "t0": "float64", "flag": "int8",
              "dnflag": "int8", "mode": "int8", "sensor": "int16", "freqbandID": "int16"}
    written = []
    for i, t in enumerate(pd.DatetimeIndex(cci["time"].values)):
        flag = np.where(np.isfinite(values["sm"][i]) | (values["flag"][i] > 0), values["flag"][i], 127)
        day = {**{k: v[i] for k, v in values.items()}, "flag": flag}
        variables: list[tuple[str, tuple[str, ...], Any, Mapping[str, Any], Any]] = [
            ("lat", ("lat",), lat, {"units": "degrees_north", "standard_name": "latitude"}, None),
            ("lon", ("lon",), lon, {"units": "degrees_east", "standard_name": "longitude"}, None),
            ("time", ("time",), np.array([(t - pd.Timestamp("1970-01-01")).days], dtype="float64"),
             {"units": "days since 1970-01-01 00:00:00 UTC", "standard_name": "time",
              "calendar": "standard"}, None),
        ]
        for name, dtype in dtypes.items():
            fill = np.array(_CCI_FILL[name], dtype=dtype)
            variables.append((name, ("time", "lat", "lon"), day[name][None].astype(dtype), var_attrs[name], fill))
        written.append(_write_nc(folder / _cci_name(t), {"time": 1, "lat": lat.size, "lon": lon.size},
                                 variables, {**attrs, "id": _cci_name(t)}, fmt="NETCDF4_CLASSIC"))
    return written


def _cci_name(t: pd.Timestamp) -> str:
    return f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{t.strftime('%Y%m%d')}000000-fv08.1.nc"


# ====================================================================== SMAP
def _write_smap(smap: xr.Dataset, grid: Grid, folder: Path, region_name: str = "Twin") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    xx, yy = np.meshgrid(grid.x, grid.y)
    to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = (np.asarray(v, dtype="float32") for v in to_ll.transform(xx, yy))
    written = []
    sm_all, dca_all = smap["sm"].values, smap["sm_dca"].values
    nan = np.float32(np.nan)
    for i, t in enumerate(pd.DatetimeIndex(smap["time"].values)):
        ok = np.isfinite(sm_all[i])
        n = int(ok.sum())
        variables: list[tuple[str, tuple[str, ...], Any, Mapping[str, Any], Any]] = [
            ("index", ("index",), np.arange(n, dtype="int64"), {}, None),
            ("latitude", ("index",), lat[ok], {}, nan),
            ("longitude", ("index",), lon[ok], {}, nan),
            ("soil_moisture", ("index",), sm_all[i][ok].astype("float32"), {}, nan),
            ("soil_moisture_dca", ("index",), dca_all[i][ok].astype("float32"), {}, nan),
        ]
        path = folder / f"{region_name}_{t.strftime('%Y-%m-%d')}.nc"
        written.append(_write_nc(path, {"index": n}, variables, {}))
    return written


# ====================================================================== MODIS
def _write_modis(modis: xr.Dataset, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (stem, tdim, dtype, scale, nodata) in MODIS_FILES.items():
        da = modis[name]
        times = pd.DatetimeIndex(da[tdim].values)
        for year in sorted(set(times.year)):
            sel = da.isel({tdim: np.nonzero(times.year == year)[0]}).rename({tdim: "time"})
            sel.name = name
            path = folder / f"{stem}_{year}.tif"
            kwargs: dict[str, Any] = {"dtype": dtype,
                                      "compress": "none" if name in _UNCOMPRESSED else "deflate"}
            if scale is not None:
                kwargs.update(scale_factor=scale, nodata=nodata)
            written.append(write_geotiff(sel, path, **kwargs))
    return written


# ====================================================================== stations
def _write_stations(obs: Observations, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if obs.station_plan is not None:
        return _stream_stations(obs, obs.station_plan, folder)
    written = _write_csv({"stations.csv": obs.stations, "faults.csv": obs.station_faults,
                          "sensors.csv": obs.station_sensors}, folder)
    for fname, table in (("observations.parquet", obs.station_obs),
                         ("station_truth.parquet", obs.station_truth)):
        table.to_parquet(folder / fname, index=False)
        written.append(folder / fname)
    written += _write_ismn(obs.stations, obs.station_sensors, obs.station_obs, folder / "ismn")
    return written


def _write_csv(tables: Mapping[str, pd.DataFrame], folder: Path) -> list[Path]:
    for fname, table in tables.items():
        table.to_csv(folder / fname, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    return [folder / fname for fname in tables]


class _ParquetStream:
    """Append pandas frames to one Parquet file in row groups of :data:`_ROW_GROUP` rows.

    Gives the same bytes as ``pandas.concat(frames).to_parquet(path, index=False)``
    while holding at most one row group in memory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.rows = 0

    def append(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="snappy")
        self.pending.append(table)
        self.rows += table.num_rows
        while self.rows >= _ROW_GROUP:
            self._flush(_ROW_GROUP)

    def _flush(self, n: int) -> None:
        assert self.writer is not None
        table = pa.concat_tables(self.pending)
        self.writer.write_table(table.slice(0, n).combine_chunks(), row_group_size=n)
        rest = table.slice(n)
        self.pending = [rest] if rest.num_rows else []
        self.rows = rest.num_rows

    def close(self, empty: pd.DataFrame) -> Path:
        """Finish the file; ``empty`` (no rows, the table's columns) is written if nothing was appended."""
        if self.writer is None:
            empty.to_parquet(self.path, index=False)
            return self.path
        if self.rows:
            self._flush(self.rows)
        self.writer.close()
        return self.path


def _stream_stations(obs: Observations, plan: StationPlan, folder: Path) -> list[Path]:
    """Simulate and write the station records batch by batch (memory bounded by the batch).

    Fills in ``obs.station_faults`` and ``obs.station_summary`` on the way.
    """
    ismn = obs.stations[obs.stations["ismn"]].head(_ISMN_MAX_STATIONS)["station_id"]
    records = _ParquetStream(folder / "observations.parquet")
    truth = _ParquetStream(folder / "station_truth.parquet")
    summary = StationSummary.empty(len(plan.sensors), plan.times.size)
    labels: list[dict[str, Any]] = []
    ismn_parts: list[pd.DataFrame] = []
    nothing = StationBatch(0, [], [], [])
    empty_rec, empty_truth = nothing.observations(plan.sensors), nothing.truth_table(plan.sensors, plan.times)
    for batch in station_batches(plan, batch=_STATION_BATCH):
        rec = batch.observations(plan.sensors)
        tru = batch.truth_table(plan.sensors, plan.times)
        summary.add(rec, tru, plan.sensors, plan.times.values[0], batch.first, len(batch.truth))
        records.append(rec)
        truth.append(tru)
        ismn_parts.append(rec[rec["station_id"].isin(ismn)])
        labels += batch.labels
    obs.station_faults = faults_frame(labels)
    obs.station_summary = summary
    written = _write_csv({"stations.csv": obs.stations, "faults.csv": obs.station_faults,
                          "sensors.csv": obs.station_sensors}, folder)
    written += [records.close(empty_rec), truth.close(empty_truth)]
    ismn_rec = pd.concat(ismn_parts, ignore_index=True) if ismn_parts else empty_rec
    written += _write_ismn(obs.stations, obs.station_sensors, ismn_rec, folder / "ismn")
    return written


def _write_ismn(stations: pd.DataFrame, sensor_table: pd.DataFrame, records: pd.DataFrame,
                folder: Path) -> list[Path]:
    """ISMN ``header_values`` files of the stations marked ``ismn`` (soil moisture and ``ts`` in °C).

    ``records`` must hold (at least) every raw record of those stations.
    """
    st = stations[stations["ismn"]].head(_ISMN_MAX_STATIONS)
    if st.empty:
        return []
    rec = records[records["station_id"].isin(st["station_id"])]
    sensors = sensor_table.set_index(["station_id", "variable", "depth_from", "depth_to"])["sensor"]
    written = []
    stamps: dict[int, str] = {}
    for (sid, var, top, bottom), grp in rec.groupby(
            ["station_id", "variable", "depth_from", "depth_to"], observed=True, sort=True):
        meta = st[st["station_id"] == sid].iloc[0]
        sensor = str(sensors.loc[(sid, var, float(top), float(bottom))])
        times = grp["time"].to_numpy()
        keys = times.astype("int64").tolist()
        for k in set(keys) - stamps.keys():  # format each distinct time stamp once
            stamps[k] = pd.Timestamp(k).strftime("%Y/%m/%d %H:%M")
        values = grp["value"].to_numpy("float64")
        digits = 2 if var == "st" else 4
        if var == "st":
            values = values - 273.15
        flags = grp["flag"].astype(str).tolist()
        lines = [f"{stamps[k]} {v:.{digits}f} {f} M"
                 for k, v, f in zip(keys, values.tolist(), flags, strict=True)]
        net = str(meta["network"])
        ismn_var = "ts" if var == "st" else "sm"
        start = pd.Timestamp(times[0]).strftime("%Y%m%d")
        end = pd.Timestamp(times[-1]).strftime("%Y%m%d")
        name = (f"{net}_{net}_{sid}_{ismn_var}_{top / 100:.6f}_{bottom / 100:.6f}_{sensor}_{start}_{end}.stm")
        header = (f"{net:<10} {net:<10} {sid:<15} {meta['lat']:9.5f} {meta['lon']:9.5f} "
                  f"{meta['elevation']:21.1f} {top / 100:.4f} {bottom / 100:.4f} {sensor.replace('-', ' ')}")
        path = folder / net / str(sid) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n" + "\n".join(lines) + "\n")
        written.append(path)
    return written


# ====================================================================== stores
def _write_stores(world: Any, folder: Path) -> list[Path]:
    written = []
    for name in ("static", "forcing", "truth"):
        path = folder / f"{name}.zarr"
        if path.exists():
            logger.info("keeping %s written by make_world", path)
            written.append(path)
            continue
        ds = getattr(world, name)
        written.append(write_zarr(ds, path, attrs=_fixed_attrs(world, f"soilfuse synthetic twin: {name}")))
    return written


# ====================================================================== public API
def _grid_info(grid: Grid) -> dict[str, Any]:
    return {"crs": grid.crs.to_string(), "shape": list(grid.shape),
            "resolution": [float(v) for v in grid.resolution], "bounds": [float(v) for v in grid.bounds]}


def write_twin(
    world: Any,
    obs: Observations,
    out: str | Path,
    *,
    figures: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write every file of a twin into ``out`` (atomically, through ``out.partial``).

    Parameters
    ----------
    world : soilfuse.twin.World
        The world.
    obs : Observations
        Its observations (:func:`soilfuse.twin.observe`).
    out : path-like
        Target folder; must not exist unless ``overwrite``. Stores already present
        in ``<out>.partial`` (written there by ``make_world(config, out=...)``) are
        kept rather than rewritten.
    figures : mapping, optional
        Error figures to store in ``twin.json``; computed with
        :func:`soilfuse.twin.observe.evaluate` when None.
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    dict of str to pathlib.Path
        Every file (Zarr stores as one entry) by its path relative to ``out``.

    Raises
    ------
    ConfigError
        If ``out`` exists and ``overwrite`` is False.
    """
    final = Path(out)
    if final.exists() and not overwrite:
        msg = f"Twin folder {final} already exists; remove it, choose another folder or pass overwrite=True."
        raise ConfigError(msg)
    partial = final.with_name(final.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    files = _write_files(world, obs, partial)
    return _finish(world, obs, files, partial, final, evaluate(world, obs) if figures is None else figures)


def _write_files(world: Any, obs: Observations, partial: Path) -> list[Path]:
    """Write every data file of the twin into ``partial``; return their paths."""
    steps = (
        ("static", lambda: _write_static(world, partial / "static")),
        ("reanalysis, cci and smap", lambda: _write_grids(world, obs, partial)),
        ("modis", lambda: _write_modis(obs.modis, partial / "modis")),
        ("stations", lambda: _write_stations(obs, partial / "stations")),
        ("stores", lambda: _write_stores(world, partial)),
    )
    files: list[Path] = []
    for label, step in steps:
        t0 = time.perf_counter()
        files += step()
        logger.info("wrote %s files in %.1f s", label, time.perf_counter() - t0)
    return files


def _finish(world: Any, obs: Observations, files: list[Path], partial: Path, final: Path,
            figures: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``twin.json`` into ``partial`` and rename it to ``final``."""
    cfg = world.config
    rel = sorted(p.relative_to(partial).as_posix() for p in files)
    manifest = {
        "format": "soilfuse-twin/1",
        "config": dataclasses.asdict(cfg),
        "seed": int(cfg.seed),
        "grid": _grid_info(cfg.grid),
        "grids": {k: _grid_info(Grid.from_dataset(v)) for k, v in
                  (("reanalysis", obs.reanalysis), ("cci", obs.cci), ("smap", obs.smap))},
        "files": rel,
        "figures": figures,
    }
    (partial / "twin.json").write_text(json.dumps(manifest, indent=1, default=_json_default) + "\n")
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    logger.info("twin written to %s (%d files)", final, len(rel) + 1)
    return {**{r: final / r for r in rel}, "twin.json": final / "twin.json"}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    msg = f"Cannot store {type(value).__name__} in twin.json."
    raise TypeError(msg)


def generate(
    size: str = "small",
    out: str | Path = "twin",
    *,
    seed: int = 0,
    region: Region | None = None,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Build a twin world, observe it, log the error figures and write every file.

    Parameters
    ----------
    size : {"small", "demo", "bench"}
        Preset (see :data:`soilfuse.twin.config.SIZES`).
    out : path-like
        Target folder (created atomically through ``<out>.partial``).
    seed : int
        Random seed; the same seed gives byte-identical files.
    region : tuple of float, optional
        ``(west, east, south, north)`` in degrees; the preset's by default.
    start, end : str, optional
        First and last day (ISO dates); the preset's by default.
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    dict of str to pathlib.Path
        Every file written, by path relative to ``out`` (see :func:`write_twin`).

    Raises
    ------
    ConfigError
        If the size or an override is invalid, or ``out`` exists and ``overwrite``
        is False.
    """
    final = Path(out)
    if final.exists() and not overwrite:
        msg = f"Twin folder {final} already exists; remove it, choose another folder or pass overwrite=True."
        raise ConfigError(msg)
    config = TwinConfig.from_size(size, seed=seed, region=region, start=start, end=end)
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    timings: dict[str, tuple[float, float]] = {}

    def timed(label: str, func: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        timings[label] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result

    world = timed("world", lambda: make_world(config) if config.size == "small"
                  else make_world(config, out=partial))
    # Station records and the coarse products are simulated while they are written (memory
    # bounded by a batch of sensors or a block of days), so the figures, which score them,
    # come after the files.
    obs = timed("observe", lambda: observe(world, stream_stations=True, stream_grids=True))
    written = timed("write", lambda: _write_files(world, obs, partial))
    figures = timed("evaluate", lambda: evaluate(world, obs))
    log_figures(figures)
    files = _finish(world, obs, written, partial, final, figures)
    logger.info("twin %s (seed %d) timings, wall / CPU seconds: %s", size, seed,
                ", ".join(f"{k} {w:.1f} / {c:.1f}" for k, (w, c) in timings.items()))
    return files


def log_figures(figures: Mapping[str, Any]) -> None:
    """Log the error figures of every observing system at INFO level, one line each."""
    st = figures["stations"]
    logger.info("stations: %d (%s), %d sensors, %d records, missing %.3f, east/west halves %d/%d",
                st["n_stations"], st["by_network"], st["n_sensors"], st["n_records"],
                st["missing_fraction"], st["east_half"], st["west_half"])
    logger.info("station faults: %s", st["faults"])
    for var in ("sm", "st"):
        s = st[f"daily_{var}"]
        logger.info("stations daily %s vs cell truth: rmse %.4g bias %.4g r %.3f", var, s["rmse"], s["bias"], s["r"])
    for name, s in figures["reanalysis"].items():
        logger.info("reanalysis %s: rmse %.4g bias %.4g r %.3f", name, s["rmse"], s["bias"], s["r"])
    for key in ("cci", "smap"):
        s = figures[key]
        logger.info("%s: rmse %.4g bias %.4g r %.3f valid %.3f", key, s["rmse"], s["bias"], s["r"],
                    s["valid_fraction"])
    logger.info("modis: %s", dict(figures["modis"]))
