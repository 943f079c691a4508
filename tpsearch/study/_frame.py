"""A study's trials as one pandas DataFrame: the table every figure and the `trials` export read.

Columns follow `optuna.Study.trials_dataframe` where they overlap (`number`, `value`, `state`, `datetime_start`,
`datetime_complete`, `params_<name>`, `user_attrs_<name>`), plus what the dashboards need:
  status           the trial's outcome (`tpsearch.study.Outcome`): complete | pruned | diverged | infeasible |
                   failed | running | waiting
  value            the validation accuracy told (a multi-objective trial's first value: its costs are attributes);
                   Optuna gives a pruned trial its last intermediate value here, so "the best" reads
                   `completed_values`, never this column whole
  accuracy         the value, or else the last reported validation accuracy (a pruned trial's score at its rung)
  last_epoch       the last epoch reported
  best_value       the best value of a completed trial so far, by trial number (what an export could give then)
  trained          the trial's place among the trained ones (`tpsearch.study.trained_index`; empty for others):
                   Optuna's numbers count infeasible draws too
  duration_s       seconds from start to completion
  arch_<key>       the `arch` user attribute flattened: scalars as they are, lists as `arch_<key>_<i>` (1-based),
                   and `arch_blocks_total` (the depth in blocks)
  intermediate_values  {epoch: accuracy} per trial
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from tpsearch.study._axes import X_AXES
from tpsearch.study._outcome import Outcome, accuracy_of, outcome_of

STATUSES = tuple(o.value for o in Outcome)


def trials_of(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial, read once: on SQL storage this read is the slowest step of a page."""
    return study.get_trials(deepcopy=False)


def status_of(trial: FrozenTrial) -> str:
    return outcome_of(trial).value


def _flat_arch(arch: Any) -> dict[str, Any]:
    if not isinstance(arch, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in arch.items():
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value, start=1):
                out[f"arch_{key}_{i}"] = v
            if key == "blocks" and all(isinstance(v, (int, float)) for v in value):
                out["arch_blocks_total"] = sum(value)
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[f"arch_{key}"] = value
        else:
            out[f"arch_{key}"] = json.dumps(value)
    return out


def _row(t: FrozenTrial) -> dict[str, Any]:
    ivs = t.intermediate_values
    last_epoch = max(ivs) if ivs else None
    value = accuracy_of(t)  # the value, or the first of a multi-objective trial's values
    accuracy = value if value is not None else (ivs[last_epoch] if last_epoch is not None else None)
    if accuracy is not None and not math.isfinite(accuracy):
        accuracy = None  # a diverged trial may report NaN; it has no accuracy worth plotting
    row: dict[str, Any] = {
        "number": t.number, "state": t.state.name, "status": status_of(t), "value": value,
        "accuracy": accuracy, "last_epoch": last_epoch,
        "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
    }
    for name, value in t.params.items():
        row[f"params_{name}"] = value
    for key, value in t.user_attrs.items():
        if key == "arch":
            row.update(_flat_arch(value))
        elif isinstance(value, (dict, list, tuple)):
            row[f"user_attrs_{key}"] = json.dumps(value)  # one cell per attribute, whatever its shape
        else:
            row[f"user_attrs_{key}"] = value
    row["intermediate_values"] = dict(sorted(ivs.items()))
    return row


def trials_frame(trials: optuna.Study | Iterable[FrozenTrial], *, maximize: bool = True) -> pd.DataFrame:
    """One row per trial, ordered by number (see the module docstring for the columns).

    `maximize` says which way `best_value` runs; given a study, its direction decides.
    """
    if isinstance(trials, optuna.Study):
        maximize = trials.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        trials = trials_of(trials)
    frame = pd.DataFrame([_row(t) for t in trials])
    if frame.empty:
        frame = pd.DataFrame(columns=["number", "state", "status", "value", "accuracy", "last_epoch",
                                      "datetime_start", "datetime_complete", "intermediate_values"])
    frame = frame.sort_values("number", kind="stable").reset_index(drop=True)
    for col in ("value", "accuracy"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["last_epoch"] = pd.to_numeric(frame["last_epoch"], errors="coerce").astype("Int64")
    for col in ("datetime_start", "datetime_complete"):
        frame[col] = pd.to_datetime(frame[col])
    # NaN until the first completed trial, as it should read; a pruned trial's score never counts (`completed_values`).
    done = completed_values(frame)
    frame["best_value"] = (done.cummax() if maximize else done.cummin()).ffill()
    frame["duration_s"] = (frame["datetime_complete"] - frame["datetime_start"]).dt.total_seconds()
    trained = frame["status"].map(lambda s: Outcome(s).trained)
    frame["trained"] = trained.cumsum().where(trained).astype("Int64")
    # Per-layer columns in layer order (1, 2, ... 10), not the order in which trials first had them.
    front = [c for c in frame.columns if not c.startswith(("params_", "user_attrs_", "arch_"))]
    rest = sorted((c for c in frame.columns if c not in front), key=_natural)
    cols = [c for c in front if c != "intermediate_values"] + rest + ["intermediate_values"]
    return frame[cols]


def completed_values(frame: pd.DataFrame) -> pd.Series:
    """The `value` of each completed trial, NaN for every other: the values "the best" is taken over, as
    `tpsearch.study.best_trial` takes it (Optuna sets a pruned trial's value to its last intermediate score: a
    network stopped at a rung, which no export gives)."""
    return frame["value"].where(frame["status"] == Outcome.COMPLETE.value)


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("_")
    group = {"params": 0, "user": 1, "arch": 2}[name.split("_", 1)[0]]
    return (group, head, int(tail)) if tail.isdigit() else (group, name, -1)


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats, NaN where it is missing (older trials, other spaces)."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def in_order(frame: pd.DataFrame, x: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a curve against `x` walks through, in order, and the step of each."""
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, but got {x!r}")
    if x == "trial":
        rows = frame.sort_values("number")
        steps = rows["number"].to_numpy(dtype=float)
    else:
        rows = frame[frame["trained"].notna()]
        if x == "trained":
            rows = rows.sort_values("trained")
            steps = rows["trained"].to_numpy(dtype=float)
        else:
            rows = rows.sort_values(["datetime_complete", "number"])
            seconds = pd.to_numeric(rows.get("user_attrs_seconds", pd.Series(0.0, index=rows.index)),
                                    errors="coerce").fillna(0.0)
            steps = seconds.cumsum().to_numpy(dtype=float)
    return rows, steps


def best_so_far(frame: pd.DataFrame, x: str = "trained") -> tuple[np.ndarray, np.ndarray]:
    """The best validation accuracy so far (NaN before the first completed trial) at each step of `x`: what
    `best_trial` would have answered then. Every page's "best so far" is this one."""
    rows, steps = in_order(frame, x)
    # Over completed trials only, as `best_trial` reads a study: Optuna gives a pruned trial its last rung's score as
    # its value, which no export can give. The best so far carries over the other rows (cummax leaves them NaN).
    return steps, completed_values(rows).cummax().ffill().to_numpy(dtype=float)
