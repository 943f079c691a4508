"""The sub-commands, registered where each is defined: `@command(rank, name, flags)` on the function that runs it.
Its docstring is what `--help` says: the first paragraph in `tpsearch --help`'s list, the paragraphs after it as
the command's description, a paragraph that begins with "Example" below its flags; `flags(p)` adds the flags;
`add_parser`'s keywords for what is made at run time (a description naming the registered tricks) come with the
decorator.

`rank` orders `tpsearch --help`'s list (the order a user meets them in: look, train, search, study, read, export).
A new command is a new module of this package with a registered function; nothing else to edit.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

_NOT_COMMANDS = {"_main", "_flags", "_registry"}


@dataclass(frozen=True)
class Command:
    rank: int
    name: str
    flags: Callable[[argparse.ArgumentParser], None]
    parser: dict[str, Any]                          # `add_parser`'s keywords beside the docstring's
    run: Callable[[argparse.Namespace], int | None]


_COMMANDS: dict[str, Command] = {}


def command(rank: int, name: str, flags: Callable[[argparse.ArgumentParser], None],
            **parser: Any) -> Callable[[Callable], Callable]:
    """Register the decorated function as what `tpsearch NAME` runs, with the parsed arguments."""
    def register(run: Callable) -> Callable:
        _COMMANDS[name] = Command(rank, name, flags, parser, run)
        return run
    return register


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Every registered command's parser, by rank, once each module of the package has been imported."""
    package = __name__.rsplit(".", 1)[0]
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name not in _NOT_COMMANDS:
            importlib.import_module(f"{package}.{info.name}")
    for c in sorted(_COMMANDS.values(), key=lambda c: c.rank):
        summary, *paragraphs = (inspect.getdoc(c.run) or "").split("\n\n")
        details = "\n\n".join(t for t in paragraphs if not t.startswith("Example"))
        examples = "\n\n".join(t for t in paragraphs if t.startswith("Example"))
        p = sub.add_parser(c.name, **{"help": summary or None, "description": details or None,
                                      "epilog": examples or None, **c.parser})
        c.flags(p)
        p.set_defaults(func=c.run)
