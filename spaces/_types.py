"""Plain types shared by every space."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tpsearch.exceptions import ArchError  # noqa: F401  (where spaces' modules import it from)

Arch = dict[str, Any]


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension, as `tpsearch spaces` and the README list it."""

    name: str
    symbol: str
    values: str
    meaning: str
