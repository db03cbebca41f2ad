"""Slope, aspect and TPI on analytic surfaces, on lat-lon and UTM grids."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pyproj import Geod
from scipy.integrate import quad

from soilfuse.exceptions import DataError
from soilfuse.grid import Grid
from soilfuse.io import with_grid
from soilfuse.preprocess import slope_aspect, tpi

UTM = Grid.projected("EPSG:32648", (500000.0, 504100.0, 3500000.0, 3504100.0), 100.0)  # 41 x 41, 100 m
LATLON = Grid.latlon((100.0, 100.41, 30.0, 30.41), 0.01)  # 41 x 41
A, F = 6378137.0, 1 / 298.257223563  # WGS 84
E2 = F * (2 - F)


def dem_on(grid: Grid, values: np.ndarray, units: str = "m") -> xr.DataArray:
    return with_grid(xr.DataArray(values, dims=("y", "x"), attrs={"units": units}, name="elevation"), grid)


def meridian_arc(lat_deg: float) -> float:
    """Meridian arc length from the equator (m), by quadrature of the meridional radius."""
    def radius(phi: float) -> float:
        return A * (1 - E2) / (1 - E2 * np.sin(phi) ** 2) ** 1.5
    return quad(radius, 0.0, np.radians(lat_deg), epsabs=1e-6)[0]


LON0 = float(LATLON.x[20])


def metric_plane_latlon(gx: float, gy: float) -> np.ndarray:
    """z = gx * (distance along the parallel from LON0) + gy * (meridian distance from 30N).

    Its east gradient is gx everywhere; its north gradient is gy − gx Δλ sin φ (Δλ in
    radians from LON0), because d(N cos φ)/dφ = −M sin φ: parallels converge.
    """
    lon, lat = np.meshgrid(LATLON.x, LATLON.y)
    n_radius = A / np.sqrt(1 - E2 * np.sin(np.radians(lat)) ** 2)
    east = n_radius * np.cos(np.radians(lat)) * np.radians(lon - LON0)
    arcs = np.array([meridian_arc(v) for v in LATLON.y]) - meridian_arc(30.0)
    return gx * east + gy * arcs[:, None]


def expected(gx: float, gy: float) -> tuple[float, float]:
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.degrees(np.arctan2(-gx, -gy)) % 360
    return slope, aspect


@pytest.mark.parametrize(("gx", "gy"), [(0.05, 0.0), (-0.03, 0.04), (0.0, -0.1), (0.2, 0.2)])
def test_slope_aspect__plane_on_utm_exact(gx: float, gy: float) -> None:
    xx, yy = np.meshgrid(UTM.x, UTM.y)
    out = slope_aspect(dem_on(UTM, 500 + gx * (xx - 500000) + gy * (yy - 3500000)))
    slope, aspect = expected(gx, gy)
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(out["slope"].values[inner], slope, atol=1e-4)
    np.testing.assert_allclose(out["aspect"].values[inner], aspect, atol=1e-4)
    assert np.isnan(out["slope"].values[0]).all() and np.isnan(out["aspect"].values[:, -1]).all()


@pytest.mark.parametrize(("gx", "gy"), [(0.05, 0.0), (-0.03, 0.04), (0.0, -0.1)])
def test_slope_aspect__metric_plane_on_latlon_exact(gx: float, gy: float) -> None:
    out = slope_aspect(dem_on(LATLON, metric_plane_latlon(gx, gy)))
    lon, lat = np.meshgrid(LATLON.x, LATLON.y)
    north = gy - gx * np.radians(lon - LON0) * np.sin(np.radians(lat))
    slope = np.degrees(np.arctan(np.hypot(gx, north)))
    aspect = np.degrees(np.arctan2(-gx, -north)) % 360
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(out["slope"].values[inner], slope[inner], atol=1e-4)
    np.testing.assert_allclose(out["aspect"].values[inner], aspect[inner], atol=1e-4)
    # on the central meridian of the plane the gradient is exactly (gx, gy)
    slope0, aspect0 = expected(gx, gy)
    np.testing.assert_allclose(out["slope"].values[1:-1, 20], slope0, atol=1e-4)
    np.testing.assert_allclose(out["aspect"].values[1:-1, 20], aspect0, atol=1e-4)


def test_slope_aspect__latlon_spacing_shrinks_with_latitude() -> None:
    # the same 1 m per 0.01 deg of longitude is steeper at 60N than at the equator
    slopes = []
    for south in (0.0, 60.0):
        grid = Grid.latlon((100.0, 100.05, south, south + 0.05), 0.01)
        lon, _ = np.meshgrid(grid.x, grid.y)
        slopes.append(float(slope_aspect(dem_on(grid, 100.0 * lon))["slope"][2, 2]))
    dx_eq = A * np.radians(0.01)
    assert slopes[0] == pytest.approx(np.degrees(np.arctan(1.0 / dx_eq)), rel=1e-3)
    assert slopes[1] / slopes[0] == pytest.approx(2.0, rel=2e-3)  # cos(60 deg) = 0.5


def test_slope_aspect__cone_on_utm_within_discretisation() -> None:
    k = 0.2
    xx, yy = np.meshgrid(UTM.x, UTM.y)
    x0, y0 = UTM.x[20], UTM.y[20]
    r = np.hypot(xx - x0, yy - y0)
    out = slope_aspect(dem_on(UTM, 1000 - k * r))
    far = r >= 5 * 100.0  # Horn's error on a cone shrinks like (cell / distance)^2
    azimuth = np.degrees(np.arctan2(xx - x0, yy - y0)) % 360  # faces away from the apex
    slope_err = np.abs(out["slope"].values - np.degrees(np.arctan(k)))[far]
    aspect_err = np.abs((out["aspect"].values - azimuth + 180) % 360 - 180)[far]
    assert np.nanmax(slope_err) < 0.15
    assert np.nanmax(aspect_err) < 0.15
    assert np.isfinite(slope_err).sum() == far[1:-1, 1:-1].sum()


def test_slope_aspect__cone_on_latlon_within_discretisation() -> None:
    k = 0.2
    geod = Geod(ellps="WGS84")
    lon, lat = np.meshgrid(LATLON.x, LATLON.y)
    _, back, dist = geod.inv(np.full(lon.shape, LATLON.x[20]), np.full(lon.shape, LATLON.y[20]), lon, lat)
    out = slope_aspect(dem_on(LATLON, 1000 - k * dist))
    far = dist >= 5 * 1000.0
    slope_err = np.abs(out["slope"].values - np.degrees(np.arctan(k)))[far]
    aspect_err = np.abs((out["aspect"].values - (back + 180) % 360 + 180) % 360 - 180)[far]
    assert np.nanmax(slope_err) < 0.15
    assert np.nanmax(aspect_err) < 0.25


def test_slope_aspect__compass_directions_and_flat() -> None:
    xx, yy = np.meshgrid(UTM.x, UTM.y)
    cases = {"north": (0.0, -0.1, 0.0), "east": (-0.1, 0.0, 90.0), "south": (0.0, 0.1, 180.0),
             "west": (0.1, 0.0, 270.0)}
    for name, (gx, gy, aspect) in cases.items():
        out = slope_aspect(dem_on(UTM, gx * (xx - 500000) + gy * (yy - 3500000)))
        assert float(out["aspect"][10, 10]) == pytest.approx(aspect, abs=1e-6), name
    flat = slope_aspect(dem_on(UTM, np.full(UTM.shape, 250.0)))
    assert float(flat["slope"][10, 10]) == 0.0
    assert np.isnan(flat["aspect"].values).all()


def test_slope_aspect__reflect_edge_keeps_planes_exact() -> None:
    xx, yy = np.meshgrid(UTM.x, UTM.y)
    out = slope_aspect(dem_on(UTM, 0.05 * (xx - 500000) - 0.02 * (yy - 3500000)), edge="reflect")
    slope, aspect = expected(0.05, -0.02)
    np.testing.assert_allclose(out["slope"].values, slope, atol=1e-4)
    np.testing.assert_allclose(out["aspect"].values, aspect, atol=1e-4)


def test_slope_aspect__km_units_converted_and_attrs() -> None:
    xx, _ = np.meshgrid(UTM.x, UTM.y)
    out = slope_aspect(dem_on(UTM, 1e-4 * (xx - 500000), units="km"))  # 0.1 m per m
    assert float(out["slope"][5, 5]) == pytest.approx(np.degrees(np.arctan(0.1)), abs=1e-6)
    assert out["slope"].attrs["units"] == "degree" and out["aspect"].attrs["grid_mapping"] == "spatial_ref"
    assert "spatial_ref" in out.coords


def test_tpi__paraboloid_exact() -> None:
    # z = c (x^2 + y^2): the 8-neighbour mean is z0 + c (4 h^2 + 4 * 2 h^2) / 8 = z0 + 1.5 c h^2,
    # so TPI = -1.5 c h^2 = -(3/8) * laplacian(z) * h^2 (laplacian = 4 c)
    c, h = 1e-4, 100.0
    xx, yy = np.meshgrid(UTM.x - UTM.x[17], UTM.y - UTM.y[23])
    out = tpi(dem_on(UTM, c * (xx**2 + yy**2)))
    np.testing.assert_allclose(out.values[1:-1, 1:-1], -1.5 * c * h**2, rtol=1e-5)
    assert np.isnan(out.values[0]).all() and np.isnan(out.values[:, 0]).all()


def test_tpi__plane_zero_and_reflect_edges() -> None:
    lon, lat = np.meshgrid(LATLON.x, LATLON.y)
    plane = dem_on(LATLON, 3000 * lon - 2000 * lat)
    np.testing.assert_allclose(tpi(plane).values[1:-1, 1:-1], 0.0, atol=1e-6)
    np.testing.assert_allclose(tpi(plane, edge="reflect").values, 0.0, atol=1e-6)
    peak = np.zeros(LATLON.shape)
    peak[5, 5] = 8.0
    out = tpi(dem_on(LATLON, peak))
    assert float(out[5, 5]) == 8.0 and float(out[5, 6]) == -1.0


def test_terrain__nan_neighbour_gives_nan_and_input_untouched() -> None:
    xx, _ = np.meshgrid(UTM.x, UTM.y)
    values = 0.1 * (xx - 500000)
    values[10, 10] = np.nan
    dem = dem_on(UTM, values)
    before = dem.copy(deep=True)
    out = slope_aspect(dem)
    assert np.isnan(out["slope"].values[9:12, 9:12]).all()
    assert np.isfinite(out["slope"].values[9, 12])
    assert np.isnan(tpi(dem).values[11, 11])
    xr.testing.assert_identical(dem, before)


def test_terrain__bad_input_raises() -> None:
    cube = xr.DataArray(np.zeros((2, 4, 4)), dims=("time", "y", "x"))
    with pytest.raises(DataError, match="2-D DEM"):
        slope_aspect(cube)
    with pytest.raises(DataError, match="edge"):
        tpi(dem_on(UTM, np.zeros(UTM.shape)), edge="wrap")  # type: ignore[arg-type]
