"""The sub-commands, registered where each is defined: `@command(rank)` on the function that adds its parser.

`rank` orders `tpsearch --help`'s list (the order a user meets them in: look, train, search, study, read, export).
A new command is a new module of this package with a registered function; nothing else to edit.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Callable

_ADDERS: dict[str, tuple[int, Callable]] = {}
_NOT_COMMANDS = {"_main", "_flags", "_registry"}


def command(rank: int) -> Callable[[Callable], Callable]:
    def register(add: Callable) -> Callable:
        _ADDERS[f"{add.__module__}.{add.__qualname__}"] = (rank, add)
        return add
    return register


def adders() -> list[Callable]:
    """Every registered parser adder, by rank, once each module of the package has been imported."""
    package = __name__.rsplit(".", 1)[0]
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name not in _NOT_COMMANDS:
            importlib.import_module(f"{package}.{info.name}")
    return [add for _, add in sorted(_ADDERS.values(), key=lambda entry: entry[0])]
