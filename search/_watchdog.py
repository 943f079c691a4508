"""--trial-timeout: a trial that runs past its time is killed from outside, since a hung one never reports again.
--stall-timeout: a search in which no trial reports for too long says what is stuck and ends, resumable."""
from __future__ import annotations

import time
from typing import Any, Callable

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.stopper import Stopper


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


# --stall-timeout's default rule: generous, and scaled by what this run's trials show of their pace.
STALL_FLOOR = 20 * 60.0  # seconds: never sooner (a first epoch includes start-up and the data set's loading)
STALL_FACTOR = 5.0       # times the longest gap seen between two reports of one trial (its start the first)


class StallWatchdog(Callback):
    """Ends a search in which no trial has reported for too long (Ray Tune can leave a trial pending forever when
    a reused actor fails to reset, with workers idle and no message): one line names the stuck trials and since
    when, they are told FAIL as an interrupted run's are, and the run ends; the same command resumes the study.

    The bound is `timeout` seconds when given; else the longer of STALL_FLOOR and STALL_FACTOR times the longest
    gap this run has seen between two reports of one trial. Unlike TrialWatchdog, which bounds each trial's
    lifetime, this bounds the whole search's silence: one slow trial beside others that report is no stall.
    """

    def __init__(self, searcher: Any, timeout: float | None) -> None:
        self.searcher, self.timeout = searcher, timeout
        self.heard = time.monotonic()          # the search's last sign of progress
        self.last: dict[str, float] = {}       # each live trial's last report (or start, or first sight)
        self.slowest = 0.0
        self.stalled: str | None = None        # the line, once it has fired
        self.stop = _StopWhen()

    def __getstate__(self) -> dict[str, Any]:
        """Ray Tune pickles its callbacks into the run's folder; the searcher (live trials, the study's storage)
        stays with the driver, as the searcher's own state does."""
        return {**self.__dict__, "searcher": None}

    def bound(self) -> float:
        if self.timeout is not None:
            return self.timeout
        return max(STALL_FLOOR, STALL_FACTOR * self.slowest)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.heard = self.last[trial.trial_id] = time.monotonic()

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        now = time.monotonic()
        self.slowest = max(self.slowest, now - self.last.get(trial.trial_id, now))
        self.heard = self.last[trial.trial_id] = now

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.heard = time.monotonic()
        self.last.pop(trial.trial_id, None)

    on_trial_error = on_trial_complete

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        now = time.monotonic()
        live = self.searcher.live
        if self.stalled is not None or not live:
            self.heard = now  # nothing running cannot stall; the next trial's start is the next sign
            return
        for trial_id in live:
            self.last.setdefault(trial_id, now)
        silent = now - self.heard
        if silent > self.bound():
            self._fire(trials, silent, now)

    def _fire(self, trials: list[Trial], silent: float, now: float) -> None:
        searcher, wall = self.searcher, time.time()

        def stuck(trial_id: str) -> str:
            ago = now - self.last[trial_id]
            at = time.strftime("%H:%M:%S", time.localtime(wall - ago))
            epoch = searcher.epoch.get(trial_id)
            what = f"epoch {epoch} reported" if epoch is not None else "no report yet"
            return f"#{searcher.live[trial_id].number} ({what}, silent since {at}, {ago:.0f} s)"

        named = ", ".join(stuck(t) for t in searcher.live)
        rule = "--stall-timeout" if self.timeout is not None else "--stall-timeout's default"
        self.stalled = (f"the search stalled: no trial reported for {silent:.0f} s (over {self.bound():.0f} s, "
                        f"{rule}); stuck: {named}; marked FAIL, run the same command to resume")
        # Their workers are killed, not stopped: a stop waits for the training thread that never answers.
        for trial in trials:
            actor = getattr(trial.temporary_state, "ray_actor", None)
            if trial.trial_id in searcher.live:
                trial.max_failures = 0
                if actor is not None:
                    ray.kill(actor, no_restart=True)
        searcher.fail_live(f"stalled: no trial reported for {silent:.0f} s (--stall-timeout)")
        searcher.error = self.stalled  # after fail_live, whose FAILs may have set the failure limit's message
        self.stop.fired = True

    def stopper(self) -> Stopper:
        """What ends Ray Tune's loop once the watchdog has fired (a callback alone cannot end it)."""
        return self.stop


class _StopWhen(Stopper):
    """A flag, not a closure: Ray Tune saves the run's stopper with its experiment state (pickled, while trials
    run), so it must not reach the searcher's live trials and their storage."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.fired
