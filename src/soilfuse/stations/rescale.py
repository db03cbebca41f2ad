"""Rescale station series to a reference: mean-std matching, linear + variance scaling, CDF matching.

In-situ sensors differ in calibration; Li et al. (2022, SMCI1.0) therefore matched
the mean and standard deviation of every station's daily soil moisture to ERA5-Land
at the station's grid cell and layer (after Sungmin and Orth 2020), mapping station
depths of 10-30 cm to ERA5-Land layer 2 (7-28 cm) and 30-100 cm to layer 3
(28-100 cm). Liu et al. (2023, gap-filling of ESA CCI) correct a model series to a
satellite one by linear scaling followed by variance scaling (their eq. 4).

Methods (registry :data:`RESCALING_METHODS`, :func:`get_rescaling_method`), all
``f(src, ref) -> scaled`` on 1-D arrays of equal length, fitted over the times
where both are finite and applied to every finite ``src`` value:

``"mean_std"``
    ``(src - mean(src)) / std(src) * std(ref) + mean(ref)`` (population std).
``"linear_variance"``
    Liu et al. (2023) eq. 4: shift by the difference of means (linear scaling),
    then scale the anomalies by the ratio of standard deviations (variance
    scaling). Algebraically the same map as ``"mean_std"``; kept as the paper
    writes it.
``"cdf_match"``
    Piecewise-linear CDF matching between ``nbins + 1`` percentiles of both series
    (Hazen plotting positions). Tied percentile values are spread between their
    untied neighbours so the knots, and thus the mapping, are strictly increasing;
    beyond the outer knots the end segments are extended linearly.

:func:`rescale_to_reference` applies a method per station and layer against a
gridded reference (e.g. ERA5-Land ``sm`` with a ``depth`` dimension) extracted at
the station cells; the reference layer of a station layer is the one holding its
centre (which reproduces the 10-30 / 30-100 cm rule of Li et al. 2022).

Usage
-----
>>> import numpy as np
>>> src = np.array([0.10, 0.20, 0.30, np.nan])
>>> ref = np.array([0.25, 0.30, 0.35, 0.40])
>>> np.round(get_rescaling_method("mean_std")(src, ref), 3).tolist()
[0.25, 0.3, 0.35, nan]
>>> sorted(RESCALING_METHODS)
['cdf_match', 'linear_variance', 'mean_std']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse._typing import FloatArray, OnError
from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io.cf import layer_label, parse_layer
from soilfuse.io.stations import StationData, normalise_stations

__all__ = [
    "RESCALING_METHODS",
    "cdf_match",
    "get_rescaling_method",
    "linear_variance_scaling",
    "mean_std",
    "reference_layer_for",
    "rescale_to_reference",
]

logger = logging.getLogger(__name__)

RescalingMethod = Callable[..., FloatArray]


def _common(src: FloatArray, ref: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    s = np.asarray(src, dtype="float64")
    r = np.asarray(ref, dtype="float64")
    if s.shape != r.shape or s.ndim != 1:
        msg = f"src and ref must be 1-D arrays of equal length (matched in time); got {s.shape} and {r.shape}."
        raise DataError(msg)
    both = np.isfinite(s) & np.isfinite(r)
    if both.sum() < 2:
        msg = f"Only {int(both.sum())} common valid values; at least 2 are needed to rescale."
        raise DataError(msg)
    return s, s[both], r[both]


def mean_std(src: FloatArray, ref: FloatArray) -> FloatArray:
    """Match the mean and (population) standard deviation of ``src`` to ``ref``.

    Parameters
    ----------
    src, ref : numpy.ndarray
        Series matched in time (same length); NaN where missing. Moments are taken
        over the times where both are finite.

    Returns
    -------
    numpy.ndarray
        ``src`` rescaled (NaN stays NaN).

    Raises
    ------
    DataError
        If fewer than two common values exist or ``src`` is constant there.
    """
    s, sc, rc = _common(src, ref)
    sd = sc.std()
    if sd == 0:
        msg = "src is constant over the common period; its standard deviation cannot be matched."
        raise DataError(msg)
    return (s - sc.mean()) / sd * rc.std() + rc.mean()


def linear_variance_scaling(src: FloatArray, ref: FloatArray) -> FloatArray:
    """Linear scaling then variance scaling (Liu et al. 2023, eq. 4).

    ``c1 = src - mean(src) + mean(ref)``; ``c = mean(c1) + (c1 - mean(c1)) * std(ref) / std(c1)``,
    all moments over the common valid times. See :func:`mean_std` for parameters.
    """
    s, sc, rc = _common(src, ref)
    c1 = s - sc.mean() + rc.mean()
    c1c = sc - sc.mean() + rc.mean()
    sd = c1c.std()
    if sd == 0:
        msg = "src is constant over the common period; its variance cannot be scaled."
        raise DataError(msg)
    return c1c.mean() + (c1 - c1c.mean()) * rc.std() / sd


def _knots(values: FloatArray, percentiles: FloatArray) -> FloatArray:
    """Strictly increasing percentile values: ties spread between untied neighbours."""
    perc = np.percentile(values, percentiles, method="hazen")
    uniq, first = np.unique(perc, return_index=True)
    if uniq.size == perc.size:
        return perc
    if uniq.size < 2:
        msg = "A constant series cannot be CDF-matched (all its percentiles are equal)."
        raise DataError(msg)
    where = percentiles[first].astype("float64")
    where[-1] = percentiles[-1]  # a tie at the top keeps the top percentile on the maximum
    return np.interp(percentiles, where, uniq)


def cdf_match(src: FloatArray, ref: FloatArray, *, nbins: int = 100) -> FloatArray:
    """Piecewise-linear CDF matching of ``src`` to ``ref`` (strictly increasing map).

    Parameters
    ----------
    src, ref : numpy.ndarray
        Series matched in time; the CDFs are estimated over the common valid times.
    nbins : int
        Number of percentile bins (``nbins + 1`` knots from 0 to 100), reduced to the
        number of common values minus one when there are fewer.

    Returns
    -------
    numpy.ndarray
        ``src`` mapped through the matched CDFs; values beyond the outer knots
        follow the end segments linearly.

    Raises
    ------
    DataError
        If fewer than two common values exist or a series is constant.
    """
    s, sc, rc = _common(src, ref)
    n = int(min(nbins, sc.size - 1))
    percentiles = np.linspace(0.0, 100.0, n + 1)
    xp = _knots(sc, percentiles)
    yp = _knots(rc, percentiles)
    out = np.interp(s, xp, yp)
    lo_slope = (yp[1] - yp[0]) / (xp[1] - xp[0])
    hi_slope = (yp[-1] - yp[-2]) / (xp[-1] - xp[-2])
    out = np.where(s < xp[0], yp[0] + (s - xp[0]) * lo_slope, out)
    out = np.where(s > xp[-1], yp[-1] + (s - xp[-1]) * hi_slope, out)
    return np.where(np.isfinite(s), out, np.nan)


#: Registry of rescaling methods by name (tests iterate over it).
RESCALING_METHODS: Mapping[str, RescalingMethod] = {
    "mean_std": mean_std,
    "linear_variance": linear_variance_scaling,
    "cdf_match": cdf_match,
}


def get_rescaling_method(name: str) -> RescalingMethod:
    """The rescaling function registered as ``name``.

    Raises
    ------
    DataError
        If ``name`` is not in :data:`RESCALING_METHODS`.
    """
    try:
        return RESCALING_METHODS[name]
    except KeyError as err:
        msg = f"Unknown rescaling method {name!r}; choose one of {sorted(RESCALING_METHODS)}."
        raise DataError(msg) from err


# ---------------------------------------------------------------------- gridded reference
def reference_layer_for(top: float, bottom: float, reference_layers: list[str]) -> str | None:
    """The reference layer holding the centre of ``[top, bottom]`` cm (ties go down).

    Examples
    --------
    >>> era5 = ["0-7cm", "7-28cm", "28-100cm", "100-289cm"]
    >>> reference_layer_for(10, 20, era5), reference_layer_for(20, 30, era5), reference_layer_for(30, 40, era5)
    ('7-28cm', '7-28cm', '28-100cm')
    """
    centre = (top + bottom) / 2.0
    for label in reference_layers:
        lo, hi = parse_layer(label)
        if lo <= centre < hi:
            return label
    return None


def _reference_array(reference: xr.DataArray | xr.Dataset, variable: str) -> xr.DataArray:
    if isinstance(reference, xr.Dataset):
        if variable not in reference:
            msg = f"The reference dataset has no {variable!r}; it has {list(reference.data_vars)}."
            raise MissingVariableError(msg)
        reference = reference[variable]
    for dim in ("time", "depth", "y", "x"):
        if dim not in reference.dims:
            msg = f"The reference needs dims (time, depth, y, x); got {reference.dims}. Canonicalize it first."
            raise DataError(msg)
    return reference


def _reference_labels(da: xr.DataArray) -> list[str]:
    if "layer" in da.coords:
        return [str(v) for v in da["layer"].values]
    if "depth_bnds" in da.coords:
        return [layer_label(t, b) for t, b in np.asarray(da["depth_bnds"].values)]
    msg = "The reference's depth axis needs a 'layer' or 'depth_bnds' coordinate to know its layers."
    raise DataError(msg)


def rescale_to_reference(
    daily: pd.DataFrame,
    reference: xr.DataArray | xr.Dataset,
    stations: StationData | pd.DataFrame,
    *,
    method: str = "mean_std",
    variable: str = "sm",
    layer_map: Mapping[str, str] | None = None,
    grid: Grid | None = None,
    min_overlap: int = 30,
    on_error: OnError = "record",
    **kwargs: Any,
) -> pd.DataFrame:
    """Rescale each station layer of ``variable`` to a gridded reference at its cell.

    Parameters
    ----------
    daily : pandas.DataFrame
        Daily station table with ``station_id``, ``time``, ``variable``, ``value``
        and ``layer`` (from :func:`~soilfuse.stations.map_to_layers`) or
        ``depth_from``/``depth_to`` (cm).
    reference : xarray.DataArray or xarray.Dataset
        Gridded reference with dims ``(time, depth, y, x)`` and ``layer`` labels
        (e.g. ERA5-Land ``sm``: ``0-7cm``, ``7-28cm``, ``28-100cm``...). Only the
        station cells are read (computed).
    stations : StationData or pandas.DataFrame
        Station metadata (``lat``, ``lon``).
    method : str
        A name in :data:`RESCALING_METHODS`.
    variable : str
        Variable of ``daily`` to rescale (and of ``reference`` when a Dataset).
    layer_map : mapping of str to str, optional
        Station layer -> reference layer; by default the reference layer holding the
        station layer's centre (:func:`reference_layer_for`).
    grid : Grid, optional
        Grid of the reference (read from it when omitted).
    min_overlap : int
        Fewest common valid days needed to fit a series.
    on_error : {"raise", "record"}
        What to do with a series that cannot be rescaled (no reference layer,
        station outside the grid, too short overlap): raise, or drop it and record
        the reason in ``result.attrs["rescale_status"]``.
    **kwargs
        Passed to the method (e.g. ``nbins`` for ``"cdf_match"``).

    Returns
    -------
    pandas.DataFrame
        The rescaled rows of ``variable``: ``value`` rescaled, ``value_raw`` the
        original and ``reference_layer``.

    Raises
    ------
    DataError
        With ``on_error="raise"``, naming the first series that fails.
    """
    func = get_rescaling_method(method)
    da = _reference_array(reference, variable)
    labels = _reference_labels(da)
    meta = stations.stations if isinstance(stations, StationData) else normalise_stations(stations)
    sub = daily[(daily["variable"].astype(str) == variable).to_numpy()].copy()
    if "layer" not in sub.columns:
        sub["layer"] = [layer_label(t, b) for t, b in zip(sub["depth_from"], sub["depth_to"], strict=True)]
    sub["station_id"] = sub["station_id"].astype(str)
    sub["layer"] = sub["layer"].astype(str)
    g = grid if grid is not None else Grid.from_dataset(da)
    ids = meta["station_id"].astype(str).to_numpy()
    rows, cols = g.index(meta["lon"].to_numpy(), meta["lat"].to_numpy(), crs="EPSG:4326")
    cell = {sid: (int(r), int(c)) for sid, r, c in zip(ids, rows, cols, strict=True)}
    status: list[dict[str, str]] = []

    def fail(sid: str, layer: str, reason: str) -> None:
        if on_error == "raise":
            msg = f"Cannot rescale station {sid!r} layer {layer!r}: {reason}."
            raise DataError(msg)
        status.append({"station_id": sid, "layer": layer, "reason": reason})

    wanted = sub[["station_id", "layer"]].drop_duplicates()
    picks = []
    for sid, layer in wanted.itertuples(index=False):  # one entry per station layer
        ref_layer = (layer_map or {}).get(layer) or reference_layer_for(*parse_layer(layer), labels)
        rc = cell.get(sid, (-1, -1))
        if ref_layer is None or ref_layer not in labels:
            fail(sid, layer, f"no reference layer among {labels}")
        elif rc[0] < 0:
            fail(sid, layer, f"station outside the reference grid {g.bounds}")
        else:
            picks.append((sid, layer, ref_layer, labels.index(ref_layer), *rc))
    parts = []
    if picks:
        pick = pd.DataFrame(picks, columns=["station_id", "layer", "reference_layer", "k", "row", "col"])
        series = da.isel(depth=xr.DataArray(pick["k"].to_numpy(), dims="series"),
                         y=xr.DataArray(pick["row"].to_numpy(), dims="series"),
                         x=xr.DataArray(pick["col"].to_numpy(), dims="series")).transpose("time", "series")
        values = np.asarray(series.values, dtype="float64")  # days x station layers: small
        ref_days = pd.DatetimeIndex(da["time"].values).floor("D")
        grouped = dict(tuple(sub.groupby(["station_id", "layer"], sort=False)))
        for j, p in enumerate(pick.itertuples(index=False)):
            own = grouped[(p.station_id, p.layer)].sort_values("time")
            ref = pd.Series(values[:, j], index=ref_days).groupby(level=0).mean()
            matched = ref.reindex(own["time"].dt.floor("D")).to_numpy(dtype="float64")
            src = own["value"].to_numpy(dtype="float64")
            common = int((np.isfinite(src) & np.isfinite(matched)).sum())
            if common < min_overlap:
                fail(p.station_id, p.layer, f"{common} common days with the reference (< {min_overlap})")
                continue
            out = own.copy()
            out["value_raw"] = src
            out["value"] = func(src, matched, **kwargs)
            out["reference_layer"] = p.reference_layer
            parts.append(out)
    result = pd.concat(parts, ignore_index=True) if parts else sub.iloc[0:0].assign(
        value_raw=pd.Series(dtype="float64"), reference_layer=pd.Series(dtype="object"))
    result.attrs["rescale_status"] = status
    if status:
        logger.warning("rescaling: %d station layers skipped, e.g. %s", len(status), status[:3])
    return result
