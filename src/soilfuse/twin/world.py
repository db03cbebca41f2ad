"""The twin world: static maps, daily forcing and physically based truth, tile by tile.

Deviation from the shared contract
----------------------------------
One ``xarray.Dataset`` cannot hold two different ``depth`` axes, so in ``truth`` the
soil temperature uses dim ``depth_st`` (coords ``depth_st``, ``depth_st_bnds``,
``layer_st``) and soil moisture dim ``depth_sm`` (``depth_sm``, ``depth_sm_bnds``,
``layer_sm``). :meth:`World.layered` returns either with the canonical ``depth``,
``depth_bnds`` and ``layer``. Static maps use ``depth`` (texture intervals). Extra
variables beyond the contract: ``static``: ``organic_matter`` (%),
``mean_annual_temperature`` (K), ``mean_annual_precipitation`` (mm year-1);
``forcing``: ``e`` and ``pev`` (actual and Priestley-Taylor potential
evapotranspiration, mm day-1, positive upward).

:func:`make_world` builds a :class:`World` from a :class:`~soilfuse.twin.config.TwinConfig`.
Every pixel column is independent given its static maps and the smooth random
weather fields, so the domain is generated in square tiles (``config.tile`` cells);
each tile runs a 90-day spin-up before ``config.start`` and then the daily physics
(see the module docstrings of :mod:`~soilfuse.twin.forcing`,
:mod:`~soilfuse.twin.soil_heat`, :mod:`~soilfuse.twin.water_balance` and
:mod:`~soilfuse.twin.surface`). Each day, in order: snow accumulation and melt; LAI
from growing-degree rate and moisture; reflectance, albedo and net shortwave from
the start-of-day surface state; Priestley-Taylor potential evaporation; the ground
surface temperature and three 8-hour implicit heat-conduction sub-steps; frozen
layers; the water balance. Daily soil moisture is the mean of the start- and
end-of-day states; reflectance, albedo and skin temperatures describe the morning
(start-of-day) surface, i.e. the day's rain is taken to fall after the ~10:30
overpass.

With ``out=None`` the tiles are assembled in memory (fine for ``small``). With
``out=path`` every tile is written, in blocks of days, straight into
``static.zarr``, ``forcing.zarr`` and ``truth.zarr`` under ``path`` and the returned
World opens them lazily with Dask; peak memory is bounded by the tile size and the
number of Dask workers, not by the domain. Tiles run as Dask tasks (threads by
default; set ``dask.config.set(scheduler=...)`` to change). Output is bit-identical
for the same config whatever the tiling.

Usage
-----
>>> from soilfuse.twin.config import TwinConfig
>>> world = make_world(TwinConfig.from_size("small", end="2019-03-10"))
>>> world.truth["st"].dims
('time', 'depth_st', 'y', 'x')
>>> world.layered("sm")["layer"].values[:3].tolist()
['0-5cm', '0-10cm', '10-20cm']
>>> float(world.truth["sm"].min()) > 0.0
True
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from soilfuse._typing import FloatArray
from soilfuse.exceptions import ConfigError, MissingVariableError
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords
from soilfuse.twin.config import TwinConfig
from soilfuse.twin.forcing import STEFAN_BOLTZMANN, T_FREEZE, Climate, WeatherFields, daily_weather, snow_step
from soilfuse.twin.pedotransfer import ThermalParameters, saxton_rawls
from soilfuse.twin.soil_heat import NODE_DEPTHS_M, OUTPUT_DEPTHS_CM, conduct, node_index, surface_temperature
from soilfuse.twin.static import TEXTURE_BOTTOMS_CM, TEXTURE_TOPS_CM, cell_centres, static_maps
from soilfuse.twin.surface import (
    Phenology,
    SurfaceParameters,
    broadband_albedo,
    reflectance,
    skin_temperature,
    vegetation_indices,
)
from soilfuse.twin.water_balance import (
    LAYER_BOTTOMS_CM,
    LAYER_TOPS_CM,
    REPORT_BOTTOMS_CM,
    REPORT_TOPS_CM,
    THICKNESS_MM,
    SoilLayers,
    WaterFluxes,
    layer_sum,
    priestley_taylor,
    report_layers,
    root_fractions,
    water_step,
)
from soilfuse.variables import VARIABLES

__all__ = ["SPINUP_DAYS", "World", "make_world", "simulate_tile"]

logger = logging.getLogger(__name__)

#: Days simulated before ``config.start`` and discarded.
SPINUP_DAYS = 90
#: Zarr chunk length along time, days.
TIME_CHUNK = 32
_HEAT_SUBSTEPS = 3
_DEEP_OFFSET = 1.0  # deep soil temperature above mean annual air temperature, K
_BLOCK_BYTES = 64e6  # target memory of one block of outputs
_IN_MEMORY_LIMIT = 3e9  # bytes; larger worlds need out=path
_BAND_NAMES = tuple(f"refl_b{b}" for b in range(1, 8))
_COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")

_STATIC_2D = ("elevation", "slope", "aspect", "land_cover", "climate_zone", "water_fraction",
              "mean_annual_temperature", "mean_annual_precipitation")  # fmt: skip
_STATIC_3D = ("sand", "silt", "clay", "organic_matter", "porosity", "field_capacity", "wilting_point",
              "residual", "ksat")  # fmt: skip
_FORCING = ("t2m", "tp", "ssrd", "ssr", "strd", "u10", "v10", "wind10", "rh", "sd", "lai",
            "cloud_fraction", "e", "pev")  # fmt: skip
_TRUTH_2D = ("lst_day", "lst_night", *_BAND_NAMES, "ndvi", "evi", "albedo", "lai", "frozen")
_EXTRA_ATTRS: dict[str, dict[str, Any]] = {
    "water_fraction": {"units": "1", "long_name": "open-water fraction of the cell"},
    "organic_matter": {"units": "%", "long_name": "soil organic matter content"},
    "mean_annual_temperature": {"units": "K", "long_name": "mean annual 2 m air temperature"},
    "mean_annual_precipitation": {"units": "mm year-1", "long_name": "mean annual precipitation"},
    "porosity": {"units": "m3 m-3", "long_name": "saturated water content (Saxton & Rawls 2006)"},
    "field_capacity": {"units": "m3 m-3", "long_name": "water content at 33 kPa (Saxton & Rawls 2006)"},
    "wilting_point": {"units": "m3 m-3", "long_name": "water content at 1500 kPa (Saxton & Rawls 2006)"},
    "residual": {"units": "m3 m-3", "long_name": "residual (air-dry) water content, 0.4 x wilting point"},
    "ksat": {"units": "mm h-1", "long_name": "saturated hydraulic conductivity (Saxton & Rawls 2006)"},
    "rh": {"units": "1", "long_name": "daily mean 2 m relative humidity"},
    "cloud_fraction": {"units": "1", "long_name": "daily mean cloud fraction"},
    "frozen": {"long_name": "surface (0-5 cm) soil frozen"},
}


@dataclass
class World:
    """A synthetic world that knows the truth.

    Attributes
    ----------
    config : TwinConfig
        What was generated.
    static : xarray.Dataset
        ``(y, x)`` and ``(depth, y, x)`` static maps (texture intervals on ``depth``).
    forcing : xarray.Dataset
        ``(time, y, x)`` daily forcing in canonical names and units.
    truth : xarray.Dataset
        ``st (time, depth_st, y, x)`` K, ``sm (time, depth_sm, y, x)`` m3 m-3 and the
        ``(time, y, x)`` surface truth (skin temperatures, reflectances, indices,
        albedo, LAI, frozen).
    stores : dict of str to Path
        ``static``, ``forcing``, ``truth`` Zarr stores when generated with ``out=``;
        empty for an in-memory world.
    """

    config: TwinConfig
    static: xr.Dataset
    forcing: xr.Dataset
    truth: xr.Dataset
    stores: dict[str, Path] = field(default_factory=dict)

    def layered(self, name: str) -> xr.Dataset:
        """Truth variable ``"st"`` or ``"sm"`` with canonical ``depth``, ``depth_bnds`` and ``layer``.

        Raises
        ------
        MissingVariableError
            If ``name`` is not a layered truth variable.
        """
        if name not in ("st", "sm"):
            msg = f"World.layered takes 'st' or 'sm'; got {name!r}."
            raise MissingVariableError(msg)
        dim = f"depth_{name}"
        ds = self.truth[[name]].assign_coords({f"{dim}_bnds": self.truth[f"{dim}_bnds"]})
        keep = (dim, f"{dim}_bnds", f"layer_{name}")
        ds = ds.drop_vars([c for c in map(str, ds.coords) if c.startswith(("depth_", "layer_")) and c not in keep])
        ds = ds.rename({dim: "depth", f"{dim}_bnds": "depth_bnds", f"layer_{name}": "layer"})
        ds["depth"].attrs["bounds"] = "depth_bnds"
        return ds


# ---------------------------------------------------------------------- column physics
def _overlap(tops: tuple[float, ...], bottoms: tuple[float, ...]) -> FloatArray:
    """Fraction of each computed layer lying in each texture interval, ``(layers, intervals)``."""
    w = np.zeros((len(tops), len(TEXTURE_TOPS_CM)))
    for i, (t, b) in enumerate(zip(tops, bottoms, strict=True)):
        for k, (tt, tb) in enumerate(zip(TEXTURE_TOPS_CM, TEXTURE_BOTTOMS_CM, strict=True)):
            w[i, k] = max(0.0, min(b, tb) - max(t, tt)) / (b - t)
    return w


def _weighted(values: FloatArray, weights: FloatArray) -> FloatArray:
    """``sum_k weights[i, k] values[k]`` term by term in a fixed order, ``(layers, pixels)``."""
    out = []
    for row in weights:
        terms = [row[k] * values[k] for k in range(row.size) if row[k] > 0.0]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        out.append(total)
    return np.stack(out)


def _linear(points: FloatArray, at: FloatArray) -> tuple[Any, FloatArray]:
    """Index of the lower neighbour and weight of the upper one to interpolate from ``points`` to ``at``."""
    lo = np.clip(np.searchsorted(points, at, side="right") - 1, 0, points.size - 2)
    w = np.clip((at - points[lo]) / (points[lo + 1] - points[lo]), 0.0, 1.0)
    return lo, w[:, None]


class _Column:
    """Static column parameters of a tile's pixels and the daily physics step."""

    def __init__(self, maps: dict[str, FloatArray], clim: Climate) -> None:
        n = maps["elevation"].size
        flat = {k: maps[k].reshape(maps[k].shape[0], n) for k in ("sand", "clay", "organic_matter",
                                                                     "porosity", "bulk_density")}
        w = _overlap(LAYER_TOPS_CM, LAYER_BOTTOMS_CM)
        hyd = saxton_rawls(_weighted(flat["sand"], w), _weighted(flat["clay"], w), _weighted(flat["organic_matter"], w))
        self.soil = SoilLayers.from_properties(hyd, n)
        interval = np.clip(np.searchsorted(np.array(TEXTURE_BOTTOMS_CM), NODE_DEPTHS_M * 100.0, side="right"),
                           0, len(TEXTURE_TOPS_CM) - 1)
        self.thermal = ThermalParameters.from_soil(
            flat["porosity"][interval], flat["sand"][interval], flat["bulk_density"][interval]
        )
        mids = 0.5 * (np.array(LAYER_TOPS_CM) + np.array(LAYER_BOTTOMS_CM))
        self._to_nodes = _linear(mids, NODE_DEPTHS_M * 100.0)
        self._to_layers = _linear(NODE_DEPTHS_M * 100.0, mids)
        code = maps["land_cover"].ravel()
        self.roots = root_fractions(code)
        self.surface = SurfaceParameters.from_maps(maps)
        self.open_water = code == 5
        self.infiltration = 1.0 - self.surface.sealed  # sealed ground does not infiltrate
        self.clim = clim
        self.t_deep = clim.mat + T_FREEZE + _DEEP_OFFSET
        self._surface_nodes = (node_index(0.0), node_index(5.0))
        self._outputs = [node_index(d) for d in OUTPUT_DEPTHS_CM]

    def initial_state(self, doy0: float) -> dict[str, Any]:
        """Soil temperature from the analytic annual wave, moisture from climate wetness."""
        omega = 2.0 * np.pi / 365.25
        z = NODE_DEPTHS_M[:, None]
        damping = 2.0  # m, a typical annual damping depth
        phase = omega * (doy0 - 197.6) - z / damping
        temp = self.t_deep + self.clim.amplitude * np.exp(-z / damping) * np.cos(phase)
        wet = self.clim.map_mm / (self.clim.map_mm + 600.0)
        frac = np.clip(0.25 + 0.6 * wet, 0.3, 0.85)
        theta = self.soil.wilting_point + frac * (self.soil.field_capacity - self.soil.wilting_point)
        theta = np.where(self.open_water, self.soil.porosity, theta)
        t_recent = self.clim.seasonal_temperature(np.array([doy0 - 10.0]))[0]
        return {"temp": temp, "theta": theta, "swe": np.zeros(theta.shape[1]),
                "phenology": Phenology(self.surface, t_recent)}

    def availability(self, theta: FloatArray) -> FloatArray:
        """Root-weighted plant water availability (0 wilting .. 1 unstressed)."""
        return layer_sum(self.roots * self.soil.availability(theta))

    def step(self, state: dict[str, Any], day: dict[str, FloatArray]) -> tuple[dict[str, Any], WaterFluxes]:
        """One day of physics; updates ``state`` in place and returns the day's outputs and fluxes."""
        s, th = self.soil, self.thermal
        theta, temp = state["theta"], state["temp"]
        t2m, strd = day["t2m"], day["strd"]
        swe, rain, melt = snow_step(state["swe"], day["tp"], t2m)
        avail = self.availability(theta)
        lai = state["phenology"].step(t2m, avail)
        wet_sat = np.clip((theta[0] - s.residual[0]) / (s.porosity[0] - s.residual[0]), 0.0, 1.0)
        wet_fc = np.clip((theta[0] - s.residual[0]) / (s.field_capacity[0] - s.residual[0]), 0.0, 1.0)
        refl = reflectance(self.surface, wet_sat, lai, avail, swe)
        albedo = broadband_albedo(refl)
        ssr = day["ssrd"] * (1.0 - albedo)
        t_top = surface_temperature(t2m, ssr, strd, lai, wet_fc, day["wind10"], swe, temp[1])
        rn = ssr + strd - 0.97 * STEFAN_BOLTZMANN * t_top**4
        pet = priestley_taylor(rn, t2m, self.clim.elevation)

        lo, w = self._to_nodes
        theta_nodes = (1.0 - w) * theta[lo] + w * theta[lo + 1]
        frozen_nodes = temp < T_FREEZE
        if not frozen_nodes.any():
            frozen_nodes = None
        capacity = th.capacity(theta_nodes, frozen_nodes)
        conductivity = th.conductivity(theta_nodes, frozen_nodes)
        temp, temp_mean = conduct(temp, capacity, conductivity, t_top, self.t_deep, dt=86400.0, n_sub=_HEAT_SUBSTEPS)

        lo, w = self._to_layers
        frozen_layers = ((1.0 - w) * temp_mean[lo] + w * temp_mean[lo + 1]) < T_FREEZE
        i0, i1 = self._surface_nodes
        frozen_top = 0.5 * (temp_mean[i0] + temp_mean[i1]) < T_FREEZE
        new_theta, flux = water_step(
            theta, s, rain=rain, melt=melt, pet=pet, lai=lai, roots=self.roots, frozen=frozen_layers,
            open_water=self.open_water, infiltration_factor=self.infiltration,
        )
        inertia = np.sqrt(conductivity[1] * capacity[1])
        lst_day, lst_night = skin_temperature(
            t2m, day["dtr_air"], day["sw_day"], albedo, strd, lai, wet_fc, avail, day["wind10"], inertia,
            self.surface.water_fraction, swe,
        )
        ndvi, evi = vegetation_indices(refl)
        state.update(temp=temp, theta=new_theta, swe=swe)
        out = {
            "st": temp_mean[self._outputs],
            "sm": report_layers(0.5 * (theta + new_theta)),
            "lst_day": lst_day, "lst_night": lst_night, "ndvi": ndvi, "evi": evi, "albedo": albedo,
            "lai": lai, "frozen": frozen_top, "ssr": ssr, "sd": swe * 1e-3,
            "e": flux.evapotranspiration, "pev": pet,
            **{name: refl[b] for b, name in enumerate(_BAND_NAMES)},
        }
        return out, flux


# ---------------------------------------------------------------------- tiles
def _daily_shapes(n_pixels: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape per day and dtype of every output of a tile."""
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        name: ((n_pixels,), "float32") for name in (*_FORCING, *_TRUTH_2D)
    }
    shapes["frozen"] = ((n_pixels,), "bool")
    shapes["st"] = ((len(OUTPUT_DEPTHS_CM), n_pixels), "float32")
    shapes["sm"] = ((len(REPORT_TOPS_CM), n_pixels), "float32")
    return shapes


def _block_days(n_pixels: int) -> int:
    per_day = 4.0 * n_pixels * (len(_FORCING) + len(_TRUTH_2D) + 20) + 8.0 * 12 * n_pixels
    return TIME_CHUNK * max(1, int(_BLOCK_BYTES // (per_day * TIME_CHUNK)))


Emit = Callable[[int, int, dict[str, np.ndarray]], None]


def simulate_tile(
    config: TwinConfig, rows: slice, cols: slice, emit: Emit, *, budget: dict[str, np.ndarray] | None = None
) -> dict[str, FloatArray]:
    """Run the physics of one tile and hand its outputs to ``emit`` block by block.

    Parameters
    ----------
    config : TwinConfig
        The world.
    rows, cols : slice
        Tile window on ``config.grid``.
    emit : callable
        Called as ``emit(t0, t1, arrays)`` for consecutive blocks of days ``t0 .. t1-1``
        of ``config.times`` (block starts are multiples of the Zarr time chunk);
        ``arrays`` maps every forcing and truth name to ``(days, [depth,] pixels)``.
    budget : dict, optional
        If given, filled with daily water-budget terms of shape ``(days, pixels)``
        in mm: ``rain``, ``melt``, ``snowfall``, ``inflow``, ``et``, ``runoff``,
        ``drainage``, ``soil_storage`` and ``snow_storage`` (end of day).

    Returns
    -------
    dict of str to numpy.ndarray
        The tile's static maps (:func:`soilfuse.twin.static.static_maps`).
    """
    maps = static_maps(config, rows, cols)
    lon, lat = cell_centres(config.grid, rows, cols)
    clim = Climate.from_maps(maps, lat)
    n_out = len(config.times)
    dates = pd.date_range(config.times[0] - pd.Timedelta(days=SPINUP_DAYS), periods=n_out + SPINUP_DAYS, freq="D")
    doy = dates.day_of_year.to_numpy().astype("float64")
    weather = WeatherFields(config, lon, lat, len(dates))
    column = _Column(maps, clim)
    state = column.initial_state(doy[0])
    n_pixels = clim.lat.size
    shapes = _daily_shapes(n_pixels)
    step = _block_days(n_pixels)
    if budget is not None:
        budget.update({k: np.zeros((n_out, n_pixels)) for k in (
            "rain", "melt", "snowfall", "inflow", "et", "runoff", "drainage", "soil_storage", "snow_storage")})
    blocks = [(t, min(t + step, SPINUP_DAYS)) for t in range(0, SPINUP_DAYS, step)]
    blocks += [(t, min(t + step, n_out + SPINUP_DAYS)) for t in range(SPINUP_DAYS, n_out + SPINUP_DAYS, step)]
    for t0, t1 in blocks:
        wx = daily_weather(clim, doy[t0:t1], weather.block(t0, t1))
        keep = t0 >= SPINUP_DAYS
        arrays = {k: np.empty((t1 - t0, *shape), dtype=dtype) for k, (shape, dtype) in shapes.items()} if keep else {}
        for j in range(t1 - t0):
            day = {k: v[j] for k, v in wx.items()}
            out, flux = column.step(state, day)
            if not keep:
                continue
            for name in ("t2m", "tp", "ssrd", "strd", "u10", "v10", "wind10", "rh", "cloud_fraction"):
                arrays[name][j] = day[name]
            for name, value in out.items():
                arrays[name][j] = value
            if budget is not None:
                t = t0 - SPINUP_DAYS + j
                budget["rain"][t] = flux.rain
                budget["melt"][t] = flux.melt
                budget["snowfall"][t] = day["tp"] - flux.rain
                budget["inflow"][t] = flux.inflow
                budget["et"][t] = flux.evapotranspiration
                budget["runoff"][t] = flux.runoff
                budget["drainage"][t] = flux.drainage
                budget["soil_storage"][t] = layer_sum(state["theta"] * THICKNESS_MM)
                budget["snow_storage"][t] = state["swe"]
        if keep:
            emit(t0 - SPINUP_DAYS, t1 - SPINUP_DAYS, arrays)
    return maps


# ---------------------------------------------------------------------- datasets
def _attrs(name: str) -> dict[str, Any]:
    if name in _EXTRA_ATTRS:
        return dict(_EXTRA_ATTRS[name])
    base = "lai" if name == "lai" else name
    return VARIABLES[base].attrs() if base in VARIABLES else {}


def _depth(dim: str, tops: tuple[float, ...], bottoms: tuple[float, ...]) -> dict[str, xr.DataArray]:
    coords = depth_coords(tops, bottoms)
    if dim == "depth":
        return coords
    suffix = dim.removeprefix("depth")
    return {
        dim: coords["depth"].rename({"depth": dim}).assign_attrs(bounds=f"{dim}_bnds"),
        f"{dim}_bnds": coords["depth_bnds"].rename({"depth": dim}),
        f"layer{suffix}": coords["layer"].rename({"depth": dim}),
    }


Layout = dict[str, tuple[tuple[str, ...], str]]


def _layouts(config: TwinConfig) -> dict[str, Layout]:
    """Dims and dtype of every variable of the three datasets."""
    yx: tuple[str, ...] = ("y", "x")
    tyx: tuple[str, ...] = ("time", "y", "x")
    static: Layout = {n: (yx, "float32") for n in _STATIC_2D}
    static.update({"land_cover": (yx, "int8"), "climate_zone": (yx, "int8")})
    static.update({n: (("depth", "y", "x"), "float32") for n in _STATIC_3D})
    forcing: Layout = {n: (tyx, "float32") for n in _FORCING}
    truth: Layout = {n: (tyx, "float32") for n in _TRUTH_2D}
    truth["frozen"] = (tyx, "bool")
    truth["st"] = (("time", "depth_st", "y", "x"), "float32")
    truth["sm"] = (("time", "depth_sm", "y", "x"), "float32")
    return {"static": static, "forcing": forcing, "truth": truth}


def _coords(config: TwinConfig, kind: str) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    if kind == "static":
        coords.update(_depth("depth", TEXTURE_TOPS_CM, TEXTURE_BOTTOMS_CM))
    else:
        coords["time"] = xr.DataArray(config.times.values, dims="time", attrs={"standard_name": "time"})
    if kind == "truth":
        coords.update(_depth("depth_st", OUTPUT_DEPTHS_CM, OUTPUT_DEPTHS_CM))
        coords.update(_depth("depth_sm", REPORT_TOPS_CM, REPORT_BOTTOMS_CM))
    return coords


def _dataset(config: TwinConfig, kind: str, data: dict[str, Any]) -> xr.Dataset:
    layout = _layouts(config)[kind]
    ds = xr.Dataset(
        {name: xr.Variable(dims, data[name], attrs=_attrs(name)) for name, (dims, _) in layout.items()},
        coords=_coords(config, kind),
    )
    ds.attrs = {
        "title": f"soilfuse synthetic twin: {kind}",
        "twin_size": config.size,
        "twin_seed": config.seed,
        "source": "soilfuse.twin.world.make_world",
    }
    return with_grid(ds, config.grid)


def _sizes(config: TwinConfig, dims: tuple[str, ...]) -> tuple[int, ...]:
    ny, nx = config.grid.shape
    lengths = {"time": len(config.times), "y": ny, "x": nx, "depth": len(TEXTURE_TOPS_CM),
               "depth_st": len(OUTPUT_DEPTHS_CM), "depth_sm": len(REPORT_TOPS_CM)}
    return tuple(lengths[d] for d in dims)


def _static_values(name: str, maps: dict[str, FloatArray]) -> FloatArray:
    if name == "mean_annual_temperature":
        return maps[name] + T_FREEZE
    return maps[name]


# ---------------------------------------------------------------------- make_world
def make_world(config: TwinConfig, *, out: Path | str | None = None) -> World:
    """Generate the twin world of ``config``.

    Parameters
    ----------
    config : TwinConfig
        The world to build.
    out : path, optional
        Directory for ``static.zarr``, ``forcing.zarr`` and ``truth.zarr``. Without it
        everything is built in memory.

    Returns
    -------
    World
        In-memory datasets, or lazy (Dask) datasets opened from the Zarr stores.

    Raises
    ------
    ConfigError
        If an in-memory world would exceed ~3 GB (pass ``out=``).
    """
    started = time.perf_counter()
    tiles = config.tiles()
    logger.info("twin world %s: grid %s, %d days, %d tiles", config.size, config.grid.shape,
                len(config.times), len(tiles))
    if out is None:
        world = _in_memory(config, tiles)
    else:
        world = _to_zarr(config, tiles, Path(out))
    logger.info("twin world %s generated in %.1f s", config.size, time.perf_counter() - started)
    return world


def _in_memory(config: TwinConfig, tiles: list[tuple[slice, slice]]) -> World:
    layouts = _layouts(config)
    n_bytes = sum(
        math.prod(_sizes(config, dims)) * np.dtype(dtype).itemsize
        for kind in ("forcing", "truth") for dims, dtype in layouts[kind].values()
    )
    if n_bytes > _IN_MEMORY_LIMIT:
        msg = (
            f"The {config.size!r} world needs ~{n_bytes / 1e9:.1f} GB in memory; pass "
            f"make_world(config, out=path) to generate it tile by tile into Zarr stores."
        )
        raise ConfigError(msg)
    arrays = {
        kind: {name: np.empty(_sizes(config, dims), dtype=dtype) for name, (dims, dtype) in layouts[kind].items()}
        for kind in layouts
    }

    def run(rows: slice, cols: slice) -> None:
        shape = (rows.stop - rows.start, cols.stop - cols.start)

        def emit(t0: int, t1: int, block: dict[str, np.ndarray]) -> None:
            for kind in ("forcing", "truth"):
                for name in layouts[kind]:
                    value = block[name]
                    arrays[kind][name][t0:t1, ..., rows, cols] = value.reshape(*value.shape[:-1], *shape)

        maps = simulate_tile(config, rows, cols, emit)
        for name in layouts["static"]:
            arrays["static"][name][..., rows, cols] = _static_values(name, maps)
        logger.info("twin tile rows %d-%d cols %d-%d done", rows.start, rows.stop, cols.start, cols.stop)

    dask.compute(*[dask.delayed(run)(r, c) for r, c in tiles])
    static, forcing, truth = (_dataset(config, kind, arrays[kind]) for kind in ("static", "forcing", "truth"))
    return World(config, static=static, forcing=forcing, truth=truth)


def _to_zarr(config: TwinConfig, tiles: list[tuple[slice, slice]], out: Path) -> World:
    out.mkdir(parents=True, exist_ok=True)
    layouts = _layouts(config)
    stores = {kind: out / f"{kind}.zarr" for kind in layouts}
    for kind, layout in layouts.items():
        lazy = {}
        for name, (dims, dtype) in layout.items():
            chunks = tuple({"time": TIME_CHUNK, "y": config.tile, "x": config.tile}.get(d, -1) for d in dims)
            lazy[name] = da.zeros(_sizes(config, dims), dtype=dtype, chunks=chunks)
        # Blosc-LZ4 with byte shuffle writes ~2.5x faster than Zarr's default Zstandard
        # and compresses these smooth float fields as well.
        encoding = {name: {"compressors": (_COMPRESSOR,)} for name in layout}
        _dataset(config, kind, lazy).to_zarr(
            stores[kind], mode="w", compute=False, consolidated=False, encoding=encoding
        )

    def run(rows: slice, cols: slice) -> None:
        groups = {kind: zarr.open_group(stores[kind], mode="r+") for kind in stores}
        shape = (rows.stop - rows.start, cols.stop - cols.start)

        def array(kind: str, name: str) -> zarr.Array:
            return cast(zarr.Array, groups[kind][name])

        def emit(t0: int, t1: int, block: dict[str, np.ndarray]) -> None:
            for kind in ("forcing", "truth"):
                for name in layouts[kind]:
                    value = block[name]
                    array(kind, name)[t0:t1, ..., rows, cols] = value.reshape(*value.shape[:-1], *shape)

        maps = simulate_tile(config, rows, cols, emit)
        for name, (_, dtype) in layouts["static"].items():
            array("static", name)[..., rows, cols] = _static_values(name, maps).astype(dtype)
        logger.info("twin tile rows %d-%d cols %d-%d written", rows.start, rows.stop, cols.start, cols.stop)

    dask.compute(*[dask.delayed(run)(r, c) for r, c in tiles])
    opened = {}
    for kind in ("static", "forcing", "truth"):
        ds = xr.open_zarr(stores[kind], consolidated=False)
        small = {name: ds[name].variable.load() for name in ds.coords if name not in ds.dims}
        opened[kind] = ds.assign_coords(small)
    return World(config, static=opened["static"], forcing=opened["forcing"], truth=opened["truth"], stores=stores)
