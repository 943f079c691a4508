"""Errors a user can cause. The CLI prints each as one line and exits 2; internal errors keep their traceback.

Every one derives from `UsageError` (a `ValueError`), so a caller of the Python API catches them all at once.
"""
from __future__ import annotations


class UsageError(ValueError):
    """Raised for bad input: a flag or option value, a missing or malformed file, a storage that cannot be used."""


class ArchError(UsageError):
    """Raised when an architecture dict cannot be built: it names the dimension and the value received."""

    def __init__(self, dimension: str, message: str) -> None:
        super().__init__(f"{dimension}: {message}")
        self.dimension = dimension


class UnknownSpaceError(UsageError):
    """Raised when a space name is neither registered nor a loadable MODULE:CLASS; the message lists the known."""


class DataError(UsageError):
    """Raised when a data set cannot be loaded: an unknown name, or a missing or corrupt data file."""


class CheckpointError(UsageError):
    """Raised when a checkpoint file cannot be used: missing, truncated, altered, holding pickled code, or weights
    that do not fit its architecture."""


class QuantizationLossError(UsageError):
    """Raised when `export --quantize` would write a model that lost more accuracy than its bound (--max-loss); it
    carries the figures: method, split, quantized and full_precision accuracy (fractions), bound (points)."""

    def __init__(self, message: str, *, method: str, split: str, quantized: float, full_precision: float,
                 bound: float) -> None:
        super().__init__(message)
        self.method, self.split, self.bound = method, split, bound
        self.quantized, self.full_precision = quantized, full_precision
