"""Helpers for tests that drive `tpsearch run` as a separate process and watch its study."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState


def start_run(tmp: Path, *args: str) -> subprocess.Popen:
    """`tpsearch run` in its own process group, as a terminal would start it (Ctrl-C reaches the group)."""
    cmd = [sys.executable, "-m", "search.cli", "run", "--dataset", "digits", "--data-dir", str(tmp / "data"),
           "--storage", f"sqlite:///{tmp}/studies.db", "--runs-dir", str(tmp / "runs"), "--no-progress", *args]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)


def trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=storage).trials
    except KeyError:  # not created yet
        return []


def wait_for(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended early ({proc.returncode}):\n{err[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def trained(ts: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in ts if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.user_attrs.get("feasible")]


def running(ts: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in ts if t.state == TrialState.RUNNING]
