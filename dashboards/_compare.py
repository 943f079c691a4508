"""Comparing searches fairly: best-so-far against what was spent, and studies grouped over seeds.

Optuna's trial numbers count every draw, and a draw over the budget is told back in milliseconds: random search on a
tight budget reaches trial 400 after 20 trained networks while TPE, which learns the budget, is at trial 50. So the
curves are drawn against what a search spends, trained trials (`trained`, the frame's index among the trained ones)
or training seconds (the trained trials' own seconds, summed in the order they finished), and studies that differ
only in their seed are grouped (by a study attribute: `sampler`, say) into a mean with a band of one standard
deviation, so that "is TPE better than random here?" is read off one figure and one table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from tpsearch.study import dominates, hypervolume, in_order

GRID = 200  # points of the shared seconds axis of a group


def hypervolume_so_far(frame: pd.DataFrame, costs: Sequence[str], scales: Sequence[float], x: str = "trained"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The hypervolume of the completed trials so far at each step of `x`: of the points (1 - accuracy,
    cost / scale, ...) for the frame's cost columns `costs`, inside the unit box (a trial costing more than a
    scale adds nothing). One number that grows when a search finds a more accurate or a cheaper network: the
    multi-objective counterpart of the best so far, comparable between studies given the same scales."""
    rows, steps = in_order(frame, x)
    points: list[tuple[float, ...]] = []
    out = np.zeros(len(rows))
    volume = 0.0
    for i, (_, r) in enumerate(rows.iterrows()):
        values = [r["value"], *(r.get(c) for c in costs)]
        if r["status"] == "complete" and not any(v is None or pd.isna(v) for v in values):
            points.append((1.0 - float(values[0]), *(float(v) / s for v, s in zip(values[1:], scales))))
            points = [p for p in points if not any(dominates(q, p) for q in points)]
            volume = hypervolume(points, [1.0] * (1 + len(costs)))  # only a new point can change it
        out[i] = volume
    return steps, out


def _at(steps: np.ndarray, best: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step function (steps, best) read at `grid`; NaN before its first step and after its last."""
    out = np.full(len(grid), np.nan)
    if len(steps) == 0:
        return out
    i = np.searchsorted(steps, grid, side="right") - 1
    inside = (i >= 0) & (grid <= steps[-1])
    out[inside] = best[i[inside]]
    return out


def spread(values: np.ndarray) -> np.ndarray:
    """The standard deviation over studies (axis 0) with n - 1, as ablate's and rerank's tables give it over seeds;
    0 for a single study."""
    return values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])


@dataclass
class Band:
    """A group's curve: the mean over its studies of their best so far, and the standard deviation around it
    (`spread`)."""

    name: str
    studies: list[str]
    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def band(name: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], x: str) -> Band:
    """Studies' curves on one grid (whole trained trials, or seconds), averaged where every study of the group has
    a value: from the point where each has completed a trial to the point where the shortest one ended, so that
    the mean compares equal spending and never jumps as studies join or leave it (NaN elsewhere)."""
    ends = [steps[-1] if len(steps) else 0.0 for steps, _ in curves.values()]
    top = min(ends) if ends else 0.0
    grid = {"trained": np.arange(1.0, top + 1.0), "trial": np.arange(0.0, top + 1.0),
            "seconds": np.linspace(0.0, top, GRID)}[x]
    values = np.vstack([_at(steps, best, grid) for steps, best in curves.values()])
    everyone = ~np.isnan(values).any(axis=0)
    mean, std = np.full(len(grid), np.nan), np.full(len(grid), np.nan)
    mean[everyone], std[everyone] = values[:, everyone].mean(axis=0), spread(values[:, everyone])
    return Band(name, list(curves), grid, mean, std)


def best_at(curves: dict[str, tuple[np.ndarray, np.ndarray]], n: int) -> list[float]:
    """Each study's best validation accuracy after `n` trained trials (NaN where it trained fewer)."""
    return [float(_at(steps, best, np.array([float(n)]))[0]) for steps, best in curves.values()]
