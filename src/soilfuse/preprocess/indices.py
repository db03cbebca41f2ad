"""Spectral indices from MODIS band reflectances: NDVI, EVI, NDWI, LSWI, NSDSI, NMDI.

Bands follow the canonical names of ``docs/conventions.md`` (MODIS numbering):
``refl_b1`` red (620-670 nm), ``refl_b2`` NIR (841-876 nm), ``refl_b3`` blue,
``refl_b4`` green, ``refl_b5`` 1.24 µm, ``refl_b6`` 1.64 µm SWIR, ``refl_b7``
2.13 µm SWIR, all dimensionless surface reflectance.

==========  ======================================================  ================================
index       formula                                                 reference
==========  ======================================================  ================================
``ndvi``    (b2 − b1) / (b2 + b1)                                   Rouse et al. (1974)
``evi``     2.5 (b2 − b1) / (b2 + 6 b1 − 7.5 b3 + 1), NaN outside ±1   Huete et al. (2002); seed 000 eq. 1
``ndwi``    (b4 − b2) / (b4 + b2)                                   McFeeters (1996); seed 004 eq. 1
``lswi``    (b2 − b6) / (b2 + b6)                                   Xiao et al. (2004); seed 004 eq. 2
``nsdsi``   (b6 − b7) / b6                                          Yue et al. (2019); seed 004 eq. 3
``nmdi``    (b2 − (b6 − b7)) / (b2 + (b6 − b7))                     Wang and Qu (2007); seed 003
==========  ======================================================  ================================

Invalid inputs give NaN, never a number: a NaN band, a reflectance outside the
physical range [−0.01, 1.6] (:data:`REFLECTANCE_RANGE`, the MODIS valid range
allowing slightly negative atmospheric-correction undershoot), or a denominator
smaller in magnitude than :data:`DENOMINATOR_EPS` (half the MODIS reflectance
quantum of 1e-4). Results are not clipped; the docstrings give each index's
theoretical range.

Every function takes a :class:`xarray.Dataset` holding the bands it needs and returns a
lazy (when the input is Dask-backed) :class:`xarray.DataArray` with the input's coords
(CRS on ``spatial_ref`` kept), float32 unless an input is float64. The numpy kernels
(:func:`normalized_difference_kernel` …) are usable on plain arrays.

Usage
-----
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({f"refl_b{b}": ("x", np.array([v])) for b, v in
...                  zip(range(1, 8), [0.05, 0.40, 0.03, 0.08, 0.35, 0.25, 0.15])})
>>> round(float(ndvi(ds)[0]), 4), round(float(evi(ds)[0]), 4)
(0.7778, 0.5932)
>>> ds_idx = spectral_indices(ds, ["lswi", "nmdi"])
>>> [round(float(ds_idx[k][0]), 4) for k in ("lswi", "nmdi")]
[0.2308, 0.6]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from soilfuse._typing import FloatArray
from soilfuse.exceptions import MissingVariableError
from soilfuse.preprocess._common import annotate, float_dtype, require, variable_as

__all__ = [
    "DENOMINATOR_EPS",
    "EVI_RANGE",
    "INDICES",
    "REFLECTANCE_RANGE",
    "SpectralIndex",
    "evi",
    "evi_kernel",
    "lswi",
    "ndvi",
    "ndwi",
    "nmdi",
    "nmdi_kernel",
    "normalized_difference_kernel",
    "nsdsi",
    "nsdsi_kernel",
    "spectral_indices",
]

#: Physically valid surface reflectance (dimensionless); values outside give NaN.
REFLECTANCE_RANGE: tuple[float, float] = (-0.01, 1.6)

#: Denominators with a smaller magnitude give NaN (half the MODIS quantum 1e-4).
DENOMINATOR_EPS = 5e-5

#: EVI outside this range (an unstable denominator) gives NaN; the canonical valid range of ``evi``.
EVI_RANGE: tuple[float, float] = (-1.0, 1.0)


# ====================================================================== numpy kernels
def _valid(*bands: FloatArray) -> np.ndarray:
    lo, hi = REFLECTANCE_RANGE
    ok = np.ones(np.broadcast_shapes(*(b.shape for b in bands)), dtype=bool)
    for b in bands:
        ok &= np.isfinite(b) & (b >= lo) & (b <= hi)
    return ok


def _ratio(num: FloatArray, den: FloatArray, ok: np.ndarray, dtype: np.dtype) -> FloatArray:
    ok = ok & (np.abs(den) >= DENOMINATOR_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
    return out.astype(dtype, copy=False)


def normalized_difference_kernel(a: FloatArray, b: FloatArray) -> FloatArray:
    """``(a − b) / (a + b)`` with NaN for invalid reflectance or a near-zero sum.

    Parameters
    ----------
    a, b : numpy.ndarray
        Reflectances (1), broadcastable.

    Returns
    -------
    numpy.ndarray
        In [−1, 1] for non-negative reflectances; float32 unless an input is float64.
    """
    dtype = float_dtype(a, b)
    a64, b64 = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    return _ratio(a64 - b64, a64 + b64, _valid(a64, b64), dtype)


def evi_kernel(red: FloatArray, nir: FloatArray, blue: FloatArray) -> FloatArray:
    """EVI = 2.5 (NIR − red) / (NIR + 6 red − 7.5 blue + 1) (Huete et al. 2002).

    Returns
    -------
    numpy.ndarray
        Dimensionless in [−1, 1]. The denominator can approach zero over bright
        targets (snow, residual cloud: blue ≈ red), where EVI blows up; values
        outside :data:`EVI_RANGE` are therefore NaN.
    """
    dtype = float_dtype(red, nir, blue)
    r, n, bl = (np.asarray(v, dtype="float64") for v in (red, nir, blue))
    out = _ratio(2.5 * (n - r), n + 6.0 * r - 7.5 * bl + 1.0, _valid(r, n, bl), np.dtype("float64"))
    lo, hi = EVI_RANGE
    return np.where((out >= lo) & (out <= hi), out, np.nan).astype(dtype, copy=False)


def nsdsi_kernel(swir1: FloatArray, swir2: FloatArray) -> FloatArray:
    """NSDSI = (b6 − b7) / b6, NaN where b6 is (near) zero.

    Returns
    -------
    numpy.ndarray
        Dimensionless, at most 1 for non-negative b7; unbounded below as b6 → 0.
    """
    dtype = float_dtype(swir1, swir2)
    s1, s2 = np.asarray(swir1, dtype="float64"), np.asarray(swir2, dtype="float64")
    return _ratio(s1 - s2, s1, _valid(s1, s2), dtype)


def nmdi_kernel(nir: FloatArray, swir1: FloatArray, swir2: FloatArray) -> FloatArray:
    """NMDI = (R860 − (R1640 − R2130)) / (R860 + (R1640 − R2130)) (Wang and Qu 2007).

    Returns
    -------
    numpy.ndarray
        Dimensionless, in [−1, 1] when NIR ≥ |R1640 − R2130|; NaN for a near-zero denominator.
    """
    dtype = float_dtype(nir, swir1, swir2)
    n, s1, s2 = (np.asarray(v, dtype="float64") for v in (nir, swir1, swir2))
    diff = s1 - s2
    return _ratio(n - diff, n + diff, _valid(n, s1, s2), dtype)


# ====================================================================== registry
@dataclass(frozen=True)
class SpectralIndex:
    """A spectral index: the bands it reads (in kernel order), its kernel and CF attributes."""

    name: str
    bands: tuple[str, ...]
    kernel: Callable[..., FloatArray]
    long_name: str
    valid_range: tuple[float, float]
    reference: str

    def attrs(self) -> dict[str, object]:
        """CF attributes of the index."""
        return {
            "units": "1",
            "long_name": self.long_name,
            "valid_min": self.valid_range[0],
            "valid_max": self.valid_range[1],
            "comment": (
                f"computed from {', '.join(self.bands)} ({self.reference}); NaN where a band is NaN or "
                f"outside {list(REFLECTANCE_RANGE)}, or the denominator is below {DENOMINATOR_EPS:g} in magnitude"
            ),
        }


#: Registry of the spectral indices, by canonical name (tests iterate over it).
INDICES: Mapping[str, SpectralIndex] = {
    idx.name: idx
    for idx in (
        SpectralIndex("ndvi", ("refl_b2", "refl_b1"), normalized_difference_kernel,
                      "normalised difference vegetation index", (-1.0, 1.0), "Rouse et al. 1974"),
        SpectralIndex("evi", ("refl_b1", "refl_b2", "refl_b3"), evi_kernel,
                      "enhanced vegetation index", (-1.0, 1.0), "Huete et al. 2002"),
        SpectralIndex("ndwi", ("refl_b4", "refl_b2"), normalized_difference_kernel,
                      "normalised difference water index (green, NIR)", (-1.0, 1.0), "McFeeters 1996"),
        SpectralIndex("lswi", ("refl_b2", "refl_b6"), normalized_difference_kernel,
                      "land surface water index (NIR, SWIR 1.64 um)", (-1.0, 1.0), "Xiao et al. 2004"),
        SpectralIndex("nsdsi", ("refl_b6", "refl_b7"), nsdsi_kernel,
                      "normalised shortwave-infrared difference soil-moisture index", (-np.inf, 1.0),
                      "Yue et al. 2019"),
        SpectralIndex("nmdi", ("refl_b2", "refl_b6", "refl_b7"), nmdi_kernel,
                      "normalised multi-band drought index", (-1.0, 1.0), "Wang and Qu 2007"),
    )
}


# ====================================================================== xarray wrappers
def _compute(ds: xr.Dataset, name: str) -> xr.DataArray:
    spec = INDICES[name]
    bands = [variable_as(b, str(b.name)) for b in require(ds, spec.bands, what=f"{name}()")]
    dtype = float_dtype(*bands)
    out = xr.apply_ufunc(spec.kernel, *bands, dask="parallelized", output_dtypes=[dtype],
                         keep_attrs=False)
    return annotate(out, name, spec.attrs())


def ndvi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised difference vegetation index (b2 − b1) / (b2 + b1).

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``refl_b1`` (red) and ``refl_b2`` (NIR), reflectance (1).

    Returns
    -------
    xarray.DataArray
        ``ndvi`` (1), in [−1, 1]; NaN where inputs are invalid (see module docstring).

    Raises
    ------
    MissingVariableError
        If a band is missing.
    UnitsError
        If a band declares units other than ``"1"``.
    """
    return _compute(ds, "ndvi")


def evi(ds: xr.Dataset) -> xr.DataArray:
    """Enhanced vegetation index 2.5 (b2 − b1) / (b2 + 6 b1 − 7.5 b3 + 1) (Huete et al. 2002).

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``refl_b1`` (red), ``refl_b2`` (NIR), ``refl_b3`` (blue), reflectance (1).

    Returns
    -------
    xarray.DataArray
        ``evi`` (1) in [−1, 1]; NaN where inputs are invalid, the denominator is near
        zero, or the value falls outside [−1, 1] (unstable denominator over snow or cloud).

    Raises
    ------
    MissingVariableError
        If a band is missing.
    """
    return _compute(ds, "evi")


def ndwi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised difference water index (b4 − b2) / (b4 + b2) (green and NIR).

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``refl_b2`` (NIR) and ``refl_b4`` (green), reflectance (1).

    Returns
    -------
    xarray.DataArray
        ``ndwi`` (1), in [−1, 1]; positive over open water.
    """
    return _compute(ds, "ndwi")


def lswi(ds: xr.Dataset) -> xr.DataArray:
    """Land surface water index (b2 − b6) / (b2 + b6) (NIR and 1.64 µm SWIR).

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``refl_b2`` and ``refl_b6``, reflectance (1).

    Returns
    -------
    xarray.DataArray
        ``lswi`` (1), in [−1, 1]; larger for wetter canopies and soils.
    """
    return _compute(ds, "lswi")


def nsdsi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised shortwave-infrared difference soil-moisture index (b6 − b7) / b6.

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``refl_b6`` and ``refl_b7``, reflectance (1).

    Returns
    -------
    xarray.DataArray
        ``nsdsi`` (1), at most 1; NaN where b6 is near zero.
    """
    return _compute(ds, "nsdsi")


def nmdi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised multi-band drought index (b2 − (b6 − b7)) / (b2 + (b6 − b7)).

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``refl_b2`` (860 nm), ``refl_b6`` (1640 nm) and ``refl_b7`` (2130 nm), reflectance (1).

    Returns
    -------
    xarray.DataArray
        ``nmdi`` (1), usually in [−1, 1]; lower for wetter soils (Wang and Qu 2007).
    """
    return _compute(ds, "nmdi")


def spectral_indices(ds: xr.Dataset, names: Sequence[str] | None = None) -> xr.Dataset:
    """Several spectral indices at once.

    Parameters
    ----------
    ds : xarray.Dataset
        Band reflectances ``refl_b1`` … ``refl_b7`` (only those the indices need).
    names : sequence of str, optional
        Index names from :data:`INDICES`; all of them by default.

    Returns
    -------
    xarray.Dataset
        One variable per index, on the input's coords.

    Raises
    ------
    MissingVariableError
        If an index name is unknown or a band it needs is missing.
    """
    wanted = list(INDICES) if names is None else list(names)
    unknown = [n for n in wanted if n not in INDICES]
    if unknown:
        msg = f"Unknown spectral index {unknown}; known: {sorted(INDICES)}."
        raise MissingVariableError(msg)
    return xr.Dataset({n: _compute(ds, n) for n in wanted})
