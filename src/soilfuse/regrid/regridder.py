"""The :class:`Regridder`: weights computed once per grid pair, applied lazily to xarray objects.

The numpy kernels live in :mod:`soilfuse.regrid._weights` (building) and
:mod:`soilfuse.regrid._apply` (applying); this module handles dims, coordinates,
attributes, Dask chunks and the weights file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args

import numpy as np
import xarray as xr
from affine import Affine
from scipy import sparse

from soilfuse._typing import FloatArray, IntArray, RegridMethod
from soilfuse.exceptions import DataError, GridError, SoilfuseWarning
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.regrid._apply import apply_weights, output_dtype
from soilfuse.regrid._weights import (
    area_weights,
    auto_subsample,
    bilinear_weights,
    nearest_weights,
    same_crs,
    typical_cell_area,
)

__all__ = ["REGRID_METHODS", "RegridWarning", "Regridder"]

logger = logging.getLogger(__name__)

XarrayObj = TypeVar("XarrayObj", xr.Dataset, xr.DataArray)

#: Weight builders by method name: ``f(source, target, subsample) -> csr_array``.
REGRID_METHODS: Mapping[str, Callable[[Grid, Grid, int | None], sparse.csr_array]] = {
    "bilinear": lambda s, t, k: bilinear_weights(s, t),
    "nearest": lambda s, t, k: nearest_weights(s, t),
    "mean": lambda s, t, k: area_weights(s, t, subsample=k),
    "broadcast": lambda s, t, k: nearest_weights(s, t),
}

#: A Dask block of source data (float64 working copy, mask and products) above this many
#: bytes makes :meth:`Regridder.__call__` warn that the plan is too large.
MAX_BLOCK_BYTES = 2 * 2**30

#: Weights using at most this share of the source cells are applied to the used cells only.
_COMPACT_SHARE = 0.5

_FORMAT = "soilfuse-regrid-weights"
_FORMAT_VERSION = 1
_FRACTION_SUFFIX = "_valid_fraction"


class RegridWarning(SoilfuseWarning):
    """A regridding plan is likely to be slow, use too much memory or lose information."""


class Regridder:
    """Regridding weights from one grid to another, computed once and applied many times.

    Parameters
    ----------
    source, target : Grid
        Grids of the input data and of the result (any CRSs: lat-lon, EASE-Grid 2.0,
        other projections).
    method : {"bilinear", "nearest", "mean", "broadcast"}
        ``"bilinear"``: interpolation at target cell centres transformed into the
        source CRS (exact on fields linear in the source coordinates); for fine →
        similar or coarse → fine. ``"nearest"``: value of the source cell containing the
        target centre. ``"mean"``: area-weighted mean of the source cells overlapping
        each target cell (fine → coarse aggregation; exact overlaps in one CRS,
        sub-sampled across CRSs, see :mod:`soilfuse.regrid`).
        ``"broadcast"``: coarse → fine disaggregation, each fine cell takes the coarse
        cell containing its centre.
    min_valid_fraction : float, default 0.5
        A target value is computed only where the valid (non-NaN) source cells carry at
        least this fraction of its total weight (0-1). For ``"mean"`` that is the valid
        fraction of the target cell's area covered by the source grid; for
        ``"bilinear"`` the weights of the valid neighbours, which are then renormalised
        to sum to 1. ``0`` keeps any target with one valid contributor.
    subsample : int, optional
        Points per cell side when ``"mean"`` crosses CRSs; ``None`` picks 2 to 8 from the
        cell-size ratio (see :mod:`soilfuse.regrid`) and stores the choice here.

    Attributes
    ----------
    source, target : Grid
        The grids the weights were built for.
    method : str
        The regridding method.
    min_valid_fraction : float
        As given.
    subsample : int or None
        ``k`` used for ``"mean"`` across CRSs, None otherwise.
    weights : scipy.sparse.csr_array
        ``(target cells, source cells)`` over C-ordered ``(y, x)`` cells: interpolation
        weights (rows sum to 1) or overlap areas in m² for ``"mean"``.

    Raises
    ------
    GridError
        If the method is unknown, ``min_valid_fraction`` is outside 0-1, or no target
        cell receives any source data (grids do not overlap).

    Warns
    -----
    RegridWarning
        With ``"broadcast"`` when target cells are larger than source cells.

    Examples
    --------
    >>> from soilfuse.grid import Grid
    >>> fine = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.01)
    >>> coarse = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    >>> rg = Regridder(fine, coarse, "mean")
    >>> rg.weights.shape, rg.weights.nnz
    ((100, 10000), 10000)
    """

    def __init__(
        self,
        source: Grid,
        target: Grid,
        method: RegridMethod = "bilinear",
        *,
        min_valid_fraction: float = 0.5,
        subsample: int | None = None,
    ) -> None:
        _check_args(source, target, method, min_valid_fraction)
        if method == "mean" and subsample is None and not same_crs(source.crs, target.crs):
            subsample = auto_subsample(source, target)
        logger.debug("building %s weights %r -> %r", method, source, target)
        weights = REGRID_METHODS[method](source, target, subsample)
        if weights.nnz == 0:
            msg = (
                f"No target cell receives data from the source grid: {source!r} and {target!r} "
                "do not overlap. Check the CRS attached to the data and the target region."
            )
            raise GridError(msg)
        if method == "broadcast":
            _check_broadcast(source, target)
        self._init(source, target, method, weights, min_valid_fraction, subsample)

    def _init(
        self,
        source: Grid,
        target: Grid,
        method: str,
        weights: sparse.csr_array,
        min_valid_fraction: float,
        subsample: int | None,
    ) -> None:
        self.source = source
        self.target = target
        self.method = method
        self.min_valid_fraction = float(min_valid_fraction)
        self.subsample = subsample
        self.weights = sparse.csr_array(weights, dtype="float64")
        # When most source cells get no weight (a coarse or small target), gather only the
        # used ones from each block: the NaN scan and products then touch far less data.
        used = np.zeros(self.weights.shape[1], dtype=bool)
        used[self.weights.indices] = True
        self._columns: IntArray | None = None
        self._compact = self.weights
        if used.sum() <= _COMPACT_SHARE * used.size:
            self._columns = np.flatnonzero(used)
            self._compact = sparse.csr_array(self.weights[:, self._columns])
        self._row_sums = np.asarray(self._compact @ np.ones(self._compact.shape[1]))

    # ------------------------------------------------------------------ applying
    def __call__(self, obj: XarrayObj, *, return_valid_fraction: bool = False) -> Any:
        """Regrid a Dataset or DataArray with dims ``(..., y, x)`` on :attr:`source`.

        Parameters
        ----------
        obj : xarray.Dataset or xarray.DataArray
            Data on the source grid; numpy- or Dask-backed. Any leading dims
            (``time``, ``depth``) are kept with their chunks; the source ``y``/``x``
            dims are rechunked to one chunk, because every target cell may draw on
            any source cell.
        return_valid_fraction : bool, default False
            Add ``<name>_valid_fraction`` (0-1, unit ``1``) for every regridded
            variable: the fraction of each target's weight (area for ``"mean"``) that
            came from valid source cells. A DataArray then becomes a Dataset of both.

        Returns
        -------
        xarray.Dataset or xarray.DataArray
            Same type (Dataset if ``return_valid_fraction``), on :attr:`target`, with
            attributes kept, the target's ``x``, ``y`` and ``spatial_ref`` coordinates,
            float32 kept as float32 (other types become float64), and lazy if the
            input was. Variables with only one of ``y``/``x`` and coordinates along
            them are dropped; variables without them are kept unchanged.

        Raises
        ------
        GridError
            If ``obj`` is not on :attr:`source`.

        Warns
        -----
        RegridWarning
            If one Dask block of source data would exceed :data:`MAX_BLOCK_BYTES`.
        """
        return self._apply(obj, return_valid_fraction, stacklevel=3)

    def _apply(self, obj: XarrayObj, return_valid_fraction: bool, *, stacklevel: int) -> Any:
        grid = Grid.from_dataset(obj)
        if grid != self.source:
            msg = (
                f"The data are on {grid!r} but this Regridder was built for {self.source!r}; "
                "build a Regridder for the data's grid (e.g. soilfuse.regrid.regrid(obj, target))."
            )
            raise GridError(msg)
        variables = [obj] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
        for var in variables:
            problem = self._plan_problem(var)
            if problem:
                warnings.warn(problem, RegridWarning, stacklevel=stacklevel)
        if isinstance(obj, xr.DataArray):
            value, fraction = self._regrid_dataarray(obj, return_valid_fraction)
            if fraction is None:
                return with_grid(value, self.target)
            name = str(obj.name) if obj.name is not None else "data"
            ds = xr.Dataset({name: value.rename(name), name + _FRACTION_SUFFIX: fraction})
            return with_grid(ds, self.target)
        return self._regrid_dataset(obj, return_valid_fraction)

    def _regrid_dataset(self, ds: xr.Dataset, return_valid_fraction: bool) -> xr.Dataset:
        out: dict[Hashable, xr.DataArray] = {}
        for name, var in ds.data_vars.items():
            spatial = {"y", "x"} & set(var.dims)
            if spatial == {"y", "x"}:
                value, fraction = self._regrid_dataarray(var, return_valid_fraction)
                out[name] = value
                if fraction is not None:
                    out[f"{name}{_FRACTION_SUFFIX}"] = fraction
            elif spatial:
                logger.info("dropping %r: it has only one of the y, x dims", name)
            else:
                out[name] = var
        coords = {
            k: v for k, v in ds.coords.items()
            if k not in ("y", "x") and not ({"y", "x"} & set(v.dims))
        }
        result = xr.Dataset(out, coords=coords, attrs=ds.attrs)
        return with_grid(result, self.target)

    def _regrid_dataarray(
        self, da: xr.DataArray, return_valid_fraction: bool
    ) -> tuple[xr.DataArray, xr.DataArray | None]:
        dims = da.dims
        drop = [k for k, v in da.coords.items() if k not in ("y", "x") and {"y", "x"} & set(v.dims)]
        data = da.drop_vars(drop)
        if data.chunks is not None:
            data = data.chunk({"y": -1, "x": -1})
        ny, nx = self.target.shape
        dtype = output_dtype(da.dtype)
        n_out = 2 if return_valid_fraction else 1
        core = ["_regrid_y", "_regrid_x"]
        result = xr.apply_ufunc(
            _BlockApplier(self, return_valid_fraction),
            data,
            input_core_dims=[["y", "x"]],
            output_core_dims=[core] * n_out,
            dask="parallelized",
            output_dtypes=[dtype] * n_out,
            dask_gufunc_kwargs={"output_sizes": {"_regrid_y": ny, "_regrid_x": nx}},
            keep_attrs=True,
        )
        outputs = list(result) if return_valid_fraction else [result]
        outputs = [
            o.drop_vars([c for c in ("y", "x") if c in o.coords])
            .rename({"_regrid_y": "y", "_regrid_x": "x"})
            .transpose(*dims)
            for o in outputs
        ]
        value = outputs[0]
        if not return_valid_fraction:
            return value, None
        fraction = outputs[1]
        fraction.attrs = {
            "long_name": f"valid fraction of the source data of {da.name}",
            "units": "1",
            "comment": (
                f"share of each target cell's {self.method} weight that came from valid "
                "(non-NaN) source cells"
            ),
        }
        fraction.name = f"{da.name}{_FRACTION_SUFFIX}"
        return value, fraction

    def _plan_problem(self, var: xr.DataArray) -> str | None:
        """Explain why a Dask plan would be too large, or None if it is fine."""
        if var.chunks is None or not {"y", "x"} <= set(var.dims):
            return None
        lead = [max(c) for d, c in zip(var.dims, var.chunks, strict=True) if d not in ("y", "x")]
        n_lead = math.prod(lead)
        per_step = 17 * math.prod(self.source.shape) + 24 * math.prod(self.target.shape)
        block = n_lead * per_step
        if block <= MAX_BLOCK_BYTES:
            return None
        fit = max(1, MAX_BLOCK_BYTES // per_step)
        return (
            f"Regridding {var.name!r} needs blocks of about {block / 2**30:.1f} GiB "
            f"({n_lead} leading steps x {self.source.shape} source cells, after joining the "
            f"spatial chunks). Rechunk the leading dims to at most {fit} steps per chunk, "
            f"e.g. obj.chunk(time={fit}), or regrid a spatial subset."
        )

    def regrid_array(
        self, data: Any, *, return_valid_fraction: bool = False
    ) -> FloatArray | tuple[FloatArray, FloatArray]:
        """Regrid a numpy array of shape ``(..., ny_source, nx_source)`` (NaN = missing).

        Returns
        -------
        numpy.ndarray or tuple of numpy.ndarray
            Shape ``(..., ny_target, nx_target)``; plus the valid fraction if requested.

        Raises
        ------
        GridError
            If the trailing shape is not the source grid's shape.
        """
        arr = np.asarray(data)
        if arr.ndim < 2 or arr.shape[-2:] != self.source.shape:
            msg = (
                f"Array of shape {arr.shape} does not end with the source grid shape "
                f"{self.source.shape}; put y, x last (e.g. transpose) or use the right Regridder."
            )
            raise GridError(msg)
        return apply_weights(
            arr,
            self._compact,
            self._row_sums,
            self.target.shape,
            min_valid_fraction=self.min_valid_fraction,
            return_valid_fraction=return_valid_fraction,
            source_index=self._columns,
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights and their grids to one ``.npz`` file.

        The file holds the CSR arrays (``data``, ``indices``, ``indptr``, ``shape``) and
        ``metadata``, a JSON text with the method, ``min_valid_fraction``,
        ``subsample``, both grids (CRS WKT, affine transform, shape) and the soilfuse
        version.

        Parameters
        ----------
        path : str or path-like
            Destination; ``.npz`` is appended if missing.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        from soilfuse import __version__

        out = Path(path)
        if out.suffix != ".npz":
            out = out.with_name(out.name + ".npz")
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "method": self.method,
            "min_valid_fraction": self.min_valid_fraction,
            "subsample": self.subsample,
            "source": _grid_to_json(self.source),
            "target": _grid_to_json(self.target),
            "soilfuse_version": __version__,
        }
        w = self.weights
        np.savez_compressed(
            out,
            data=w.data,
            indices=w.indices,
            indptr=w.indptr,
            shape=np.asarray(w.shape, dtype="int64"),
            metadata=np.asarray(json.dumps(meta)),
        )
        logger.info("saved %s weights (%d non-zeros) to %s", self.method, w.nnz, out)
        return out

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        source: Grid,
        target: Grid,
        *,
        min_valid_fraction: float | None = None,
    ) -> Regridder:
        """Read weights written by :meth:`save`, refusing weights for other grids.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        source, target : Grid
            The grids the weights must have been computed for.
        min_valid_fraction : float, optional
            Override the stored value.

        Returns
        -------
        Regridder

        Raises
        ------
        GridError
            If the file's grids differ from ``source``/``target``.
        DataError
            If the file is not a soilfuse weights file or is inconsistent.
        """
        with np.load(Path(path), allow_pickle=False) as npz:
            try:
                meta = json.loads(str(npz["metadata"].item()))
                arrays = {k: npz[k] for k in ("data", "indices", "indptr", "shape")}
            except (KeyError, ValueError) as err:
                msg = f"{path} is not a soilfuse regridding weights file ({err}); rebuild it with Regridder.save."
                raise DataError(msg) from err
        if meta.get("format") != _FORMAT or meta.get("format_version") != _FORMAT_VERSION:
            msg = (
                f"{path} has format {meta.get('format')!r} version {meta.get('format_version')!r}; "
                f"expected {_FORMAT!r} version {_FORMAT_VERSION}. Rebuild the weights."
            )
            raise DataError(msg)
        for role, expected in (("source", source), ("target", target)):
            stored = _grid_from_json(meta[role])
            if stored != expected:
                msg = (
                    f"Weights in {path} were computed for {role} grid {stored!r}, not {expected!r}; "
                    f"build new ones with Regridder(source, target, {meta['method']!r})."
                )
                raise GridError(msg)
        shape = tuple(int(v) for v in arrays["shape"])
        expected_shape = (math.prod(target.shape), math.prod(source.shape))
        try:
            weights = sparse.csr_array(
                (arrays["data"], arrays["indices"], arrays["indptr"]), shape=expected_shape
            )
            weights.check_format(full_check=True)
        except ValueError as err:
            msg = f"Weights in {path} are corrupt (stored shape {shape}): {err}. Rebuild them."
            raise DataError(msg) from err
        mvf = meta["min_valid_fraction"] if min_valid_fraction is None else min_valid_fraction
        _check_args(source, target, meta["method"], mvf)
        from soilfuse import __version__

        if meta.get("soilfuse_version") != __version__:
            logger.info(
                "weights in %s were written by soilfuse %s (running %s)",
                path, meta.get("soilfuse_version"), __version__,
            )
        obj = cls.__new__(cls)
        obj._init(source, target, meta["method"], weights, mvf, meta.get("subsample"))
        return obj

    # ------------------------------------------------------------------ value helpers
    def __repr__(self) -> str:
        return (
            f"Regridder(method={self.method!r}, source={self.source!r}, target={self.target!r}, "
            f"min_valid_fraction={self.min_valid_fraction}, nnz={self.weights.nnz})"
        )

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        # The weights are a deterministic function of these; hashing them is not needed.
        return (
            "soilfuse.Regridder",
            self.method,
            self.source.__dask_tokenize__(),
            self.target.__dask_tokenize__(),
            self.min_valid_fraction,
            self.subsample,
            self.weights.nnz,
        )


class _BlockApplier:
    """Picklable, cheaply tokenized callable applying a Regridder to one numpy block."""

    def __init__(self, regridder: Regridder, return_valid_fraction: bool) -> None:
        self.regridder = regridder
        self.return_valid_fraction = return_valid_fraction

    def __call__(self, block: Any) -> FloatArray | tuple[FloatArray, FloatArray]:
        return self.regridder.regrid_array(block, return_valid_fraction=self.return_valid_fraction)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return (self.regridder.__dask_tokenize__(), self.return_valid_fraction)


# ---------------------------------------------------------------------- helpers
def _check_args(source: Any, target: Any, method: str, min_valid_fraction: float) -> None:
    for role, grid in (("source", source), ("target", target)):
        if not isinstance(grid, Grid):
            msg = f"{role} must be a soilfuse.grid.Grid; got {type(grid).__name__}. Use Grid.from_dataset(ds)."
            raise GridError(msg)
    if method not in REGRID_METHODS:
        msg = f"Unknown regridding method {method!r}; expected one of {list(get_args(RegridMethod))}."
        raise GridError(msg)
    if not 0.0 <= float(min_valid_fraction) <= 1.0:
        msg = f"min_valid_fraction must be between 0 and 1; got {min_valid_fraction}."
        raise GridError(msg)


def _check_broadcast(source: Grid, target: Grid) -> None:
    ratio = typical_cell_area(target) / typical_cell_area(source)
    if ratio > 1.5:
        msg = (
            f"method='broadcast' disaggregates coarse to fine, but target cells are {ratio:.3g}x "
            "larger than source cells, so most source cells would be ignored; use method='mean' "
            "to aggregate."
        )
        warnings.warn(msg, RegridWarning, stacklevel=3)


def _grid_to_json(grid: Grid) -> dict[str, Any]:
    return {
        "crs_wkt": grid.crs.to_wkt(),
        "transform": list(tuple(grid.transform)[:6]),
        "shape": list(grid.shape),
    }


def _grid_from_json(meta: Mapping[str, Any]) -> Grid:
    return Grid(meta["crs_wkt"], Affine(*meta["transform"]), tuple(meta["shape"]))
