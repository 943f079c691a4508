"""Spaces by name: a decorator registers each space module's class; duplicates are refused."""
from __future__ import annotations

from typing import TypeVar

from spaces._base import Space

_SPACES: dict[str, Space] = {}

S = TypeVar("S", bound=type[Space])


class UnknownSpaceError(ValueError):
    """Raised when a space name is not registered; the message lists the registered ones."""


def register(cls: S) -> S:
    space = cls()
    if not space.name:
        raise TypeError(f"{cls.__name__} has no name")
    if space.name in _SPACES:
        raise ValueError(f"a space named {space.name!r} is registered already ({type(_SPACES[space.name]).__name__})")
    _SPACES[space.name] = space
    return cls


def get(name: str) -> Space:
    try:
        return _SPACES[name]
    except KeyError:
        raise UnknownSpaceError(f"unknown space {name!r}; known spaces: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(_SPACES)
