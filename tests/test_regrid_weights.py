"""Regridding weights: their structure, and saving / loading them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soilfuse import __version__
from soilfuse.exceptions import DataError, GridError
from soilfuse.grid import Grid
from soilfuse.regrid import REGRID_METHODS, Regridder
from soilfuse.regrid._weights import area_weights, auto_subsample

FINE = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.02)
COARSE = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
EASE = Grid.ease2("36km").subset((100.0, 101.0, 30.0, 31.0))


def test_bilinear_weights__rows_sum_to_one_with_four_neighbours():
    rg = Regridder(COARSE, FINE, "bilinear")
    w = rg.weights
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-14)
    assert np.diff(w.indptr).max() <= 4
    assert w.shape == (50 * 50, 10 * 10)


def test_nearest_weights__one_source_per_target():
    rg = Regridder(FINE, EASE, "nearest")
    counts = np.diff(rg.weights.indptr)
    assert set(np.unique(counts)) <= {0, 1}
    assert np.all(rg.weights.data == 1.0)


def test_area_weights__nested_rows_hold_cell_areas():
    w = area_weights(FINE, COARSE)
    assert w.nnz == FINE.shape[0] * FINE.shape[1]  # each fine cell in exactly one coarse cell
    np.testing.assert_allclose(w.sum(axis=1).reshape(COARSE.shape), COARSE.cell_area(), rtol=1e-12)
    np.testing.assert_allclose(w.sum(axis=0).reshape(FINE.shape), FINE.cell_area(), rtol=1e-12)


def test_area_weights__sampling_conserves_source_area_across_crs():
    w = area_weights(FINE, EASE, subsample=3)
    assert w.sum() == pytest.approx(FINE.cell_area().sum(), rel=1e-12)
    # Coarse source (EASE 36 km) to fine lat-lon: the target cells are sampled instead,
    # and every fine target cell inside the EASE cells gets its full area.
    inner = Grid.latlon((100.2, 100.8, 30.2, 30.8), 0.02)
    wt = area_weights(EASE, inner)
    np.testing.assert_allclose(wt.sum(axis=1).reshape(inner.shape), inner.cell_area(), rtol=1e-12)


def test_auto_subsample__depends_on_cell_size_ratio():
    assert auto_subsample(FINE, EASE) == 2  # ~18x ratio
    # 0.3 deg at 30.5 N is ~28.7 x 33.3 km, EASE 36 km cells are 1.16x larger: ceil(8 / 1.16) = 7
    assert auto_subsample(Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.3), EASE) == 7
    assert auto_subsample(EASE, EASE) == 8
    assert Regridder(FINE, EASE, "mean").subsample == 2  # the automatic choice is recorded
    assert Regridder(FINE, COARSE, "mean").subsample is None  # same CRS: exact overlaps
    with pytest.raises(GridError, match="positive number of points"):
        area_weights(FINE, EASE, subsample=0)


@pytest.mark.parametrize("method", sorted(REGRID_METHODS))
def test_regridder_save__round_trip(tmp_path, method):
    source, target = (COARSE, FINE) if method in ("broadcast", "bilinear") else (FINE, EASE)
    rg = Regridder(source, target, method, min_valid_fraction=0.3)
    path = rg.save(tmp_path / "weights")
    assert path.name == "weights.npz"
    loaded = Regridder.load(path, source, target)
    assert loaded.method == method and loaded.min_valid_fraction == 0.3
    np.testing.assert_array_equal(loaded.weights.indptr, rg.weights.indptr)
    np.testing.assert_array_equal(loaded.weights.indices, rg.weights.indices)
    np.testing.assert_array_equal(loaded.weights.data, rg.weights.data)
    values = np.random.default_rng(0).random((2, *source.shape))
    values[0, :3] = np.nan
    np.testing.assert_array_equal(loaded.regrid_array(values), rg.regrid_array(values))
    assert Regridder.load(path, source, target, min_valid_fraction=0.9).min_valid_fraction == 0.9
    with np.load(path) as npz:
        meta = json.loads(str(npz["metadata"].item()))
    assert meta["method"] == method and meta["soilfuse_version"] == __version__
    assert meta["source"]["shape"] == list(source.shape)
    assert meta["target"]["crs_wkt"] == target.crs.to_wkt()


def test_regridder_load__refuses_other_grids(tmp_path):
    path = Regridder(FINE, COARSE, "mean").save(tmp_path / "w.npz")
    shifted = Grid.latlon((100.1, 101.1, 30.0, 31.0), 0.1)
    with pytest.raises(GridError, match="computed for target grid"):
        Regridder.load(path, FINE, shifted)
    with pytest.raises(GridError, match="computed for source grid"):
        Regridder.load(path, COARSE, FINE)
    with pytest.raises(GridError, match="computed for target grid"):
        Regridder.load(path, FINE, Grid.projected("EPSG:3857", (0.0, 1e6, 0.0, 1e6), 1e5))


def test_regridder_load__refuses_foreign_files(tmp_path):
    foreign = tmp_path / "other.npz"
    np.savez(foreign, a=np.arange(3))
    with pytest.raises(DataError, match="not a soilfuse regridding weights file"):
        Regridder.load(foreign, FINE, COARSE)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, data=np.ones(1), indices=np.zeros(1), indptr=np.zeros(2), shape=np.array([1, 1]),
             metadata=np.asarray(json.dumps({"format": "xesmf"})))
    with pytest.raises(DataError, match="expected 'soilfuse-regrid-weights'"):
        Regridder.load(wrong, FINE, COARSE)
