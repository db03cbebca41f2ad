"""Reporting: figures of validation results and the self-contained HTML report.

The last stage of the pipeline turns metric tables and matched pairs from
:mod:`soilfuse.validate` into files a person reads.

:class:`HtmlReport` (:mod:`soilfuse.report.document`) assembles headings, text, tables
and figures (embedded PNG) into one HTML file.

Figures (:mod:`soilfuse.report.figures`), each returning a matplotlib ``Figure``
drawn with the Agg canvas, no display or ``pyplot`` state needed:

* :func:`density_scatter` — hexbin density of estimated vs observed values, 1:1 line;
* :func:`station_map` — stations at their lon/lat coloured by a metric;
* :func:`metric_boxplot` — per-station metric distributions by season, land cover,
  layer...;
* :func:`save_figure` — write a figure, creating folders.

Usage
-----
>>> import numpy as np, pandas as pd
>>> from soilfuse.report import station_map
>>> table = pd.DataFrame({"lat": [30.0, 31.0], "lon": [100.0, 101.0], "R": [0.8, 0.6]})
>>> fig = station_map(table, "R")
>>> fig.axes[0].get_title()
'R'
"""

from __future__ import annotations

from soilfuse.report.document import HtmlReport
from soilfuse.report.figures import density_scatter, metric_boxplot, save_figure, station_map

__all__ = ["HtmlReport", "density_scatter", "metric_boxplot", "save_figure", "station_map"]
