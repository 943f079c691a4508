"""Plain types shared by every space."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple

from tpsearch.exceptions import ArchError  # noqa: F401  (where spaces' modules import it from)

Arch = dict[str, Any]


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension, as `tpsearch spaces` and the README list it."""

    name: str
    symbol: str
    values: str
    meaning: str


class Counts(NamedTuple):
    """What a space's `tally` says of a network: its exact parameters, and one image's MACs by thop's rules or None
    to leave them to thop's measurement (`Space.measure_macs`)."""

    params: int
    macs: int | None = None


# Far beyond any real input, but they keep a hand-written call from asking for a loop of a billion pixels.
MAX_IMAGE_SIZE = 4096
MAX_IN_CHANNELS = 4096
MAX_CLASSES = 1_000_000


def check_shape(in_channels: int, image_size: int) -> None:
    """The input shape every space takes: whole numbers in range, or `ArchError` naming which."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ArchError("image_size", f"must be an integer 1..{MAX_IMAGE_SIZE}, but got {image_size!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or not 1 <= in_channels <= MAX_IN_CHANNELS:
        raise ArchError("in_channels", f"must be an integer 1..{MAX_IN_CHANNELS}, but got {in_channels!r}")


def check_mapping(arch: Any) -> None:
    """An architecture is a mapping (a JSON object), or `ArchError`."""
    if not isinstance(arch, Mapping):
        raise ArchError("arch", f"must be a JSON object, but got {type(arch).__name__}")


def one_of(arch: Mapping[str, Any], key: str, choices: Iterable[Any], default: Any = None) -> Any:
    """`arch[key]` (`default` where it is absent) if it is one of `choices`, else `ArchError` listing them."""
    value = arch.get(key, default)
    if value not in choices:
        raise ArchError(key, f"must be one of {', '.join(map(str, choices))}, but got {value!r}")
    return value


def check_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= MAX_CLASSES:
        raise ArchError("num_classes", f"must be an integer 1..{MAX_CLASSES}, but got {num_classes!r}")
