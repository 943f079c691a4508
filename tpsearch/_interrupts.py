"""Ctrl-C held while a step that must not stop half way runs, and acted on between steps.

A KeyboardInterrupt raised in the middle of an extension module's import or of Ray's start-up was measured to print
tracebacks, end the process by SIGINT although caught, or abort in C++ (`pybind11::error_already_set`). Held, it
is raised as a plain KeyboardInterrupt at a point of our own choosing. Light to import: the command's entry point
uses it before torch and Ray are loaded.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


class HeldInterrupts:
    """Ctrl-C held inside the `with` block, raised as KeyboardInterrupt by `check()` and on leaving the block.

    `let_through()` restores the previous handler for a stretch that handles Ctrl-C itself (the driver lets Ray
    Tune have it while trials run: they stop, and the searcher marks them FAIL with reason `interrupted`).
    """

    def __init__(self) -> None:
        self.held: list[int] = []
        self.previous: Any = None

    def __enter__(self) -> "HeldInterrupts":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self.previous = signal.signal(signal.SIGINT, lambda signum, frame: self.held.append(signum))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if exc[0] is None:
            self.check()

    def check(self) -> None:
        if self.held:
            self.held.clear()
            raise KeyboardInterrupt

    @contextmanager
    def let_through(self) -> Iterator[None]:
        self.check()
        if self.previous is None:
            yield
            return
        mine = signal.signal(signal.SIGINT, self.previous)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, mine)
