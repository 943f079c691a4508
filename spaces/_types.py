"""Plain types shared by every space."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Arch = dict[str, Any]


class ArchError(ValueError):
    """Raised when an architecture dict cannot be built: it names the dimension and the value received."""

    def __init__(self, dimension: str, message: str) -> None:
        super().__init__(f"{dimension}: {message}")
        self.dimension = dimension


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension, as `tpsearch spaces` and the README list it."""

    name: str
    symbol: str
    values: str
    meaning: str
