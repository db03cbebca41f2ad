"""Small helpers shared by the preprocess modules: input checks and output annotation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.variables import VARIABLES, check_declared_units, normalise_units

__all__ = ["annotate", "float_dtype", "require", "require_dims", "variable_as"]


def require(ds: xr.Dataset, names: Iterable[str], *, what: str) -> list[xr.DataArray]:
    """The variables ``names`` of ``ds``, or a :class:`MissingVariableError` naming what is missing."""
    if not isinstance(ds, xr.Dataset):
        msg = f"{what} takes an xarray.Dataset holding {list(names)}; got {type(ds).__name__}."
        raise DataError(msg)
    wanted = list(names)
    missing = [n for n in wanted if n not in ds.data_vars]
    if missing:
        msg = (
            f"{what} needs the variable(s) {missing}, but the dataset only has "
            f"{sorted(map(str, ds.data_vars))}; read them with soilfuse.io.products.read_modis "
            f"or rename them to the canonical names."
        )
        raise MissingVariableError(msg)
    return [ds[n] for n in wanted]


def variable_as(da: xr.DataArray, name: str) -> xr.DataArray:
    """``da`` checked against the canonical unit of ``name``.

    Dimensionless variables (unit ``"1"``) only have their declared ``units`` checked
    (a missing ``units`` attribute is accepted); others are converted with
    :func:`soilfuse.variables.normalise_units` (e.g. LST in degC becomes K) and must
    declare their units.
    """
    unit = VARIABLES[name].units
    if unit == "1":
        check_declared_units(da, unit, name=name)
        return da
    return normalise_units(da, name)


def require_dims(da: xr.DataArray, dims: tuple[str, ...], *, what: str) -> None:
    """Raise unless ``da`` has every dim in ``dims``."""
    missing = [d for d in dims if d not in da.dims]
    if missing:
        msg = (
            f"{what} needs dims {list(dims)} but {da.name or 'the input'!r} has {tuple(map(str, da.dims))}; "
            f"bring it to the canonical layout with soilfuse.io.canonicalize."
        )
        raise DataError(msg)


def float_dtype(*arrays: Any) -> np.dtype[Any]:
    """float32 unless an input is float64 (integer inputs give float32)."""
    kinds = [np.dtype(a.dtype) for a in arrays]
    return np.dtype("float64") if any(k == np.float64 for k in kinds) else np.dtype("float32")


def annotate(da: xr.DataArray, name: str, attrs: Mapping[str, Any]) -> xr.DataArray:
    """Name ``da``, replace its attributes with ``attrs`` and link the CRS when there is one."""
    out = da.rename(name)
    out.attrs = dict(attrs)
    if "spatial_ref" in out.coords and {"y", "x"} <= set(out.dims):
        out.attrs["grid_mapping"] = "spatial_ref"
    return out
