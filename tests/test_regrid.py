"""Numerical tests of soilfuse.regrid: exactness of each method, NaN rules, round trips."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from soilfuse.exceptions import GridError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.regrid import (
    Regridder,
    RegridWarning,
    aggregate,
    broadcast,
    coarsen_mean,
    regrid,
)

LL = "EPSG:4326"


def on_grid(values: np.ndarray, grid: Grid, name: str = "sm") -> xr.DataArray:
    dims = ("time", "y", "x")[3 - values.ndim :]
    da = xr.DataArray(values, dims=dims, name=name, attrs={"units": "m3 m-3"})
    return with_grid(da, grid)


def centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(grid.x, grid.y)


def rect_area(west: float, east: float, south: float, north: float) -> float:
    """Exact area (m²) of a lon-lat rectangle, from Grid.cell_area (independent of regrid)."""
    cell = Grid(LL, Affine(east - west, 0.0, west, 0.0, -(north - south), north), (1, 1))
    return float(cell.cell_area()[0, 0])


# ---------------------------------------------------------------------- bilinear
def test_regrid__bilinear_exact_on_linear_latlon_field():
    source = Grid.latlon((100.0, 102.0, 30.0, 32.0), 0.1)
    target = Grid.latlon((100.33, 101.63, 30.27, 31.57), 0.13)  # other size and offset
    lon, lat = centres(source)
    da = on_grid(np.stack([3.0 + 0.5 * lon - 2.0 * lat, -1.0 + 0.25 * lat]), source)
    out = regrid(da, target, method="bilinear")
    tlon, tlat = centres(target)
    expected = np.stack([3.0 + 0.5 * tlon - 2.0 * tlat, -1.0 + 0.25 * tlat])
    np.testing.assert_allclose(out.values, expected, rtol=1e-10, atol=0)
    assert out.attrs["units"] == "m3 m-3"
    assert Grid.from_dataset(out) == target


def test_regrid__bilinear_exact_on_linear_ease_field():
    source = Grid.ease2("9km").subset((100.0, 104.0, 30.0, 34.0))
    target = Grid.projected("EPSG:6933", (9.75e6, 9.95e6, 3.70e6, 3.90e6), 12_500.0)
    x, y = centres(source)
    da = on_grid(7.0 + 2e-6 * x - 3e-6 * y, source)
    out = regrid(da, target, method="bilinear")
    tx, ty = centres(target)
    np.testing.assert_allclose(out.values, 7.0 + 2e-6 * tx - 3e-6 * ty, rtol=1e-10, atol=0)


def test_regrid__bilinear_target_centres_match_pyproj():
    """Lat-lon -> EASE: the target centres used are pyproj's inverse of EASE x, y."""
    source = Grid.latlon((100.0, 104.0, 30.0, 34.0), 0.05)
    target = Grid.ease2("9km").subset((101.0, 103.0, 31.0, 33.0))
    lon, lat = centres(source)
    out = regrid(on_grid(2.0 + 0.3 * lon - 0.7 * lat, source), target, method="bilinear")
    to_ll = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)
    tlon, tlat = to_ll.transform(*centres(target))
    np.testing.assert_allclose(out.values, 2.0 + 0.3 * tlon - 0.7 * tlat, rtol=1e-10, atol=0)


def test_regrid__bilinear_ease_to_latlon_exact_on_linear_metres():
    source = Grid.ease2("9km").subset((99.0, 105.0, 29.0, 35.0))
    target = Grid.latlon((100.0, 104.0, 30.0, 34.0), 0.25)
    x, y = centres(source)
    out = regrid(on_grid(1.0 + 1e-6 * x + 2e-6 * y, source), target, method="bilinear")
    to_ease = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
    tx, ty = to_ease.transform(*centres(target))
    np.testing.assert_allclose(out.values, 1.0 + 1e-6 * tx + 2e-6 * ty, rtol=1e-10, atol=0)


def test_regrid__bilinear_nan_neighbour_renormalises():
    # 3 x 3 one-degree cells; the target centre (1.25, 1.75) has weights 1/16, 3/16,
    # 3/16, 9/16 on the cells (row 0, col 0), (0, 1), (1, 0), (1, 1).
    source = Grid.latlon((0.0, 3.0, 0.0, 3.0), 1.0)
    target = Grid.latlon((1.0, 1.5, 1.5, 2.0), 0.5)
    values = np.arange(9.0).reshape(3, 3) + 10.0
    v00, v01, v10 = values[0, 0], values[0, 1], values[1, 0]
    full = regrid(on_grid(values, source), target, method="bilinear")
    assert float(full[0, 0]) == pytest.approx((v00 + 3 * v01 + 3 * v10 + 9 * values[1, 1]) / 16)

    values[1, 1] = np.nan  # valid weight 7/16 < 0.5
    assert np.isnan(float(regrid(on_grid(values, source), target, method="bilinear")[0, 0]))
    res = regrid(
        on_grid(values, source), target, method="bilinear",
        min_valid_fraction=0.4, return_valid_fraction=True,
    )
    assert float(res["sm"][0, 0]) == pytest.approx((v00 + 3 * v01 + 3 * v10) / 7, rel=1e-12)
    assert float(res["sm_valid_fraction"][0, 0]) == pytest.approx(7 / 16, rel=1e-12)

    values = np.arange(9.0).reshape(3, 3) + 10.0
    values[0, 0] = np.nan  # valid weight 15/16
    out = regrid(on_grid(values, source), target, method="bilinear")
    expected = (3 * v01 + 3 * v10 + 9 * values[1, 1]) / 15
    assert float(out[0, 0]) == pytest.approx(expected, rel=1e-12)


def test_regrid__bilinear_outside_source_is_nan():
    source = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    target = Grid.latlon((100.5, 101.5, 30.0, 31.0), 0.25)  # east half outside
    out = regrid(on_grid(np.ones(source.shape), source), target, method="bilinear")
    inside = target.x < 101.0
    assert np.all(out.values[:, inside] == 1.0)
    assert np.all(np.isnan(out.values[:, ~inside]))


# ---------------------------------------------------------------------- nearest
def test_regrid__nearest_exact_on_piecewise_constant_field():
    source = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    rows, cols = np.indices(source.shape)
    values = (100 * rows + cols).astype(float)
    target = Grid.latlon((100.013, 100.913, 30.017, 30.977), 0.03)
    out = regrid(on_grid(values, source), target, method="nearest")
    tlon, tlat = centres(target)
    expected = 100 * np.floor((31.0 - tlat) / 0.1) + np.floor((tlon - 100.0) / 0.1)
    np.testing.assert_array_equal(out.values, expected)


def test_regrid__nearest_latlon_to_ease_uses_pyproj_centres():
    source = Grid.latlon((100.0, 104.0, 30.0, 34.0), 0.1)
    rows, cols = np.indices(source.shape)
    values = (1000 * rows + cols).astype(float)
    target = Grid.ease2("36km").subset((100.5, 103.5, 30.5, 33.5))
    out = regrid(on_grid(values, source), target, method="nearest")
    tlon, tlat = Transformer.from_crs("EPSG:6933", LL, always_xy=True).transform(*centres(target))
    expected = 1000 * np.floor((34.0 - tlat) / 0.1) + np.floor((tlon - 100.0) / 0.1)
    np.testing.assert_array_equal(out.values, expected)


# ---------------------------------------------------------------------- mean
@pytest.mark.parametrize("resolution", [0.1, 0.25])
def test_aggregate__preserves_area_weighted_domain_mean(resolution):
    region = (100.0, 101.0, 30.0, 31.0)
    source = Grid.latlon(region, 0.01)
    target = Grid.latlon(region, resolution)
    values = np.random.default_rng(1).gamma(2.0, 0.1, source.shape)
    out = aggregate(on_grid(values, source), target).values
    src_area, tgt_area = source.cell_area(), target.cell_area()
    fine_mean = np.sum(values * src_area) / np.sum(src_area)
    coarse_mean = np.sum(out * tgt_area) / np.sum(tgt_area)
    assert coarse_mean == pytest.approx(fine_mean, rel=1e-12)


def test_aggregate__unaligned_target_integrates_exact_overlaps():
    """Target edges cut source cells at 0.3 of a cell: compare with exact rectangle areas."""
    source = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.01)
    region = (100.003, 100.903, 30.003, 30.903)
    target = Grid.latlon(region, 0.1)
    values = np.random.default_rng(2).random(source.shape)
    rg = Regridder(source, target, "mean")
    # Every target cell lies inside the source, so its covered area is its full area.
    np.testing.assert_allclose(
        rg.weights.sum(axis=1).reshape(target.shape), target.cell_area(), rtol=1e-12
    )
    out = rg.regrid_array(values)
    integral = np.sum(out * target.cell_area())
    # Brute force: each source cell times the exact area of its piece inside the region.
    west, east, south, north = region
    expected = 0.0
    for i, (top, bottom) in enumerate(source.y_bounds):
        lo, hi = max(bottom, south), min(top, north)
        if hi <= lo:
            continue
        for j, (left, right) in enumerate(source.x_bounds):
            a, b = max(left, west), min(right, east)
            if b > a:
                expected += values[i, j] * rect_area(a, b, lo, hi)
    assert integral == pytest.approx(expected, rel=1e-12)


def test_aggregate__latlon_to_ease_matches_bruteforce_subsampling():
    source = Grid.latlon((100.0, 102.0, 30.0, 31.0), 0.01)
    target = Grid.ease2("36km").subset((100.0, 102.0, 30.0, 31.0))
    lon, lat = centres(source)
    values = 0.2 + 0.1 * np.sin(np.radians(40 * lon)) * np.cos(np.radians(30 * lat))
    rg = Regridder(source, target, "mean")
    out = rg.regrid_array(values)
    # Brute-force reference: 12 x 12 points per source cell binned into EASE cells.
    k = 12
    off = (np.arange(k) + 0.5) / k
    px = (100.0 + (np.arange(source.shape[1])[:, None] + off) * 0.01).ravel()
    py = (31.0 - (np.arange(source.shape[0])[:, None] + off) * 0.01).ravel()
    xx, yy = np.meshgrid(px, py)
    ex, ey = Transformer.from_crs(LL, "EPSG:6933", always_xy=True).transform(xx, yy)
    r, c = target.index(ex, ey)
    cell = np.repeat(np.repeat(source.cell_area() / k**2, k, 0), k, 1)
    val = np.repeat(np.repeat(values, k, 0), k, 1)
    flat = (r * target.shape[1] + c)[r >= 0]
    n = target.shape[0] * target.shape[1]
    ref_area = np.bincount(flat, cell[r >= 0], n).reshape(target.shape)
    ref = np.bincount(flat, (cell * val)[r >= 0], n).reshape(target.shape) / ref_area
    covered = rg.weights.sum(axis=1).reshape(target.shape)
    # Totals are conserved exactly: every source cell's full area is handed out.
    assert covered.sum() == pytest.approx(source.cell_area().sum(), rel=1e-12)
    # Stated accuracy of k = 2 sampling at a ~34x size ratio: covered areas within
    # 2 / (k N) ~ 3 % of the reference, values of a smooth field within 1e-3 (relative).
    big = ref_area > 0.5 * target.cell_area()
    np.testing.assert_allclose(covered[big], ref_area[big], rtol=0.03)
    np.testing.assert_allclose(out[big], ref[big], rtol=1e-3)


def test_aggregate__valid_fraction_rule():
    source = Grid.latlon((100.0, 100.2, 30.0, 30.1), 0.01)  # 10 x 20 fine cells
    target = Grid.latlon((100.0, 100.2, 30.0, 30.1), 0.1)  # 1 x 2 coarse cells
    values = np.random.default_rng(3).random(source.shape)
    values[:, :6] = np.nan  # 6 of 10 columns of the west cell: 40 % of its area valid
    da = on_grid(values, source)
    at_half = aggregate(da, target, min_valid_fraction=0.5, return_valid_fraction=True)
    assert np.isnan(float(at_half["sm"][0, 0]))
    np.testing.assert_allclose(at_half["sm_valid_fraction"].values, [[0.4, 1.0]], rtol=1e-12)
    at_03 = aggregate(da, target, min_valid_fraction=0.3)
    area = source.cell_area()[:, 6:10]
    expected = np.sum(values[:, 6:10] * area) / area.sum()
    assert float(at_03[0, 0]) == pytest.approx(expected, rel=1e-12)

    # NaN rows: the valid fraction is a ratio of (latitude-dependent) areas.
    values = np.ones(source.shape)
    values[:7, :10] = np.nan
    res = aggregate(on_grid(values, source), target, min_valid_fraction=0.0, return_valid_fraction=True)
    area = source.cell_area()[:, :10]
    assert float(res["sm_valid_fraction"][0, 0]) == pytest.approx(area[7:].sum() / area.sum(), rel=1e-12)
    assert 0.29 < float(res["sm_valid_fraction"][0, 0]) < 0.31
    assert float(res["sm"][0, 0]) == 1.0


def test_aggregate__all_nan_target_is_nan_with_zero_fraction():
    source = Grid.latlon((100.0, 100.2, 30.0, 30.1), 0.01)
    target = Grid.latlon((100.0, 100.2, 30.0, 30.1), 0.1)
    values = np.ones(source.shape)
    values[:, :10] = np.nan
    res = aggregate(on_grid(values, source), target, min_valid_fraction=0.0, return_valid_fraction=True)
    assert np.isnan(float(res["sm"][0, 0])) and float(res["sm"][0, 1]) == 1.0
    np.testing.assert_array_equal(res["sm_valid_fraction"].values, [[0.0, 1.0]])


@pytest.mark.parametrize("min_valid_fraction", [0.0, 0.5, 0.9])
def test_coarsen_mean__equals_mean_weights(min_valid_fraction):
    source = Grid.latlon((100.0, 101.0, 30.0, 30.6), 0.01)
    target = Grid.latlon((100.0, 101.0, 30.0, 30.6), 0.1)
    rng = np.random.default_rng(4)
    values = rng.random((3, *source.shape))
    values[rng.random(values.shape) < np.linspace(0.0, 0.9, source.shape[1])] = np.nan
    da = on_grid(values, source)
    fast = coarsen_mean(da, 10, min_valid_fraction=min_valid_fraction, return_valid_fraction=True)
    slow = aggregate(da, target, min_valid_fraction=min_valid_fraction, return_valid_fraction=True)
    assert Grid.from_dataset(fast) == target
    for name in ("sm", "sm_valid_fraction"):
        np.testing.assert_allclose(fast[name].values, slow[name].values, rtol=1e-12, atol=0)
    fraction = fast["sm_valid_fraction"].values
    expected_nan = (fraction < min_valid_fraction - 1e-9) | (fraction == 0)
    np.testing.assert_array_equal(np.isnan(fast["sm"].values), expected_nan)
    assert 0 < expected_nan.sum() < expected_nan.size or min_valid_fraction == 0.0


def test_coarsen_mean__rejects_non_dividing_factor():
    source = Grid.latlon((100.0, 101.0, 30.0, 30.55), 0.01)
    with pytest.raises(GridError, match="multiple of the factor"):
        coarsen_mean(on_grid(np.ones(source.shape), source), 10)


# ---------------------------------------------------------------------- broadcast
def test_broadcast__then_mean_round_trips_on_nested_grids():
    coarse = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.02)
    values = np.random.default_rng(5).random((2, *coarse.shape))
    values[0, 3, 4] = np.nan
    fine_da = broadcast(on_grid(values, coarse), fine)
    np.testing.assert_array_equal(fine_da.values[:, ::5, ::5], values)
    np.testing.assert_array_equal(fine_da.values[:, 4::5, 4::5], values)
    back = aggregate(fine_da, coarse)
    np.testing.assert_allclose(back.values, values, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(np.isnan(back.values), np.isnan(values))


def test_broadcast__ease_to_latlon_takes_containing_cell():
    coarse = Grid.ease2("36km").subset((100.0, 102.0, 30.0, 32.0))
    fine = Grid.latlon((100.5, 101.5, 30.5, 31.5), 0.01)
    rows, cols = np.indices(coarse.shape)
    out = broadcast(on_grid((100 * rows + cols).astype(float), coarse), fine)
    ex, ey = Transformer.from_crs(LL, "EPSG:6933", always_xy=True).transform(*centres(fine))
    t = coarse.transform
    expected = 100 * np.floor((ey - t.f) / t.e) + np.floor((ex - t.c) / t.a)
    np.testing.assert_array_equal(out.values, expected)


def test_broadcast__warns_when_target_is_coarser():
    fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.01)
    coarse = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    with pytest.warns(RegridWarning, match="method='mean'") as record:
        Regridder(fine, coarse, "broadcast")
    assert record[0].filename == __file__


# ---------------------------------------------------------------------- both directions
@pytest.mark.parametrize(
    ("source", "target"),
    [
        (Grid.latlon((100.0, 104.0, 30.0, 34.0), 0.05), Grid.ease2("36km").subset((100.0, 104.0, 30.0, 34.0))),
        (Grid.ease2("9km").subset((100.0, 104.0, 30.0, 34.0)), Grid.latlon((100.0, 104.0, 30.0, 34.0), 0.25)),
        (Grid.ease2("36km").subset((100.0, 104.0, 30.0, 34.0)), Grid.latlon((100.0, 104.0, 30.0, 34.0), 0.1)),
    ],
    ids=["latlon-to-ease", "ease9-to-latlon", "ease36-to-latlon"],
)
@pytest.mark.parametrize("method", ["bilinear", "nearest", "mean"])
def test_regrid__constant_field_both_ways(source, target, method):
    out = regrid(on_grid(np.full(source.shape, 0.3), source), target, method=method)
    finite = np.isfinite(out.values)
    assert finite.mean() > 0.5
    np.testing.assert_allclose(out.values[finite], 0.3, rtol=1e-12)
    assert Grid.from_dataset(out) == target


@settings(max_examples=25, deadline=None)
@given(
    factor=st.floats(1.3, 7.0),
    offset=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    nan_share=st.floats(0.0, 0.9),
    constant=st.floats(-50.0, 50.0, allow_subnormal=False),
    seed=st.integers(0, 2**16),
    min_valid_fraction=st.floats(0.0, 1.0),
)
def test_aggregate__constant_field_stays_constant(factor, offset, nan_share, constant, seed, min_valid_fraction):
    source = Grid.latlon((10.0, 10.4, -5.0, -4.6), 0.02)
    res = 0.02 * factor
    west, north = 10.0 + offset[0] * res - res, -4.6 - offset[1] * res + res
    target = Grid.latlon((west, west + 0.4 + res, north - 0.4 - res, north), res)
    values = np.full(source.shape, constant)
    values[np.random.default_rng(seed).random(source.shape) < nan_share] = np.nan
    out = aggregate(
        on_grid(values, source), target,
        min_valid_fraction=min_valid_fraction, return_valid_fraction=True,
    )
    value, fraction = out["sm"].values, out["sm_valid_fraction"].values
    finite = np.isfinite(value)
    np.testing.assert_allclose(value[finite], constant, rtol=1e-12, atol=1e-12)
    covered = np.isfinite(fraction)
    assert np.all((fraction[covered] >= 0) & (fraction[covered] <= 1 + 1e-12))
    assert np.all(fraction[finite] >= min_valid_fraction - 1e-9)


# ---------------------------------------------------------------------- errors
def test_regridder__rejects_bad_arguments():
    grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    with pytest.raises(GridError, match="Unknown regridding method 'cubic'"):
        Regridder(grid, grid, "cubic")  # type: ignore[arg-type]
    with pytest.raises(GridError, match=r"between 0 and 1; got 1\.5"):
        Regridder(grid, grid, "mean", min_valid_fraction=1.5)
    with pytest.raises(GridError, match="do not overlap"):
        Regridder(grid, Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.1), "nearest")
    with pytest.raises(GridError, match=r"must be a soilfuse\.grid\.Grid"):
        Regridder("EPSG:4326", grid)  # type: ignore[arg-type]


def test_regridder__rejects_data_on_another_grid():
    grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    other = Grid.latlon((100.1, 101.1, 30.0, 31.0), 0.1)
    rg = Regridder(grid, Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.25), "mean")
    with pytest.raises(GridError, match="this Regridder was built for"):
        rg(on_grid(np.ones(other.shape), other))
    with pytest.raises(GridError, match="does not end with the source grid shape"):
        rg.regrid_array(np.ones((10, 9)))
