"""Type aliases shared across soilfuse (see ``docs/conventions.md``)."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

#: A region as ``(west, east, south, north)``, in degrees unless a CRS says otherwise.
Region: TypeAlias = tuple[float, float, float, float]

#: A float array of any shape.
FloatArray: TypeAlias = npt.NDArray[np.floating]

#: An integer array of any shape.
IntArray: TypeAlias = npt.NDArray[np.integer]

#: Regridding methods between two grids.
RegridMethod: TypeAlias = Literal["bilinear", "nearest", "mean", "broadcast"]

#: Named EASE-Grid 2.0 global resolutions.
EaseResolution: TypeAlias = Literal["36km", "9km", "3km", "1km"]

#: Error handling of per-station or per-tile loops.
OnError: TypeAlias = Literal["raise", "record"]

__all__ = [
    "EaseResolution",
    "FloatArray",
    "IntArray",
    "OnError",
    "Region",
    "RegridMethod",
]
