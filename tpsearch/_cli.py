"""The `tpsearch` command's entry point: light to import, so that Ctrl-C while the real one loads is handled too.

Importing `tpsearch.search.cli` takes seconds (torch, Ray, Optuna). A KeyboardInterrupt raised in the middle of
that import lands inside extension modules' initialisation: measured here, it printed a traceback, ended the
process by SIGINT although caught, or aborted torch's C++ start-up (`pybind11::error_already_set`, exit 134). So
Ctrl-C is held while the imports load and acted on once they are done.
"""
from __future__ import annotations

import signal
import sys


def main() -> int:
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        from tpsearch.search.cli import main as command
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:  # nothing has started yet
        print("tpsearch: interrupted", file=sys.stderr)
        return 130
    return command()
