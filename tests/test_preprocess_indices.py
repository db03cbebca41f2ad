"""Spectral indices against hand-computed values and their invalid-input rules."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from soilfuse.exceptions import MissingVariableError, UnitsError
from soilfuse.preprocess import INDICES, evi, lswi, ndvi, ndwi, nmdi, nsdsi, spectral_indices
from soilfuse.preprocess.indices import evi_kernel, normalized_difference_kernel

FUNCS = {"ndvi": ndvi, "evi": evi, "ndwi": ndwi, "lswi": lswi, "nsdsi": nsdsi, "nmdi": nmdi}

# b1 red, b2 NIR, b3 blue, b4 green, b5, b6 SWIR 1.64, b7 SWIR 2.13
GOOD = {1: 0.1, 2: 0.5, 3: 0.05, 4: 0.2, 5: 0.45, 6: 0.3, 7: 0.1}
# hand-computed from GOOD
EXPECTED = {
    "ndvi": 0.4 / 0.6,                     # (0.5 - 0.1) / (0.5 + 0.1)
    "evi": 1.0 / 1.725,                    # 2.5 * 0.4 / (0.5 + 0.6 - 0.375 + 1)
    "ndwi": -0.3 / 0.7,                    # (0.2 - 0.5) / (0.2 + 0.5)
    "lswi": 0.2 / 0.8,                     # (0.5 - 0.3) / (0.5 + 0.3)
    "nsdsi": 0.2 / 0.3,                    # (0.3 - 0.1) / 0.3
    "nmdi": 0.3 / 0.7,                     # (0.5 - 0.2) / (0.5 + 0.2)
}


def bands(rows: list[dict[int, float]], dtype: str = "float64") -> xr.Dataset:
    data = {f"refl_b{b}": ("x", np.array([r[b] for r in rows], dtype=dtype), {"units": "1"}) for b in range(1, 8)}
    return xr.Dataset(data, coords={"x": np.arange(len(rows), dtype=float)})


@pytest.mark.parametrize("name", sorted(INDICES))
def test_index__hand_computed_value(name: str) -> None:
    out = FUNCS[name](bands([GOOD]))
    assert out.name == name
    assert out.attrs["units"] == "1"
    np.testing.assert_allclose(out.values, [EXPECTED[name]], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(INDICES))
def test_index__nan_input_propagates(name: str) -> None:
    for band in INDICES[name].bands:
        row = dict(GOOD)
        row[int(band[-1])] = np.nan
        assert np.isnan(FUNCS[name](bands([row])).values[0]), band


@pytest.mark.parametrize("name", sorted(INDICES))
def test_index__reflectance_out_of_range_is_nan(name: str) -> None:
    for band in INDICES[name].bands:
        for bad in (-0.02, 1.7):
            row = dict(GOOD)
            row[int(band[-1])] = bad
            assert np.isnan(FUNCS[name](bands([row])).values[0]), (band, bad)


def test_index__slightly_negative_reflectance_is_valid() -> None:
    row = dict(GOOD)
    row[1] = -0.005  # inside the [-0.01, 1.6] valid range
    np.testing.assert_allclose(ndvi(bands([row])).values, [(0.5 + 0.005) / (0.5 - 0.005)], rtol=1e-12)


def test_index__zero_denominators_are_nan() -> None:
    rows = [
        {**GOOD, 1: 0.0, 2: 0.0},              # NDVI: b2 + b1 = 0
        {**GOOD, 4: 0.0, 2: 0.0},              # NDWI
        {**GOOD, 2: 0.0, 6: 0.0},              # LSWI
        {**GOOD, 6: 0.0},                      # NSDSI: b6 = 0
        {**GOOD, 2: 0.1, 6: 0.0, 7: 0.1},      # NMDI: b2 + (b6 - b7) = 0
        {**GOOD, 1: 0.5, 2: 0.5, 3: 0.6},      # EVI: 0.5 + 3 - 4.5 + 1 = 0
        {**GOOD, 1: 0.00002, 2: 0.00002},      # NDVI: |sum| below half a MODIS quantum
    ]
    ds = bands(rows)
    assert np.isnan(ndvi(ds).values[[0, 6]]).all()
    assert np.isnan(ndwi(ds).values[1])
    assert np.isnan(lswi(ds).values[2])
    assert np.isnan(nsdsi(ds).values[3])
    assert np.isnan(nmdi(ds).values[4])
    assert np.isnan(evi(ds).values[5])


def test_evi__unstable_denominator_outside_range_is_nan() -> None:
    # snow-like: 0.8 + 6*0.85 - 7.5*0.86 + 1 = 0.45 -> EVI = 2.5*(-0.05)/0.45 = -0.2778 (kept)
    # denominator 0.8 + 6*0.85 - 7.5*0.92 + 1 = 0.0 -> NaN; 0.8 + 5.1 - 6.87 + 1 = 0.03 -> -4.17 -> NaN
    out = evi_kernel(np.array([0.85, 0.85, 0.85]), np.array([0.80, 0.80, 0.80]), np.array([0.86, 0.92, 0.916]))
    np.testing.assert_allclose(out[0], 2.5 * -0.05 / 0.45, rtol=1e-12)
    assert np.isnan(out[1:]).all()


def test_index__float32_in_float32_out() -> None:
    out = ndvi(bands([GOOD], dtype="float32"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.values, [EXPECTED["ndvi"]], rtol=1e-6)


def test_normalized_difference_kernel__broadcasts() -> None:
    out = normalized_difference_kernel(np.array([[0.5], [0.3]]), np.array([0.1, 0.5]))
    np.testing.assert_allclose(out, [[4 / 6, 0.0], [2 / 4, -2 / 8]])


def test_spectral_indices__all_by_default_and_input_untouched() -> None:
    ds = bands([GOOD, {**GOOD, 2: np.nan}])
    before = ds.copy(deep=True)
    out = spectral_indices(ds)
    assert sorted(map(str, out.data_vars)) == sorted(INDICES)
    for name, value in EXPECTED.items():
        np.testing.assert_allclose(out[name].values[0], value, rtol=1e-12)
    xr.testing.assert_identical(ds, before)


def test_spectral_indices__unknown_name_raises() -> None:
    with pytest.raises(MissingVariableError, match="Unknown spectral index"):
        spectral_indices(bands([GOOD]), ["ndvi", "xyz"])


def test_index__missing_band_raises() -> None:
    with pytest.raises(MissingVariableError, match="refl_b3"):
        evi(bands([GOOD]).drop_vars("refl_b3"))


def test_index__percent_reflectance_raises() -> None:
    ds = bands([GOOD])
    ds["refl_b1"].attrs["units"] = "%"
    with pytest.raises(UnitsError, match="refl_b1"):
        ndvi(ds)
