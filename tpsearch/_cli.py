"""The `tpsearch` command's entry point: light to import, so that Ctrl-C while the real one loads is handled too.

Importing `tpsearch.cli` takes seconds (torch, Ray, Optuna), during which Ctrl-C is held
(`tpsearch._interrupts`) and acted on once the imports are done.
"""
from __future__ import annotations

import os
import sys

from tpsearch._interrupts import HeldInterrupts


def main() -> int:
    try:
        with HeldInterrupts():
            from tpsearch.cli import main as command
    except KeyboardInterrupt:  # nothing has started yet
        print("tpsearch: interrupted", file=sys.stderr)
        return 130
    try:
        return command()
    except BrokenPipeError:
        # The reader went away (`tpsearch spaces | head`): what it wanted it has. Point stdout at nothing so that
        # Python's own flush at exit does not raise again, and end as a closed pipe ends a Unix tool.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
