"""A trial's outcome, in one vocabulary, and the best trial: how everything in tpsearch reads a study.

Optuna's states say too little on their own: an infeasible draw (over the budget, never trained) is told back
PRUNED like a trial that ASHA stopped, and is told apart by its `feasible: false` attribute. The searcher, the run
summary, `status`, the dashboards, export and the tests all read trials through these functions.
"""
from __future__ import annotations

import enum
import math
from collections import Counter
from typing import Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState


class Outcome(str, enum.Enum):
    """How a trial ended (or where it stands). The value is the word used in JSON, tables and pages."""

    COMPLETE = "complete"      # trained to the last epoch; its value is the final validation accuracy
    PRUNED = "pruned"          # trained, then stopped early by the scheduler; its value is its last report
    INFEASIBLE = "infeasible"  # drawn over a budget and told back at once: never trained
    FAILED = "failed"          # the trial broke (diverged, out of memory, a dead worker); `reason` says how
    RUNNING = "running"
    WAITING = "waiting"        # enqueued, not drawn yet

    @property
    def trained(self) -> bool:
        """What `--trials` counts: completed or pruned after training."""
        return self in (Outcome.COMPLETE, Outcome.PRUNED)


_BY_STATE = {TrialState.COMPLETE: Outcome.COMPLETE, TrialState.PRUNED: Outcome.PRUNED,
             TrialState.FAIL: Outcome.FAILED, TrialState.RUNNING: Outcome.RUNNING,
             TrialState.WAITING: Outcome.WAITING}


def outcome_of(trial: FrozenTrial) -> Outcome:
    if trial.user_attrs.get("feasible") is False:
        return Outcome.INFEASIBLE
    return _BY_STATE[trial.state]


def is_trained(trial: FrozenTrial) -> bool:
    return outcome_of(trial).trained


def count_outcomes(trials: Iterable[FrozenTrial]) -> dict[Outcome, int]:
    """Trials per outcome, every outcome present (zero where none)."""
    counts = Counter(outcome_of(t) for t in trials)
    return {o: counts.get(o, 0) for o in Outcome}


def ranked(trials: optuna.Study | Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Completed trials with a finite value, best first (tpsearch maximises validation accuracy)."""
    if isinstance(trials, optuna.Study):
        trials = trials.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done = [t for t in trials if outcome_of(t) is Outcome.COMPLETE and t.value is not None
            and math.isfinite(t.value)]
    return sorted(done, key=lambda t: (-t.value, t.number))


def best_trial(trials: optuna.Study | Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The best completed trial (ties go to the earlier one), or None before any completed."""
    best = ranked(trials)
    return best[0] if best else None
