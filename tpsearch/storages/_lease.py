"""One driver per study: a lease kept in the study itself, so it works on SQLite and PostgreSQL alike.

A second `tpsearch run` on a study that a live driver is searching refuses with one line, instead of marking
the first driver's running trials as lost. A lease left by a killed driver is taken over at once on the same
host (its pid is gone) and after `STALE_S` seconds without a heartbeat from another host.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import optuna

from tpsearch.exceptions import UsageError

KEY = "driver"
HEARTBEAT_S = 15.0
STALE_S = 90.0


def _alive(lease: dict[str, Any]) -> bool:
    if time.time() - float(lease.get("heartbeat", 0)) > STALE_S:
        return False
    if lease.get("host") == socket.gethostname():
        try:
            os.kill(int(lease["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, KeyError):
            pass
    return True


class DriverLease:
    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        self._check_free()
        self._write()
        # Two drivers starting in the same instant both saw no lease: the last writer wins, the other refuses.
        time.sleep(0.3)
        self._check_free()
        self._thread = threading.Thread(target=self._beat, name="tpsearch-driver-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        lease = self._read()
        if lease and lease.get("pid") == self.mine["pid"] and lease.get("host") == self.mine["host"]:
            self.study.set_user_attr(KEY, None)

    def _check_free(self) -> None:
        lease = self._read()
        if not lease or (lease.get("pid") == self.mine["pid"] and lease.get("host") == self.mine["host"]):
            return
        if _alive(lease):
            since = time.strftime("%H:%M:%S", time.localtime(float(lease.get("since", 0))))
            raise UsageError(f"study {self.study.study_name!r} is being searched by pid {lease.get('pid')} on "
                             f"{lease.get('host')} (since {since}); wait for it to end or pick another --study")

    def _read(self) -> dict[str, Any] | None:
        # A fresh look at the storage: Study.user_attrs may be cached within this process.
        summaries = self.study._storage.get_study_user_attrs(self.study._study_id)
        return summaries.get(KEY)

    def _write(self) -> None:
        self.study.set_user_attr(KEY, {**self.mine, "heartbeat": time.time()})

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._write()
            except Exception:  # a storage hiccup must not kill the lease thread; the next beat retries
                pass
