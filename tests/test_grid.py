"""Tests of the Grid value object against pyproj and hand-computed values."""

from __future__ import annotations

import pickle

import dask.base
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import Transformer

from soilfuse.exceptions import CRSMismatchError, GridError
from soilfuse.grid import EASE2_GRIDS, Grid, crs_of

# Upper-left cell centres of the global EASE-Grid 2.0 grids (NSIDC grid documentation).
_EASE2_UL_CENTRE = {
    "36km": (-179.81328, 83.63198),
    "9km": (-179.95332, 84.65642),
    "3km": (-179.98444, 84.91190),
    "1km": (-179.99481, 84.99996),
}


@pytest.mark.parametrize("res", sorted(EASE2_GRIDS))
def test_ease2__official_shape_and_extent(res: str) -> None:
    g = Grid.ease2(res)  # type: ignore[arg-type]
    _, ny, nx = EASE2_GRIDS[res]
    assert g.shape == (ny, nx)
    west, east, south, north = g.bounds
    assert west == pytest.approx(-17367530.445161372, abs=1e-3)
    assert east == pytest.approx(17367530.445161372, abs=1e-3)
    assert north == pytest.approx(7314540.830638504, abs=1e-3)
    assert south == pytest.approx(-7314540.830638504, abs=1e-3)
    to_ll = Transformer.from_crs(6933, 4326, always_xy=True)
    lon, lat = to_ll.transform(west, north)
    assert lon == pytest.approx(-180.0, abs=1e-9)
    assert lat == pytest.approx(85.0445664, abs=1e-6)


@pytest.mark.parametrize("res", sorted(EASE2_GRIDS))
def test_ease2__cell_centres_match_pyproj_and_nsidc(res: str) -> None:
    g = Grid.ease2(res)  # type: ignore[arg-type]
    sub = g.slice(slice(0, 2), slice(0, 2))
    lon, lat = sub.lonlat()
    to_ll = Transformer.from_crs(6933, 4326, always_xy=True)
    size = EASE2_GRIDS[res][0]
    ref_lon, ref_lat = to_ll.transform(-17367530.445161372 + size / 2, 7314540.830638504 - size / 2)
    assert lon[0, 0] == pytest.approx(ref_lon, abs=1e-9)
    assert lat[0, 0] == pytest.approx(ref_lat, abs=1e-9)
    assert (lon[0, 0], lat[0, 0]) == pytest.approx(_EASE2_UL_CENTRE[res], abs=1e-4)


def test_ease2__nesting() -> None:
    g36 = Grid.ease2("36km")
    assert Grid.ease2("1km").nests_in(g36)
    assert Grid.ease2("1km").nesting_factor(g36) == (36, 36)
    assert Grid.ease2("9km").nesting_factor(g36) == (4, 4)
    assert Grid.ease2("3km").nesting_factor(Grid.ease2("9km")) == (3, 3)
    assert not g36.nests_in(Grid.ease2("9km"))
    assert not Grid.latlon((0, 10, 0, 10), 0.01).nests_in(g36)
    with pytest.raises(CRSMismatchError):
        Grid.latlon((0, 10, 0, 10), 0.01).nesting_factor(g36)


def test_latlon__shape_bounds_and_centres() -> None:
    g = Grid.latlon((100.0, 101.0, 30.0, 30.5), 0.1)
    assert g.shape == (5, 10)
    assert g.bounds == pytest.approx((100.0, 101.0, 30.0, 30.5))
    np.testing.assert_allclose(g.x, 100.05 + 0.1 * np.arange(10))
    np.testing.assert_allclose(g.y, 30.45 - 0.1 * np.arange(5))
    np.testing.assert_allclose(g.x_bounds[0], [100.0, 100.1])
    np.testing.assert_allclose(g.y_bounds[0], [30.5, 30.4])


@pytest.mark.parametrize("res", [0.01, 0.1, 0.25])
def test_latlon__nests_in_coarser(res: float) -> None:
    fine = Grid.latlon((100.0, 102.0, 30.0, 32.0), res)
    coarse = Grid.latlon((100.0, 102.0, 30.0, 32.0), 0.5)
    f = round(0.5 / res)
    assert fine.nesting_factor(coarse) == (f, f)
    shifted = Grid.latlon((100.005, 102.005, 30.0, 32.0), 0.01)
    assert res != 0.01 or not shifted.nests_in(coarse)


def test_cell_area__globe_and_band() -> None:
    g = Grid.latlon((-180.0, 180.0, -90.0, 90.0), 1.0)
    assert g.cell_area().sum() == pytest.approx(510065621724088.0, rel=1e-9)  # WGS 84 surface
    # a 1x1 degree cell at the equator: a^2 * dlon * (q(1) - q(0)) / 2 ~ 12363.7 km2
    eq = Grid.latlon((0.0, 1.0, 0.0, 1.0), 1.0).cell_area()[0, 0]
    assert eq / 1e6 == pytest.approx(12308.8, rel=1e-3)
    ease = Grid.ease2("36km").cell_area()
    assert np.allclose(ease, 36032.220840584**2)


def test_cell_area__projected_scale_factor() -> None:
    utm = Grid.projected("EPSG:32633", (500000, 510000, 5000000, 5010000), 1000)
    area = utm.cell_area()
    # central meridian of zone 33: scale factor k0 = 0.9996, areal scale k0^2
    assert area[5, 0] == pytest.approx(1e6 / 0.9996**2, rel=1e-4)


def test_index__inside_outside_and_crs() -> None:
    g = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    rows, cols = g.index([100.05, 100.95, 99.0, np.nan], [30.95, 30.05, 30.5, 30.5])
    assert rows.tolist() == [0, 9, -1, -1]
    assert cols.tolist() == [0, 9, -1, -1]
    ease = Grid.ease2("36km")
    r, c = ease.index([146.0], [-35.0], crs="EPSG:4326")
    lon, lat = ease.slice(slice(r[0], r[0] + 1), slice(c[0], c[0] + 1)).lonlat()
    assert abs(lon[0, 0] - 146.0) < 0.38 / 2 + 1e-9
    assert abs(lat[0, 0] + 35.0) < 0.5


def test_subset__window_and_projected_region() -> None:
    g = Grid.latlon((100.0, 110.0, 30.0, 40.0), 0.25)
    sub = g.subset((101.1, 102.0, 31.0, 32.3))
    assert sub.bounds == pytest.approx((101.0, 102.0, 31.0, 32.5))
    ease_sub = Grid.ease2("36km").subset((145.8, 147.55, -35.4, -34.65))
    assert ease_sub.shape[1] >= 5
    assert ease_sub.nests_in(Grid.ease2("36km"))
    with pytest.raises(GridError, match="does not intersect"):
        g.subset((0.0, 1.0, 0.0, 1.0))


def test_grid__value_semantics() -> None:
    a = Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.1)
    b = Grid("EPSG:4326", Affine(0.1, 0, 0.0, 0, -0.1, 1.0), (10, 10))
    assert a == b and hash(a) == hash(b)
    assert dask.base.tokenize(a) == dask.base.tokenize(b)
    assert pickle.loads(pickle.dumps(a)) == a
    assert a != Grid.latlon((0.0, 1.0, 0.0, 1.1), 0.1)
    with pytest.raises(AttributeError):
        a._shape = (1, 1)  # type: ignore[misc]


def test_grid__invalid_inputs() -> None:
    with pytest.raises(GridError, match="west, east, south, north"):
        Grid.latlon((10.0, 0.0, 0.0, 1.0), 0.1)
    with pytest.raises(GridError, match="north-up"):
        Grid("EPSG:4326", Affine(0.1, 0, 0, 0, 0.1, 0), (2, 2))
    with pytest.raises(GridError, match="resolution"):
        Grid.ease2("5km")  # type: ignore[arg-type]


def test_from_dataset__roundtrip_coords() -> None:
    g = Grid.ease2("9km").slice(slice(100, 120), slice(200, 230))
    da = g.empty_like("sm")
    assert crs_of(da).to_epsg() == 6933
    assert Grid.from_dataset(da) == g
    ds = xr.Dataset({"sm": da.isel(y=slice(None, None, -1))})
    assert Grid.from_coords(ds.x.values, ds.y.values, crs_of(ds)) == g
