"""The `tpsearch` command's entry point: light to import, so that Ctrl-C while the real one loads is handled too.

Importing `tpsearch.search.cli` takes seconds (torch, Ray, Optuna), during which Ctrl-C is held
(`tpsearch._interrupts`) and acted on once the imports are done.
"""
from __future__ import annotations

import sys

from tpsearch._interrupts import HeldInterrupts


def main() -> int:
    try:
        with HeldInterrupts():
            from tpsearch.search.cli import main as command
    except KeyboardInterrupt:  # nothing has started yet
        print("tpsearch: interrupted", file=sys.stderr)
        return 130
    return command()
