"""Static maps of the twin: terrain, climate, land cover, soil texture and soil properties.

Every map is a pointwise function of the cell coordinates (plus smooth random fields
from :mod:`soilfuse.twin.fields`), so any tile can be computed alone and equals the
same cells of the whole domain bit for bit. Positions are expressed relative to the
region (``u`` runs 0 → 1 west → east), so every region gets the same landscape:

* **terrain** - a plateau (~3.3 km) in the west whose wobbly edge (at ``u ≈ 0.3``)
  falls over ~50 km of escarpment to a belt of hills and to plains (~0.3-0.6 km) in
  the east; multi-octave roughness strongest on the escarpment. Slope and aspect
  come from centred differences with metric spacing on the lat-lon grid.
* **climate** - mean annual air temperature from latitude and a 6.5 K/km lapse rate;
  seasonal amplitude growing poleward and inland (west); mean annual precipitation
  wetter in the east (1.3 m), drying westward with distance, enhanced on the
  escarpment and halved in the plateau's rain shadow; climate zones from the
  aridity index (precipitation over a temperature-based potential evaporation) and
  cold highlands (mean annual temperature < 3 °C).
* **land cover** (codes of ``docs/conventions.md``) from elevation, slope and
  climate: water a few % in low flat areas, urban on the plains, barren where arid or
  very cold, cropland on gentle warm land, forest on wet slopes, grassland elsewhere.
* **soil texture** (sand/silt/clay %, summing to 100) at 0-5, 5-15, 15-30, 30-60 and
  60-100 cm, an additive log-ratio transform of correlated random fields with
  land-form means (silty-clayey alluvium on the plains, sandier colluvium on slopes,
  silty plateau soils) and clay increasing with depth; organic matter ~1-3 % at the
  top decreasing with depth; hydraulic properties by Saxton & Rawls (2006).

Usage
-----
>>> from soilfuse.twin.config import TwinConfig
>>> cfg = TwinConfig.from_size("small")
>>> maps = static_maps(cfg, slice(0, 64), slice(0, 64))
>>> maps["sand"].shape, maps["elevation"].shape
((5, 64, 64), (64, 64))
>>> bool(abs(maps["sand"] + maps["silt"] + maps["clay"] - 100).max() < 1e-9)
True
"""

from __future__ import annotations

import math

import numpy as np

from soilfuse._typing import FloatArray
from soilfuse.grid import Grid
from soilfuse.twin.config import TwinConfig
from soilfuse.twin.fields import KM_PER_DEGREE, smooth_field
from soilfuse.twin.pedotransfer import saxton_rawls

__all__ = [
    "LAPSE_RATE",
    "TEXTURE_BOTTOMS_CM",
    "TEXTURE_TOPS_CM",
    "cell_centres",
    "climate_zone",
    "mean_annual_temperature",
    "static_maps",
]

#: Soil texture depth intervals (cm), SoilGrids-like.
TEXTURE_TOPS_CM = (0.0, 5.0, 15.0, 30.0, 60.0)
TEXTURE_BOTTOMS_CM = (5.0, 15.0, 30.0, 60.0, 100.0)

#: Environmental lapse rate of air temperature, K m-1.
LAPSE_RATE = 6.5e-3

_EARTH_RADIUS_M = KM_PER_DEGREE * 1000.0 * 180.0 / math.pi
_PLATEAU_EDGE = 0.30  # mean position of the plateau edge, fraction of the width
_HILL_BELT = 0.52  # centre of the hill belt, fraction of the width
_OM_DEPTH_FACTOR = (1.0, 0.85, 0.7, 0.55, 0.45)


def cell_centres(grid: Grid, rows: slice, cols: slice, *, halo: int = 0) -> tuple[FloatArray, FloatArray]:
    """Longitudes and latitudes of the cell centres of a tile (plus ``halo`` cells each side).

    Uses the same arithmetic as :attr:`soilfuse.grid.Grid.x`/``y`` so interior values
    are identical to the grid's coordinates.
    """
    t = grid.transform
    lon = t.c + (np.arange(cols.start - halo, cols.stop + halo) + 0.5) * t.a
    lat = t.f + (np.arange(rows.start - halo, rows.stop + halo) + 0.5) * t.e
    return lon, lat


class _Frame:
    """Region-relative coordinates and lengths of one domain."""

    def __init__(self, config: TwinConfig) -> None:
        self.config = config
        self.region = config.region
        west, east, south, north = config.region
        self.west, self.east, self.south, self.north = west, east, south, north
        lat_c = math.radians(0.5 * (south + north))
        self.width_km = (east - west) * KM_PER_DEGREE * math.cos(lat_c)
        self.cell_km = config.resolution * KM_PER_DEGREE * math.cos(lat_c)

    def u(self, lon: FloatArray) -> FloatArray:
        return ((lon - self.west) / (self.east - self.west))[None, :]

    def field(self, name: str, scale_km: float, lon: FloatArray, lat: FloatArray) -> FloatArray:
        return smooth_field(self.config.seed, name, self.region, scale_km, lon, lat)

    def fractal(self, name: str, scales_km: tuple[float, ...], lon: FloatArray, lat: FloatArray) -> FloatArray:
        """Sum of octaves (amplitude ∝ scale^0.8), dropping octaves finer than 2 cells."""
        amps = [s**0.8 for s in scales_km]
        norm = math.sqrt(sum(a * a for a in amps))
        out = np.zeros((lat.size, lon.size))
        for k, (scale, amp) in enumerate(zip(scales_km, amps, strict=True)):
            if scale >= 2.0 * self.cell_km:
                out = out + (amp / norm) * self.field(f"{name}_{k}", scale, lon, lat)
        return out

    def categorical_scale(self, scale_km: float) -> float:
        return max(scale_km, 2.0 * self.cell_km)


def _landform(frame: _Frame, lon: FloatArray, lat: FloatArray) -> dict[str, FloatArray]:
    """Plateau, escarpment and hill-belt weights (0..1) and the signed edge distance."""
    u = frame.u(lon)
    wobble = frame.field("dem_edge", max(frame.width_km / 3.0, 80.0), lon, lat)
    width = max(0.06, 25.0 / frame.width_km)
    s = (u - (_PLATEAU_EDGE + 0.04 * wobble)) / width
    return {
        "s": s,
        "plateau": 0.5 * (1.0 - np.tanh(2.0 * s)),
        "escarpment": 1.0 / np.cosh(2.0 * s) ** 2,
        "belt": np.exp(-(((u - _HILL_BELT) / 0.13) ** 2)) * np.ones_like(s),
    }


def _elevation(frame: _Frame, lon: FloatArray, lat: FloatArray) -> FloatArray:
    form = _landform(frame, lon, lat)
    u = frame.u(lon)
    h_plateau = 3300.0 + 350.0 * frame.field("dem_plateau", max(frame.width_km / 4.0, 60.0), lon, lat)
    h_plain = 300.0 + 350.0 * (1.0 - u) + 40.0 * frame.field("dem_plain", 40.0, lon, lat)
    base = h_plain + form["plateau"] * (h_plateau - h_plain)
    amp = 40.0 + 260.0 * form["belt"] + 180.0 * form["plateau"] + 420.0 * form["escarpment"]
    rough = frame.fractal("dem_rough", (36.0, 14.0, 6.0), lon, lat)
    return np.maximum(base + amp * rough, 20.0)


def _slope_aspect(z: FloatArray, lat: FloatArray, resolution: float) -> tuple[FloatArray, FloatArray]:
    """Slope and aspect (degrees, aspect clockwise from north, downslope) of the interior of ``z``.

    ``z`` has one halo cell on each side; ``lat`` are the interior latitudes.
    """
    step = math.radians(resolution) * _EARTH_RADIUS_M
    dx = step * np.cos(np.radians(lat))[:, None]
    dz_east = (z[1:-1, 2:] - z[1:-1, :-2]) / (2.0 * dx)
    dz_north = (z[:-2, 1:-1] - z[2:, 1:-1]) / (2.0 * step)
    slope = np.degrees(np.arctan(np.hypot(dz_east, dz_north)))
    aspect = np.mod(np.degrees(np.arctan2(-dz_east, -dz_north)), 360.0)
    return slope, np.where(slope > 0.0, aspect, 0.0)


def mean_annual_temperature(lat: FloatArray, elevation: FloatArray) -> FloatArray:
    """Mean annual 2 m air temperature (°C) from latitude and a 6.5 K/km lapse rate."""
    return 27.0 - 0.55 * np.maximum(np.abs(lat) - 20.0, 0.0) - LAPSE_RATE * elevation


def climate_zone(mat: FloatArray, map_mm: FloatArray) -> FloatArray:
    """Climate-zone codes: 1 arid, 2 semi-arid, 3 temperate, 4 humid, 5 cold.

    Cold where the mean annual temperature ``mat`` (°C) is below 3 °C; otherwise by the
    aridity index ``map / pet`` with ``pet = max(350, 700 + 35 mat)`` mm (thresholds 0.2,
    0.5, 0.9).
    """
    aridity = map_mm / np.maximum(350.0, 700.0 + 35.0 * mat)
    zone = np.select([aridity < 0.2, aridity < 0.5, aridity < 0.9], [1, 2, 3], default=4)
    return np.where(mat < 3.0, 5, zone).astype("int8")


def _texture(
    frame: _Frame, lon: FloatArray, lat: FloatArray, form: dict[str, FloatArray], map_mm: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Sand, silt, clay (%) of shape ``(5, ny, nx)`` by an additive log-ratio transform."""
    u = frame.u(lon)
    alluvial = np.clip((u - 0.55) / 0.3, 0.0, 1.0) * (1.0 - form["plateau"])
    colluvial = np.maximum(form["escarpment"], 0.7 * form["belt"])
    arid = np.clip((500.0 - map_mm) / 300.0, 0.0, 1.0)
    mu_sand = 0.7 - 0.7 * alluvial + 0.6 * colluvial + 0.8 * arid
    mu_silt = 0.7 + 0.1 * alluvial + 0.5 * form["plateau"] - 0.2 * colluvial
    g_sand = frame.field("tex_sand", 30.0, lon, lat)
    g_silt = frame.field("tex_silt", 30.0, lon, lat)
    sand, silt, clay = [], [], []
    for k in range(len(TEXTURE_TOPS_CM)):
        h_sand = frame.field(f"tex_sand_{k}", 15.0, lon, lat)
        h_silt = frame.field(f"tex_silt_{k}", 15.0, lon, lat)
        a_sand = np.clip(mu_sand - 0.12 * k + 0.45 * (0.85 * g_sand + 0.53 * h_sand), -0.8, 3.0)
        a_silt = np.clip(mu_silt - 0.10 * k + 0.40 * (0.85 * g_silt + 0.53 * h_silt), -0.8, 2.5)
        e_sand, e_silt = np.exp(a_sand), np.exp(a_silt)
        denom = 1.0 + e_sand + e_silt
        s = 100.0 * e_sand / denom
        c = 100.0 / denom
        sand.append(s)
        clay.append(c)
        silt.append(100.0 - s - c)
    return np.stack(sand), np.stack(silt), np.stack(clay)


def _land_cover(
    frame: _Frame,
    lon: FloatArray,
    lat: FloatArray,
    form: dict[str, FloatArray],
    slope: FloatArray,
    mat: FloatArray,
    map_mm: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Land-cover codes and water fraction."""
    u = frame.u(lon)
    n_lc = frame.field("lc_noise", frame.categorical_scale(12.0), lon, lat)
    n_water = frame.field("lc_water", frame.categorical_scale(10.0), lon, lat)
    n_urban = frame.field("lc_urban", frame.categorical_scale(8.0), lon, lat)
    lowland = form["plateau"] < 0.2
    flat = lowland & (slope < 2.5)
    water_fraction = np.where(flat, np.clip(0.5 + 0.8 * (n_water - 1.7), 0.0, 1.0), 0.0)
    water = water_fraction >= 0.5
    urban = flat & (u > 0.55) & (n_urban > 2.0) & ~water
    barren = (map_mm < 250.0) | (mat < -3.0 + 1.5 * n_lc) | (slope > 25.0)
    crop = (mat > 7.0) & (map_mm > 450.0) & (slope < 5.0) & (n_lc < 0.6)
    forest = (map_mm > 650.0) & (mat > 2.0) & ((slope > 5.0) | (n_lc > 0.6))
    code = np.select([water, urban, barren, crop, forest], [5, 6, 4, 3, 1], default=2).astype("int8")
    return code, water_fraction


def static_maps(config: TwinConfig, rows: slice, cols: slice) -> dict[str, FloatArray]:
    """All static maps of one tile as numpy arrays.

    Parameters
    ----------
    config : TwinConfig
        The world.
    rows, cols : slice
        Tile window on ``config.grid`` (steps of 1).

    Returns
    -------
    dict of str to numpy.ndarray
        ``(ny, nx)``: ``elevation`` (m), ``slope``, ``aspect`` (degree), ``land_cover``,
        ``climate_zone`` (int8 codes), ``water_fraction`` (1), ``mean_annual_temperature``
        (°C), ``temperature_amplitude`` (K, half the annual range),
        ``mean_annual_precipitation`` (mm year-1), ``monsoon`` (1, strength of the
        summer rainfall maximum).
        ``(5, ny, nx)`` per texture interval: ``sand``, ``silt``, ``clay``,
        ``organic_matter`` (%), ``porosity``, ``field_capacity``, ``wilting_point``,
        ``residual`` (m3 m-3), ``ksat`` (mm h-1), ``b`` (1), ``bulk_density`` (g cm-3).
    """
    frame = _Frame(config)
    grid = config.grid
    lon_h, lat_h = cell_centres(grid, rows, cols, halo=1)
    lon, lat = lon_h[1:-1], lat_h[1:-1]
    z_halo = _elevation(frame, lon_h, lat_h)
    elevation = z_halo[1:-1, 1:-1]
    slope, aspect = _slope_aspect(z_halo, lat, config.resolution)
    form = _landform(frame, lon, lat)
    u = frame.u(lon)
    lat2 = lat[:, None] * np.ones_like(elevation)

    mat = mean_annual_temperature(lat2, elevation)
    amplitude = 7.0 + 0.3 * np.maximum(np.abs(lat2) - 20.0, 0.0) + 3.0 * (1.0 - u)
    dry = np.exp(-(1.0 - u) * frame.width_km / 900.0)
    shadow = 1.0 - 0.25 * (1.0 - np.tanh(2.0 * (form["s"] + 1.5)))
    orographic = 1.0 + 0.4 * form["escarpment"]
    map_mm = 1300.0 * dry * shadow * orographic * np.exp(0.15 * frame.field("map_noise", 120.0, lon, lat))
    land_cover, water_fraction = _land_cover(frame, lon, lat, form, slope, mat, map_mm)

    sand, silt, clay = _texture(frame, lon, lat, form, map_mm)
    n_om = frame.field("organic_matter", 40.0, lon, lat)
    wet = map_mm / (map_mm + 600.0)
    om_top = np.clip(1.6 + 0.5 * n_om + 0.8 * wet - 0.02 * np.maximum(mat, 0.0), 0.8, 3.5)
    organic = np.stack([f * om_top for f in _OM_DEPTH_FACTOR])
    hyd = saxton_rawls(sand, clay, organic)

    return {
        "elevation": elevation,
        "slope": slope,
        "aspect": aspect,
        "land_cover": land_cover,
        "climate_zone": climate_zone(mat, map_mm),
        "water_fraction": water_fraction,
        "mean_annual_temperature": mat,
        "temperature_amplitude": amplitude,
        "mean_annual_precipitation": map_mm,
        "monsoon": (0.5 + 0.4 * u) * np.ones_like(elevation),
        "sand": sand,
        "silt": silt,
        "clay": clay,
        "organic_matter": organic,
        "porosity": hyd.porosity,
        "field_capacity": hyd.field_capacity,
        "wilting_point": hyd.wilting_point,
        "residual": hyd.residual,
        "ksat": hyd.ksat,
        "b": hyd.b,
        "bulk_density": hyd.bulk_density,
    }
