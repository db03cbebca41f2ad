"""Validation figures: density scatter, station metric maps, box plots by stratum.

Every function draws on a new :class:`matplotlib.figure.Figure` with the Agg canvas
(or on an ``ax`` you pass) and returns the figure; nothing touches ``pyplot``'s global
state or needs a display, so the functions are safe in scripts, tests and Dask
workers. :func:`save_figure` writes PNG (or any format matplotlib knows from the
suffix). Inputs are plain arrays and tables: the metrics themselves come from
:mod:`soilfuse.validate`.

Usage
-----
>>> import numpy as np
>>> obs = np.linspace(0.05, 0.4, 200)
>>> fig = density_scatter(obs, obs + 0.01, units="m3 m-3", annotate={"R": 1.0, "n": 200})
>>> len(fig.axes)
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from soilfuse.exceptions import DataError, MissingVariableError

__all__ = ["density_scatter", "metric_boxplot", "save_figure", "station_map"]

#: Metrics centred on zero get a diverging colour map.
_DIVERGING = {"BIAS", "bias", "G_down", "KGE", "NSE"}


def _new_axes(
    ax: Axes | None, size: tuple[float, float], *, bottom: float = 0.14, right: float = 0.95
) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.get_figure()
        if not isinstance(fig, Figure):
            msg = "ax must belong to a matplotlib Figure."
            raise DataError(msg)
        return fig, ax
    # Fixed margins: a layout engine would lay every figure out again on each save,
    # which costs more than drawing these small plots.
    fig = Figure(figsize=size)
    fig.subplots_adjust(left=0.14, right=right, bottom=bottom, top=0.91)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _fmt(value: float) -> str:
    if isinstance(value, (int, np.integer)) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value)}"
    return f"{value:.3g}"


def density_scatter(
    obs: npt.ArrayLike,
    pred: npt.ArrayLike,
    *,
    ax: Axes | None = None,
    gridsize: int = 60,
    title: str | None = None,
    units: str = "",
    annotate: Mapping[str, float] | None = None,
) -> Figure:
    """Hexagonal-bin density scatter of ``pred`` against ``obs`` with the 1:1 line.

    Parameters
    ----------
    obs, pred : array_like
        Paired values (NaN pairs are left out), same unit.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure otherwise.
    gridsize : int
        Hexagons across the x axis.
    title : str, optional
        Axes title.
    units : str
        Unit shown in the axis labels.
    annotate : mapping of str to float, optional
        Numbers written in the upper-left corner (e.g. ``{"n": 1200, "R": 0.91}``).

    Returns
    -------
    matplotlib.figure.Figure
        With the scatter axes and a colour bar (counts, log scale).

    Raises
    ------
    DataError
        If there is no valid pair.
    """
    o = np.asarray(obs, dtype="float64").ravel()
    p = np.asarray(pred, dtype="float64").ravel()
    ok = np.isfinite(o) & np.isfinite(p)
    if not ok.any():
        msg = "density_scatter needs at least one pair where both obs and pred are finite."
        raise DataError(msg)
    o, p = o[ok], p[ok]
    fig, axes = _new_axes(ax, (5.4, 4.4), right=0.84)
    lo = float(min(o.min(), p.min()))
    hi = float(max(o.max(), p.max()))
    pad = 0.02 * (hi - lo) if hi > lo else 0.5
    extent = (lo - pad, hi + pad, lo - pad, hi + pad)
    hb = axes.hexbin(o, p, gridsize=gridsize, bins="log", mincnt=1, extent=extent, cmap="viridis")
    axes.plot([extent[0], extent[1]], [extent[0], extent[1]], color="black", lw=0.8, ls="--")
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    axes.set_aspect("equal")
    suffix = f" [{units}]" if units else ""
    axes.set_xlabel(f"observed{suffix}")
    axes.set_ylabel(f"estimated{suffix}")
    if title:
        axes.set_title(title)
    if annotate:
        text = "\n".join(f"{k} = {_fmt(v)}" for k, v in annotate.items())
        axes.text(
            0.03,
            0.97,
            text,
            transform=axes.transAxes,
            va="top",
            ha="left",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
        )
    fig.colorbar(hb, ax=axes, label="pairs (count)", fraction=0.05, pad=0.03)
    return fig


def station_map(
    table: pd.DataFrame,
    metric: str,
    *,
    lat: str = "lat",
    lon: str = "lon",
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str | None = None,
) -> Figure:
    """Stations coloured by a metric at their longitude/latitude.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per station with ``lat``, ``lon`` (degrees) and the ``metric`` column
        (e.g. from :func:`soilfuse.validate.station_metrics`).
    metric : str
        Column to colour by; bias-like metrics (``BIAS``, ``G_down``, ``KGE``, ``NSE``)
        use a diverging map centred on zero.
    lat, lon : str
        Coordinate columns.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    title : str, optional
        Axes title (default: the metric name).
    cmap : str, optional
        Colour map name.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    MissingVariableError
        If a column is missing.
    DataError
        If no station has a finite value.
    """
    missing = [c for c in (lat, lon, metric) if c not in table.columns]
    if missing:
        msg = f"station_map needs column(s) {missing}; the table has {list(table.columns)}."
        raise MissingVariableError(msg)
    values = table[metric].to_numpy(dtype="float64")
    ok = np.isfinite(values)
    if not ok.any():
        msg = f"No station has a finite {metric!r} to map."
        raise DataError(msg)
    fig, axes = _new_axes(ax, (6.0, 4.6), right=0.86)
    norm: Any = None
    if metric in _DIVERGING:
        span = float(np.nanmax(np.abs(values[ok]))) or 1.0
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    cm = cmap or ("RdBu_r" if metric in _DIVERGING else "viridis")
    x = table[lon].to_numpy(dtype="float64")
    y = table[lat].to_numpy(dtype="float64")
    axes.scatter(x[~ok], y[~ok], s=12, facecolors="none", edgecolors="grey", lw=0.6, label="not scored")
    sc = axes.scatter(x[ok], y[ok], c=values[ok], s=28, cmap=cm, norm=norm, edgecolors="black", lw=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(5))
    axes.set_xlabel("longitude [degrees_east]")
    axes.set_ylabel("latitude [degrees_north]")
    mean_lat = float(np.nanmean(y))
    axes.set_aspect(1.0 / max(np.cos(np.deg2rad(mean_lat)), 0.1))
    axes.set_title(title or metric)
    axes.grid(True, lw=0.3, alpha=0.5)
    fig.colorbar(sc, ax=axes, label=metric, fraction=0.05, pad=0.03)
    return fig


def metric_boxplot(
    table: pd.DataFrame,
    metric: str,
    by: str,
    *,
    order: Sequence[Any] | None = None,
    labels: Mapping[Any, str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Box plots of a per-station metric by stratum (season, land cover, layer...).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per station and stratum with columns ``by`` and ``metric``.
    metric : str
        Column plotted.
    by : str
        Stratum column; one box per distinct value (NaN metrics are left out).
    order : sequence, optional
        Order of the boxes (default: sorted values; absent ones are skipped).
    labels : mapping, optional
        Display names of stratum values (e.g. land-cover codes to names).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        Each tick label carries the number of stations in its box.

    Raises
    ------
    MissingVariableError, DataError
        For missing columns or no finite value.
    """
    missing = [c for c in (metric, by) if c not in table.columns]
    if missing:
        msg = f"metric_boxplot needs column(s) {missing}; the table has {list(table.columns)}."
        raise MissingVariableError(msg)
    data = table[[by, metric]].dropna()
    if data.empty:
        msg = f"No finite {metric!r} to plot by {by!r}."
        raise DataError(msg)
    present = list(pd.unique(data[by]))
    keys = [k for k in order if k in present] if order is not None else sorted(present)
    series = [data.loc[data[by] == k, metric].to_numpy(dtype="float64") for k in keys]
    names = [f"{(labels or {}).get(k, k)}\n(n={len(s)})" for k, s in zip(keys, series, strict=True)]
    fig, axes = _new_axes(ax, (max(4.0, 1.1 * len(keys) + 1.5), 4.0), bottom=0.22)
    axes.boxplot(series, tick_labels=names, showfliers=True)
    if metric in _DIVERGING:
        axes.axhline(0.0, color="grey", lw=0.8, ls="--")
    axes.set_ylabel(metric)
    axes.set_xlabel(by)
    axes.set_title(title or f"{metric} by {by}")
    axes.grid(True, axis="y", lw=0.3, alpha=0.5)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix; folders are created) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
