"""What a search optimises: validation accuracy alone (the default), or accuracy against costs, and the Pareto front.

`tpsearch run --objectives accuracy,macs` makes a multi-objective Optuna study: one direction per objective,
accuracy first (maximised), each cost after it (minimised). A completed trial is told its values in that order; the
costs are what the driver already records per trial (parameters and MACs when drawn, the latency its worker timed),
so a two-objective study holds the same attributes as a one-objective one. The study's `objectives` attribute names
them; a study without one has the single objective "accuracy".

The front is tpsearch's own, read through `outcome_of`: completed, feasible, not diverged (a diverged trial is told
chance accuracy, and a tiny diverged network would otherwise sit on the front at the cheap end).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import math

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from tpsearch.exceptions import UsageError
from tpsearch.study._outcome import Outcome, accuracy_of, outcome_of, trained_index

ACCURACY = "accuracy"


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str   # Optuna's word: "maximize" or "minimize"
    label: str       # for tables and axes
    attr: str | None  # the trial's user attribute holding the value (accuracy is the trial's value itself)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective(ACCURACY, "maximize", "validation accuracy", None),
    Objective("params", "minimize", "parameters", "params"),
    Objective("macs", "minimize", "MACs per image", "macs"),
    Objective("latency", "minimize", "latency (ms per image, batch 1)", "latency_ms"),
)}


def check_objectives(names: Sequence[str]) -> list[str]:
    """The objectives as given, checked: accuracy first, then distinct known costs."""
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise UsageError(f"--objectives: unknown {', '.join(map(repr, unknown))}; known: {', '.join(OBJECTIVES)}")
    if not names or names[0] != ACCURACY:
        raise UsageError(f"--objectives must start with accuracy (what every trial is trained for), then costs, "
                         f"but got {','.join(names) or 'nothing'!r}")
    if len(set(names)) != len(names):
        raise UsageError(f"--objectives names each objective once, but got {','.join(names)!r}")
    return names


def directions(names: Sequence[str]) -> list[str]:
    return [OBJECTIVES[n].direction for n in names]


def objectives_of(study: optuna.Study) -> list[str]:
    """The objectives of a tpsearch study; a UsageError for a study whose directions are not tpsearch's."""
    names = study.user_attrs.get("objectives") or [ACCURACY]
    wanted = [optuna.study.StudyDirection[d.upper()] for d in directions(names)]
    if list(study.directions) != wanted:
        got = ", ".join(d.name.lower() for d in study.directions)
        raise UsageError(f"study {study.study_name!r} has directions {got}, not those of tpsearch's objectives "
                         f"{','.join(names)}: is it another tool's study?")
    return list(names)


def values_for(names: Sequence[str], accuracy: float, attrs: Mapping[str, object]) -> float | list[float]:
    """What to tell Optuna for a trial of `accuracy` whose attributes (and final report) are `attrs`: the accuracy
    alone for a one-objective study, else one value per objective."""
    if list(names) == [ACCURACY]:
        return accuracy
    values = []
    for n in names:
        o = OBJECTIVES[n]
        values.append(accuracy if o.attr is None else float(attrs[o.attr]))  # type: ignore[arg-type]
    return values


def costs_of(trial: FrozenTrial, names: Sequence[str]) -> dict[str, float | None]:
    """The trial's cost per objective after accuracy, from its attributes (None where it has none)."""
    out: dict[str, float | None] = {}
    for n in names[1:]:
        v = trial.user_attrs.get(OBJECTIVES[n].attr or "")
        out[n] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    return out


def _losses(trial: FrozenTrial, names: Sequence[str]) -> tuple[float, ...] | None:
    """The trial as a point to minimise on every axis, or None where a value is missing or not finite."""
    acc = accuracy_of(trial)
    costs = costs_of(trial, names)
    point = (None if acc is None else -acc, *costs.values())
    if any(v is None or not math.isfinite(v) for v in point):
        return None
    return tuple(float(v) for v in point)  # type: ignore[arg-type]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b on every axis and better on one (all axes minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(trials: Iterable[FrozenTrial], names: Sequence[str]) -> list[FrozenTrial]:
    """The completed, feasible, non-diverged trials that no other such trial dominates over `names` (accuracy
    and the costs), most accurate first; of trials with equal values, the earliest."""
    points: dict[tuple[float, ...], FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if outcome_of(t) is not Outcome.COMPLETE:
            continue
        p = _losses(t, names)
        if p is not None and p not in points:
            points[p] = t
    front = [p for p in points if not any(dominates(q, p) for q in points)]
    return [points[p] for p in sorted(front)]


def pareto_rows(trials: Sequence[FrozenTrial], names: Sequence[str]) -> list[dict[str, object]]:
    """The front as rows for tables and JSON: Optuna's trial number, its place among the trained trials, the
    accuracy and each cost."""
    index = trained_index(trials)
    return [{"trial": t.number, "trained": index.get(t.number), "accuracy": accuracy_of(t), **costs_of(t, names)}
            for t in pareto_front(trials, names)]


def hypervolume(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume that `points` (all axes minimised) dominate inside the box up to `reference`: exact, by slicing
    along the last axis (the fronts of a search are tens of points, so the simple recursion is quick)."""
    pts = sorted({tuple(p) for p in points if all(x < r for x, r in zip(p, reference))}, key=lambda p: p[-1])
    if not pts:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in pts)
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else reference[-1]
        if top > p[-1]:
            volume += hypervolume([q[:-1] for q in pts[:i + 1]], reference[:-1]) * (top - p[-1])
    return volume


def pareto_mask(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """The trials no other beats on both counts: fewer (or as many) parameters and a higher accuracy."""
    order = np.lexsort((-accuracy, cost))  # cheapest first; at equal cost the most accurate first
    mask = np.zeros(len(cost), dtype=bool)
    best = -np.inf
    for i in order:
        if accuracy[i] > best:
            mask[i], best = True, accuracy[i]
    return mask
