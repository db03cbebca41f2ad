"""Numpy kernels of soilfuse.gapfill against hand-computed values and reference solvers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter
from whittaker_eilers import WhittakerSmoother

from soilfuse.gapfill._kernels import (
    _factor_solve,
    _hat_trace,
    combine_flags_kernel,
    difference_bands,
    idw_fill_kernel,
    interpolate_time_kernel,
    savgol_kernel,
    whittaker_kernel,
)
from soilfuse.gapfill.stdf import stdf_kernel

NAN = np.nan


def test_interpolate_time_kernel__linear_between_neighbours() -> None:
    v = np.array([[1.0, NAN, NAN, 4.0, NAN, 8.0], [NAN, 2.0, NAN, NAN, NAN, NAN]])
    out = interpolate_time_kernel(v, np.arange(6.0))
    np.testing.assert_allclose(out[0], [1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
    np.testing.assert_array_equal(out[1], [NAN, 2.0, NAN, NAN, NAN, NAN])  # no extrapolation


def test_interpolate_time_kernel__max_gap_and_uneven_days() -> None:
    v = np.array([0.0, NAN, NAN, NAN, 4.0, NAN, 10.0])
    assert np.isnan(interpolate_time_kernel(v, np.arange(7.0), max_gap=2)[1:4]).all()
    np.testing.assert_allclose(interpolate_time_kernel(v, np.arange(7.0), max_gap=3)[1:4], [1.0, 2.0, 3.0])
    days = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 9.0, 10.0])  # value at day 9 between 4 (day 4) and 10 (day 10)
    assert interpolate_time_kernel(v, days, max_gap=5)[5] == pytest.approx(4.0 + 6.0 * 5 / 6)
    held = interpolate_time_kernel(np.array([NAN, 3.0, NAN, 5.0, NAN]), np.arange(5.0), hold_edges=True)
    np.testing.assert_allclose(held, [3.0, 3.0, 4.0, 5.0, 5.0])


def test_idw_fill_kernel__hand_computed_weights() -> None:
    img = np.array([[1.0, 2.0, 3.0], [4.0, NAN, 6.0], [7.0, 8.0, 9.0]])
    # power 2: axial neighbours weight 1, diagonal ones 1/2
    expected = ((2 + 4 + 6 + 8) + 0.5 * (1 + 3 + 7 + 9)) / (4 + 0.5 * 4)
    out = idw_fill_kernel(img[None], window=3, power=2.0, min_neighbours=3)
    assert out[0, 1, 1] == pytest.approx(expected)
    corner = np.array([[NAN, 2.0, NAN], [NAN, NAN, NAN], [NAN, NAN, NAN]])
    one = idw_fill_kernel(corner, window=3, min_neighbours=1)
    assert one[0, 0] == 2.0 and one[1, 1] == 2.0 and np.isnan(one[2, 2])
    assert np.isnan(idw_fill_kernel(corner, window=3, min_neighbours=2)).sum() == 8


def test_combine_flags_kernel__codes() -> None:
    before = np.array([1.0, NAN, NAN, 2.0])
    after = np.array([1.5, 3.0, NAN, 2.5])
    prior = np.array([0, 0, 0, 1], dtype=np.uint8)
    assert combine_flags_kernel(before, after, prior, filled=2).tolist() == [0, 2, 255, 1]
    assert combine_flags_kernel(before, after, prior, filled=1, observed_to=4).tolist() == [4, 1, 255, 1]


def test_savgol_kernel__complete_series_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 40))
    np.testing.assert_allclose(savgol_kernel(v, np.arange(40.0), window=9, order=3),
                               savgol_filter(v, 9, 3, axis=-1, mode="interp"), rtol=1e-12)


def test_savgol_kernel__gaps_stay_missing_and_quadratic_preserved() -> None:
    t = np.arange(30.0)
    quad = 0.02 * (t - 12) ** 2 + 1
    v = quad.copy()
    v[[3, 4, 17]] = NAN
    out = savgol_kernel(v, t, window=7, order=2)
    assert np.isnan(out[[3, 4, 17]]).all()
    # away from the gaps' influence a quadratic passes unchanged through an order-2 filter
    np.testing.assert_allclose(out[8:14], quad[8:14], rtol=1e-10)
    assert np.isnan(savgol_kernel(np.full(10, NAN), np.arange(10.0), window=5, order=2)).all()


def test_difference_bands__match_dense_dtd() -> None:
    for order in (1, 2, 3):
        d = np.diff(np.eye(12), n=order, axis=0)
        dtd = d.T @ d
        bands = difference_bands(12, order)
        for k in range(order + 1):
            np.testing.assert_allclose(bands[k, k:], np.diag(dtd, -k))


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("lmbda", [0.5, 50.0, 5e4])
def test_whittaker_kernel__matches_whittaker_eilers(order: int, lmbda: float) -> None:
    rng = np.random.default_rng(order)
    n = 120
    y = np.sin(np.arange(n) / 9) + rng.normal(0, 0.1, n)
    w = (rng.random(n) > 0.3).astype(float)
    smoother = WhittakerSmoother(lmbda=lmbda, order=order, data_length=n, weights=list(w))
    ref = smoother.smooth(list(np.where(w > 0, y, 0)))
    z, lam = whittaker_kernel(np.where(w > 0, y, NAN), w, lmbda=lmbda, order=order)
    np.testing.assert_allclose(z, ref, atol=1e-9 * max(1.0, lmbda / 100))
    assert lam == lmbda


def test_hat_trace__equals_dense_inverse() -> None:
    rng = np.random.default_rng(5)
    n = 60
    w = rng.uniform(0, 1, (n, 3)) * (rng.random((n, 3)) > 0.2)
    for order in (1, 2, 3):
        bands = difference_bands(n, order)
        _, low, diag = _factor_solve(np.zeros((n, 3)), w, 25.0, bands)
        d = np.diff(np.eye(n), n=order, axis=0)
        dense = [np.sum(w[:, j] * np.diag(np.linalg.inv(np.diag(w[:, j]) + 25.0 * d.T @ d))) for j in range(3)]
        np.testing.assert_allclose(_hat_trace(w, low, diag), dense, rtol=1e-9)


def test_whittaker_kernel__per_series_lambda_and_too_few_points() -> None:
    rng = np.random.default_rng(2)
    v = rng.normal(size=(4, 50))
    v[3, 2:] = NAN  # two samples: fewer than order + 1
    z, lam = whittaker_kernel(v, lmbda="vcurve")
    assert np.isnan(z[3]).all() and np.isnan(lam[3])
    assert np.isfinite(z[:3]).all() and (lam[:3] > 0).all()
    # the chosen lambda reproduces the smooth when given explicitly
    z1, _ = whittaker_kernel(v[1], lmbda=float(lam[1]))
    np.testing.assert_allclose(z[1], z1, rtol=1e-10)


def test_stdf_kernel__exact_affine_relation_recovered() -> None:
    rng = np.random.default_rng(1)
    dem = rng.uniform(0, 2000, (15, 15))
    ndvi = np.broadcast_to(rng.uniform(0.1, 0.8, (15, 15)), (4, 15, 15))
    lst0 = 290 - 0.006 * dem + rng.normal(0, 2, (15, 15))
    # LST(t) - LST(t - 1) = 1 + 2 NDVI - 0.001 DEM: exactly the STDF model with a = 1
    lst = np.stack([lst0 + k * (1.0 + 2 * ndvi[k]) - 0.001 * k * dem for k in range(4)])
    truth = lst.copy()
    lst[2, 3:9, 4:12] = NAN
    out = stdf_kernel(lst, ndvi, dem, np.arange(4.0), np.arange(4), min_pixels=10, max_leverage=None)
    np.testing.assert_allclose(out[2], truth[2], rtol=1e-9)
    np.testing.assert_array_equal(out[[0, 1, 3]], truth[[0, 1, 3]])


def test_stdf_kernel__window_and_halo_respected() -> None:
    dem = np.random.default_rng(0).permutation(np.linspace(0, 100, 36)).reshape(6, 6)
    lst = np.stack([300 + 0 * dem + k for k in range(6)])
    lst[3, :2] = NAN
    lst[[2, 4], :2] = NAN
    # nearest dates with the cells clear are 2 days away: outside a 1-day window
    out = stdf_kernel(lst, np.full((6, 6, 6), 0.5), dem, np.arange(6.0), np.arange(6), window_days=1,
                      min_pixels=5, max_leverage=None)
    assert np.isnan(out[3, :2]).all()
    out = stdf_kernel(lst, np.full((6, 6, 6), 0.5), dem, np.arange(6.0), np.arange(6), window_days=2,
                      min_pixels=5, max_leverage=None)
    np.testing.assert_allclose(out[3, :2], 303.0)
    # as a middle block with a halo of 2, only its own steps 2..3 come back
    mid = stdf_kernel(lst, np.full((6, 6, 6), 0.5), dem, np.arange(6.0), np.arange(10, 16), window_days=2,
                      min_pixels=5, max_leverage=None, halo=2, n_total=30)
    assert np.isnan(mid[[0, 1, 4, 5]]).all() and np.isfinite(mid[2:4]).all()


def test_stdf_kernel__leverage_guard_stops_extrapolation() -> None:
    # clear pixels all on a 'plateau' (dem 3000-3500 m), the cloudy ones in the 'plains' (0-200 m)
    rng = np.random.default_rng(7)
    dem = np.where(np.arange(20)[None, :] < 10, rng.uniform(3000, 3500, (20, 20)), rng.uniform(0, 200, (20, 20)))
    lst = np.stack([280 + 0.01 * rng.normal(size=(20, 20)) - 0.006 * dem, 285 - 0.006 * dem])
    lst[1, :, 10:] = NAN
    lst[1, :, :10] += rng.normal(0, 0.5, (20, 10))
    ndvi = np.full((2, 20, 20), 0.4)
    guarded = stdf_kernel(lst, ndvi, dem, np.arange(2.0), np.arange(2), min_pixels=10)
    free = stdf_kernel(lst, ndvi, dem, np.arange(2.0), np.arange(2), min_pixels=10, max_leverage=None)
    assert np.isnan(guarded[1, :, 10:]).all()
    assert np.isfinite(free[1, :, 10:]).all()
