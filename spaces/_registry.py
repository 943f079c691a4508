"""Spaces by name: tpsearch's own, installed plug-ins, and a user's own class named MODULE:CLASS or FILE.py:CLASS.

A decorator registers each space module's class; duplicates are refused. Installed packages add spaces through
the entry point group `tpsearch.spaces` (`name = "package.module:Class"`), read the first time a name is looked up.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import TypeVar

from tpsearch.exceptions import UnknownSpaceError
from tpsearch.spaces._base import Space

ENTRY_POINTS = "tpsearch.spaces"
_SPACES: dict[str, Space] = {}
_plugins_loaded = False

S = TypeVar("S", bound=type[Space])


def register(cls: S) -> S:
    space = _instance(cls, cls.__qualname__)
    if space.name in _SPACES:
        raise ValueError(f"a space named {space.name!r} is registered already ({type(_SPACES[space.name]).__name__})")
    _SPACES[space.name] = space
    return cls


def get(name: str) -> Space:
    """The space `name`: a registered name, or MODULE:CLASS / path/to/file.py:CLASS for a space of your own."""
    if name in _SPACES:
        return _SPACES[name]
    if ":" in name:
        return _load(name)
    _load_plugins()
    try:
        return _SPACES[name]
    except KeyError:
        raise UnknownSpaceError(f"unknown space {name!r}; known spaces: {', '.join(names())} "
                                f"(or MODULE:CLASS for a space of your own)") from None


def is_own(name: str) -> bool:
    """Whether `name` is code of the user's own, MODULE:CLASS or FILE.py:CLASS, which `get` imports or runs. A
    registered or installed space's name never holds a colon, so this is decided from the string alone."""
    return ":" in name


def source_of(spec: str) -> dict[str, str] | None:
    """Where the space that `get(spec)` loaded came from, for a checkpoint to record: {name, file, class} for a
    FILE.py (its absolute path, as resolved when it was loaded) or {name, module, class} for a MODULE; None for a
    registered or installed name, which needs no record (it is found by name)."""
    if not is_own(spec):
        return None
    space = get(spec)
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        return {"name": space.name, "file": str(Path(module_name).resolve()), "class": attr}
    return {"name": space.name, "module": module_name, "class": attr}


def names() -> list[str]:
    """The registered names (a user's MODULE:CLASS spaces once loaded, under their own names)."""
    _load_plugins()
    return sorted(k for k in _SPACES if ":" not in k)


def _instance(cls: object, where: str) -> Space:
    if not (isinstance(cls, type) and issubclass(cls, Space)):
        raise UnknownSpaceError(f"{where} is not a subclass of tpsearch.spaces.Space")
    space = cls()
    if not space.name:
        raise UnknownSpaceError(f"{where} has no name: set the class attribute `name`")
    if cls.tally is Space.tally and cls.count_params is Space.count_params:
        raise UnknownSpaceError(f"{where} counts nothing: define `tally` (or `count_params`)")
    return space


def _load(spec: str) -> Space:
    """A user's space class, instantiated once and registered under its own name as well as `spec`."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise UnknownSpaceError(f"a space of your own is MODULE:CLASS or FILE.py:CLASS, but got {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.is_file():
                raise UnknownSpaceError(f"no file {module_name!r} for space {spec!r}")
            # A stable module name per file, so that loading the same file twice gives the same class.
            unique = f"tpsearch_user_space_{abs(hash(str(path))):x}"
            module = sys.modules.get(unique)
            if module is None:
                loader_spec = importlib.util.spec_from_file_location(unique, path)
                assert loader_spec is not None and loader_spec.loader is not None
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[unique] = module
                loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except UnknownSpaceError:
        raise
    except Exception as e:  # the user's module may fail in any way: say which and how, in one line
        raise UnknownSpaceError(f"cannot import {module_name!r} for space {spec!r}: {type(e).__name__}: {e}") from None
    if not hasattr(module, attr):
        raise UnknownSpaceError(f"{module_name!r} has no {attr!r} (space {spec!r})")
    space = _instance(getattr(module, attr), spec)
    known = _SPACES.get(space.name)
    if known is not None and type(known) is not type(space):
        raise UnknownSpaceError(f"{spec!r} is named {space.name!r}, the name of another space "
                                f"({type(known).__module__}.{type(known).__qualname__}): rename it")
    _SPACES.setdefault(space.name, space)
    _SPACES[spec] = _SPACES[space.name]
    return _SPACES[spec]


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINTS):
        if ep.name not in _SPACES:
            _load(ep.value)
