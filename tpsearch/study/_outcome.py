"""A trial's outcome, in one vocabulary, and the best trial: how everything in tpsearch reads a study.

Optuna's states say too little on their own: an infeasible trial (over the parameter budget, or out of memory at
every batch size tried) is told back PRUNED like a trial that ASHA stopped, and is told apart by its
`feasible: false` attribute; a diverged trial is told back PRUNED and infeasible through its `diverged`
constraint, and is told apart by its `reason`. Both are states Optuna's samplers read, so every trained
configuration teaches the sampler something (TPE ignores FAIL), and neither is ever among TPE's good trials while
a trial that trained normally exists (TPE ranks infeasible trials after all the others). The searcher, the run summary, `status`, the dashboards, export and the tests all read trials
through these functions.
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
    DIVERGED = "diverged"      # its training loss stopped being finite; told PRUNED, infeasible by its `diverged`
                               # constraint (studies before that: COMPLETE at chance accuracy)
    INFEASIBLE = "infeasible"  # over a budget: parameters, MACs (told at once, never trained), latency (timed by a
                               # worker, never trained) or memory; see `reason`
    FAILED = "failed"          # the worker itself broke (raised, was killed, timed out); `reason` says how
    RUNNING = "running"
    WAITING = "waiting"        # enqueued, not drawn yet

    @property
    def trained(self) -> bool:
        """What `--trials` counts: trials whose training gave the sampler a score (completed, pruned, diverged).
        Failed and infeasible ones are replaced."""
        return self in (Outcome.COMPLETE, Outcome.PRUNED, Outcome.DIVERGED)


TOO_SLOW = "too slow"  # a worker's failure word for a model over --max-latency-ms (told back INFEASIBLE)

_BY_STATE = {TrialState.COMPLETE: Outcome.COMPLETE, TrialState.PRUNED: Outcome.PRUNED,
             TrialState.FAIL: Outcome.FAILED, TrialState.RUNNING: Outcome.RUNNING,
             TrialState.WAITING: Outcome.WAITING}


def outcome_of(trial: FrozenTrial) -> Outcome:
    if trial.user_attrs.get("feasible") is False:
        return Outcome.INFEASIBLE
    if trial.state in (TrialState.PRUNED, TrialState.COMPLETE) \
            and trial.user_attrs.get("reason") == Outcome.DIVERGED.value:
        return Outcome.DIVERGED
    return _BY_STATE[trial.state]


def is_trained(trial: FrozenTrial) -> bool:
    return outcome_of(trial).trained


def count_outcomes(trials: Iterable[FrozenTrial]) -> dict[Outcome, int]:
    """Trials per outcome, every outcome present (zero where none)."""
    counts = Counter(outcome_of(t) for t in trials)
    return {o: counts.get(o, 0) for o in Outcome}


def accuracy_of(trial: FrozenTrial) -> float | None:
    """A trial's validation accuracy: its value, or its first value in a multi-objective study (`_objectives`)."""
    return trial.values[0] if trial.values else None


CHANCE = "chance"  # a diverged trial's user attribute: the accuracy of predicting one class (1 / classes)


def final_accuracy(trial: FrozenTrial) -> float | None:
    """What a trial's training gave in the end: its accuracy, or chance for one that diverged (weights gone NaN
    predict one class for every image), whatever it reached before: diverging late earns nothing."""
    if outcome_of(trial) is Outcome.DIVERGED:
        return trial.user_attrs.get(CHANCE, accuracy_of(trial))
    return accuracy_of(trial)


def ranked(trials: optuna.Study | Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Completed trials with a finite accuracy, most accurate first (in a multi-objective study too)."""
    if isinstance(trials, optuna.Study):
        trials = trials.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done = [t for t in trials if outcome_of(t) is Outcome.COMPLETE and accuracy_of(t) is not None
            and math.isfinite(accuracy_of(t))]
    return sorted(done, key=lambda t: (-accuracy_of(t), t.number))


def best_trial(trials: optuna.Study | Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The best completed trial (ties go to the earlier one), or None before any completed."""
    best = ranked(trials)
    return best[0] if best else None


def trained_index(trials: Iterable[FrozenTrial]) -> dict[int, int]:
    """Each trained trial's place among the study's trained trials (1, 2, ... by trial number). Optuna's numbers
    also count the draws told back infeasible, so "trial 18" may be the 4th network trained: tpsearch names a
    trial by both."""
    return {t.number: i for i, t in enumerate(sorted((t for t in trials if is_trained(t)), key=lambda t: t.number),
                                              start=1)}


def trial_label(number: int, index: int | None) -> str:
    """"trial 18 (trained #4)": Optuna's number, which optuna-dashboard and --trial use, and the trained index."""
    return f"trial {number}" + ("" if index is None else f" (trained #{index})")
