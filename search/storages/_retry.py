"""Storage that rides out a database restart: the driver's writes wait and retry instead of ending the search."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

import optuna
from optuna.storages import BaseStorage
from sqlalchemy import exc as sa_exc

# What a server going away looks like: Optuna wraps SQLAlchemy errors raised inside its sessions in
# StorageInternalError; a few paths let SQLAlchemy's own connection errors through.
TRANSIENT = (optuna.exceptions.StorageInternalError, sa_exc.OperationalError, sa_exc.InterfaceError)


class RetryingStorage(BaseStorage):
    """Every storage call retried with backoff for up to `patience` seconds on connection errors.

    Wraps Optuna's own cached RDB storage. Other errors (a finished trial updated, a duplicate study) are not
    transient and pass straight through. A write whose acknowledgement was lost may be applied twice; for
    `create_new_trial` that leaves a trial RUNNING, which the next run marks FAIL like any other stale trial.
    """

    def __init__(self, inner: BaseStorage, patience: float = 120.0,
                 warn: Callable[[str], None] | None = None) -> None:
        self._inner = optuna.storages.get_storage(inner)
        self._patience = patience
        self._warn = warn or _warn_stderr

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        deadline, delay, warned = time.monotonic() + self._patience, 0.2, False
        while True:
            try:
                return getattr(self._inner, name)(*args, **kwargs)
            except TRANSIENT as e:
                if time.monotonic() + delay > deadline:
                    raise
                if not warned:
                    self._warn(f"tpsearch: storage unreachable ({type(e).__name__}); retrying for up to "
                               f"{self._patience:.0f} s")
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def __getattr__(self, name: str) -> Any:  # anything not part of BaseStorage's interface
        if name.startswith("__") or name == "_inner":
            # Asked while copy or pickle rebuild the object, before `_inner` exists: not the inner storage's.
            raise AttributeError(name)
        return getattr(self._inner, name)


def _warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _forward(name: str) -> Callable[..., Any]:
    def method(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


for _name in [n for n in dir(BaseStorage) if not n.startswith("_") and callable(getattr(BaseStorage, n))]:
    setattr(RetryingStorage, _name, _forward(_name))
RetryingStorage.__abstractmethods__ = frozenset()
