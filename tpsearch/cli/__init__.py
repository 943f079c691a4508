"""The `tpsearch` command line: each command registered where it is defined (`_registry`), shared flags, a module per
kind of command (looking at spaces, training, searching, planned studies, a study's status and pages, export, the
commands that read checkpoints, simulate).

    >>> from tpsearch.cli import main
    >>> main(["spaces", "--json"])  # prints the registered spaces as one JSON line  # doctest: +SKIP
    0
"""
from tpsearch.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
