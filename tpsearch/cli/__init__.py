"""The `tpsearch` command line: one command table, shared flags, one module per command or command group.

    >>> from tpsearch.cli import main
    >>> main(["spaces", "--json"])  # prints the registered spaces as one JSON line  # doctest: +SKIP
    0
"""
from tpsearch.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
