"""--trial-timeout: a trial that runs past its time is killed from outside, since a hung one never reports again."""
from __future__ import annotations

import time
from typing import Any, Callable

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial


class TrialWatchdog(Callback):
    """Checks running trials at every step of Tune's loop; kills the worker of one past `timeout` seconds.

    The killed trial is not retried (a hang would only hang again): its `max_failures` is set to 0 first, so that
    Ray Tune reports it failed, and `on_timeout` tells the searcher why.
    """

    def __init__(self, timeout: float, on_timeout: Callable[[str, float], None]) -> None:
        self.timeout, self.on_timeout = timeout, on_timeout
        self.started: dict[str, float] = {}
        self.killed: set[str] = set()

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        now = time.monotonic()
        for trial in trials:
            if trial.status != Trial.RUNNING:
                self.started.pop(trial.trial_id, None)
                continue
            since = self.started.setdefault(trial.trial_id, now)
            actor = getattr(trial.temporary_state, "ray_actor", None)
            if now - since > self.timeout and trial.trial_id not in self.killed and actor is not None:
                self.killed.add(trial.trial_id)
                trial.max_failures = 0
                self.on_timeout(trial.trial_id, now - since)
                ray.kill(actor, no_restart=True)
