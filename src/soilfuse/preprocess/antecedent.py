"""Antecedent precipitation: the mean daily precipitation of the last ``m`` days.

Liu et al. (seed 002 §2.1.2, eq. 1, after Wei et al. 2020) replace daily precipitation
by the five-day antecedent precipitation

    AP_m(t) = (1/m) Σ_{i = 1−m}^{0} P(t + i),

i.e. the mean over the current day and the ``m − 1`` days before it, with ``m = 5``.
:func:`antecedent_precipitation` follows that equation by default
(``include_current=True``); ``include_current=False`` averages the ``m`` days before
``t`` instead (``t − m`` … ``t − 1``), for predictors that must not see the day itself.

The first ``m − 1`` days (``m`` without the current day) lack a full window and are
NaN, as is any window holding a NaN. Rolling over Dask chunks is lazy.

Usage
-----
>>> import numpy as np, pandas as pd, xarray as xr
>>> tp = xr.DataArray(np.arange(7.0), dims="time", attrs={"units": "mm day-1"},
...                   coords={"time": pd.date_range("2020-01-01", periods=7)})
>>> antecedent_precipitation(tp, m=3).values.tolist()
[nan, nan, 1.0, 2.0, 3.0, 4.0, 5.0]
>>> antecedent_precipitation(tp, m=3, include_current=False).values.tolist()
[nan, nan, nan, 1.0, 2.0, 3.0, 4.0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.preprocess._common import annotate, require_dims
from soilfuse.variables import normalise_units

__all__ = ["antecedent_precipitation"]


def antecedent_precipitation(tp: xr.DataArray, *, m: int = 5, include_current: bool = True) -> xr.DataArray:
    """Mean daily precipitation over the last ``m`` days (seed 002 eq. 1).

    Parameters
    ----------
    tp : xarray.DataArray
        Daily precipitation with a ``time`` dim of consecutive days and declared
        ``units`` (mm day-1, or a convertible rate such as kg m-2 s-1).
    m : int
        Window length in days (5 in Liu et al.).
    include_current : bool
        True: days ``t − m + 1 … t`` (the paper's equation); False: ``t − m … t − 1``.

    Returns
    -------
    xarray.DataArray
        ``ap`` in mm day-1 on the input's coords; NaN where the window is incomplete
        or holds a NaN. The window is in the ``antecedent_days`` attribute.

    Raises
    ------
    DataError
        If ``m < 1``, there is no ``time`` dim, or the days are not consecutive.
    UnitsError
        If the precipitation units are missing or not a rate.
    """
    if m < 1:
        msg = f"m must be a positive number of days; got {m}."
        raise DataError(msg)
    require_dims(tp, ("time",), what="antecedent_precipitation()")
    times = pd.DatetimeIndex(tp["time"].values) if np.issubdtype(tp["time"].dtype, np.datetime64) else None
    if times is not None and times.size > 1 and not (times[1:] - times[:-1] == pd.Timedelta(days=1)).all():
        msg = (
            "antecedent_precipitation() needs consecutive daily time steps; the time axis has gaps or is "
            "not daily. Reindex it to a daily range first (missing days become NaN)."
        )
        raise DataError(msg)
    rate = normalise_units(tp, "tp")
    out = rate.rolling(time=m, min_periods=m).mean(skipna=False)
    if not include_current:
        out = out.shift(time=1)
    window = f"t-{m - 1}..t" if include_current else f"t-{m}..t-1"
    attrs = {
        "units": "mm day-1", "long_name": f"{m}-day antecedent precipitation",
        "antecedent_days": m, "comment": f"mean daily precipitation over days {window} (Liu et al., eq. 1)",
    }
    return annotate(out, "ap", attrs)
