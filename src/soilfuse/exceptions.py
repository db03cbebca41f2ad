"""Exception and warning hierarchy of soilfuse.

Every error raised for bad user input derives from :class:`SoilfuseError`, which
subclasses :class:`ValueError` so that callers catching ``ValueError`` keep working.
The CLI catches :class:`SoilfuseError` and prints its message as one line.
"""

from __future__ import annotations

__all__ = [
    "CRSMismatchError",
    "ConfigError",
    "DataError",
    "GridError",
    "MissingVariableError",
    "NotFittedError",
    "SoilfuseError",
    "SoilfuseWarning",
    "UnitsError",
    "UnsupportedFileError",
]


class SoilfuseError(ValueError):
    """Base class for every error soilfuse raises about its inputs."""


class ConfigError(SoilfuseError):
    """A run configuration is malformed: a key is missing, unknown, or has a bad value."""


class GridError(SoilfuseError):
    """A grid definition is invalid or two grids are incompatible."""


class CRSMismatchError(GridError):
    """Two inputs that must share a coordinate reference system do not."""


class UnitsError(SoilfuseError):
    """A variable's units are missing, unknown, or differ from those declared."""


class MissingVariableError(SoilfuseError, KeyError):
    """A variable that a step needs is not in its input."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(SoilfuseError):
    """Input data are unusable: all missing, out of the grid, or physically implausible."""


class UnsupportedFileError(SoilfuseError):
    """A file's format is not one soilfuse can read."""


class NotFittedError(SoilfuseError, AttributeError):
    """An estimator was used before ``fit``."""


class SoilfuseWarning(UserWarning):
    """Base class for soilfuse's own warnings (turned into errors in the test suite)."""
