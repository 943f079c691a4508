"""Errors a user can cause: the CLI prints each as one line and exits non-zero."""
from __future__ import annotations


class UsageError(ValueError):
    """Raised for bad command-line input or files: a missing file, malformed JSON, a bad option value."""


class CheckpointError(UsageError):
    """Raised when a checkpoint file cannot be used: missing, truncated, altered, holding pickled code, or weights
    that do not fit its architecture. A `ValueError`, and one line from the CLI like every user error."""
