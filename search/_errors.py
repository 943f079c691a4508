"""Errors a user can cause: the CLI prints each as one line and exits non-zero."""
from __future__ import annotations


class UsageError(ValueError):
    """Raised for bad command-line input or files: a missing file, malformed JSON, a bad option value."""
