"""Triple collocation: error variances of three products without knowing the truth.

Given three collocated series ``x``, ``y``, ``z`` measuring the same signal ``T`` with
independent, zero-mean errors (``i = a_i + b_i T + e_i``), the covariances between
pairs are free of error, and each product's error variance and sensitivity follow from
them (covariance notation of McColl et al., 2014, and Gruber et al., 2016)::

    err_var_x  = var(x) - cov(x, y) cov(x, z) / cov(y, z)
    sens_x     = sqrt(cov(x, y) cov(x, z) / cov(y, z))        (= |b_x| std(T))
    snr_x [dB] = -10 log10(|var(x) cov(y, z) / (cov(x, y) cov(x, z)) - 1|)
    rho2_x     = cov(x, y) cov(x, z) / (var(x) cov(y, z))     (squared correlation with T)

and cyclically for ``y`` and ``z``. ``err_std`` is in each product's own unit;
``err_std_scaled`` rescales it to the reference product (``beta_y = cov(x, z) /
cov(y, z)`` for reference ``x``), the quantity pytesmo's ``tcol_metrics`` returns.
Covariances are sample covariances (``n - 1``), as in pytesmo. The SNR takes the
absolute value inside the logarithm (Gruber et al., 2020); a negative error-variance
estimate (sampling noise, or violated assumptions) gives NaN ``err_std``.

Li et al. (2022) name triple collocation as a way to assess their product where
stations are sparse.

Usage
-----
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> truth = rng.normal(0.25, 0.05, 20000)
>>> x = truth + rng.normal(0, 0.02, truth.size)
>>> y = 0.1 + 0.5 * truth + rng.normal(0, 0.01, truth.size)
>>> z = truth + rng.normal(0, 0.03, truth.size)
>>> res = triple_collocation(x, y, z)
>>> np.round(res.err_std, 3).tolist()
[0.02, 0.01, 0.03]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import xarray as xr

from soilfuse._typing import FloatArray
from soilfuse.exceptions import ConfigError, DataError

__all__ = ["TripleCollocationResult", "triple_collocation", "triple_collocation_map"]


class TripleCollocationResult(NamedTuple):
    """Triple-collocation estimates; each array has a leading axis of length 3 (x, y, z)."""

    err_std: FloatArray
    err_std_scaled: FloatArray
    snr_db: FloatArray
    sensitivity: FloatArray
    rho2: FloatArray
    beta: FloatArray
    n: FloatArray


def triple_collocation(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    axis: int = -1,
    ref: int = 0,
) -> TripleCollocationResult:
    """Triple-collocation error std, SNR and sensitivity of three collocated products.

    Parameters
    ----------
    x, y, z : array_like
        Collocated series (same unit or not), time along ``axis``; NaN marks missing.
        Only times where all three are finite count.
    axis : int
        Time axis.
    ref : {0, 1, 2}
        Product whose unit ``err_std_scaled`` and ``beta`` refer to.

    Returns
    -------
    TripleCollocationResult
        ``err_std`` (own units), ``err_std_scaled`` (reference units), ``snr_db`` (dB),
        ``sensitivity`` (own units), ``rho2`` (dimensionless), ``beta`` (scaling to the
        reference: ``i * beta_i`` is in reference units), each shaped ``(3, ...)``, and
        ``n`` (samples used) shaped ``(...)``. Fewer than 3 samples give NaN.

    Raises
    ------
    ConfigError
        If ``ref`` is not 0, 1 or 2.
    """
    if ref not in (0, 1, 2):
        msg = f"ref must be 0, 1 or 2 (index of x, y or z); got {ref!r}."
        raise ConfigError(msg)
    arrs = np.broadcast_arrays(*(np.asarray(a, dtype="float64") for a in (x, y, z)))
    data = np.stack([np.moveaxis(a, axis, -1) for a in arrs])  # (3, ..., n)
    valid = np.isfinite(data).all(axis=0)
    n = valid.sum(axis=-1).astype("float64")
    d = np.where(valid, data, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = d.sum(axis=-1) / n
        dc = np.where(valid, d - mean[..., None], 0.0)
        dof = np.where(n > 2, n - 1.0, np.nan)
        cov = np.einsum("i...t,j...t->ij...", dc, dc) / dof  # (3, 3, ...)
        err_var = np.empty((3, *n.shape))
        signal = np.empty((3, *n.shape))
        snr = np.empty((3, *n.shape))
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            signal[i] = cov[i, j] * cov[i, k] / cov[j, k]
            err_var[i] = cov[i, i] - signal[i]
            snr[i] = -10.0 * np.log10(np.abs(cov[i, i] / signal[i] - 1.0))
        beta = np.empty((3, *n.shape))
        others = [i for i in range(3) if i != ref]
        for i in range(3):
            if i == ref:
                beta[i] = 1.0
            else:
                other = others[0] if others[0] != i else others[1]
                beta[i] = cov[ref, other] / cov[i, other]
        err_std = np.sqrt(err_var)
        sensitivity = np.sqrt(signal)
        rho2 = signal / np.stack([cov[i, i] for i in range(3)])
    return TripleCollocationResult(err_std, err_std * np.abs(beta), snr, sensitivity, rho2, beta, n)


def triple_collocation_map(
    x: xr.DataArray,
    y: xr.DataArray,
    z: xr.DataArray,
    *,
    dim: str = "time",
    ref: int = 0,
) -> xr.Dataset:
    """Per-pixel triple collocation of three gridded products (xarray front, lazy with Dask).

    Parameters
    ----------
    x, y, z : xarray.DataArray
        Products on the same grid and ``dim``; their names label the ``product`` axis
        (``"x"``, ``"y"``, ``"z"`` when unnamed).
    dim : str
        Time dimension.
    ref : {0, 1, 2}
        Reference product for ``err_std_scaled`` and ``beta``.

    Returns
    -------
    xarray.Dataset
        The fields of :class:`TripleCollocationResult`, each with a ``product``
        dimension (except ``n``), on the inputs' other dims.

    Raises
    ------
    DataError
        If ``dim`` is missing from an input.
    """
    inputs = [x, y, z]
    for name, da in zip("xyz", inputs, strict=True):
        if dim not in da.dims:
            msg = f"Input {name} has no {dim!r} dimension (dims: {da.dims})."
            raise DataError(msg)
    labels = [str(da.name) if da.name is not None else default for da, default in zip(inputs, "xyz", strict=True)]
    if len(set(labels)) < 3:
        labels = ["x", "y", "z"]
    if any(da.chunks is not None for da in inputs):
        inputs = [da.chunk({dim: -1}) for da in inputs]

    def kernel(a: FloatArray, b: FloatArray, c: FloatArray) -> tuple[FloatArray, ...]:
        res = triple_collocation(a, b, c, ref=ref)
        moved = [np.moveaxis(v, 0, -1) for v in res[:-1]]
        return (*moved, res.n)

    fields = TripleCollocationResult._fields
    outs = xr.apply_ufunc(
        kernel,
        *inputs,
        input_core_dims=[[dim]] * 3,
        output_core_dims=[["product"]] * (len(fields) - 1) + [[]],
        dask="parallelized",
        output_dtypes=["float64"] * len(fields),
        dask_gufunc_kwargs={"output_sizes": {"product": 3}},
    )
    ds = xr.Dataset(dict(zip(fields, outs, strict=True))).assign_coords(product=labels)
    ds["snr_db"].attrs["units"] = "dB"
    ds.attrs["reference_product"] = labels[ref]
    return ds
