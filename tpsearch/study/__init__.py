"""The read side of a study: a trial's outcome, the objectives and their front, the best trial, the trials as a frame
(with the best so far), and how far two rankings agree. Below everything that reads a study (the search, the
planned studies, export, the dashboards, the command line); it imports none of them.

    >>> import optuna
    >>> from tpsearch.study import best_trial, outcome_of
    >>> study = optuna.load_study(study_name="resnet_5m-digits", storage="sqlite:///studies.db")  # doctest: +SKIP
    >>> best_trial(study).value, [outcome_of(t).value for t in study.trials]  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any

from tpsearch.study._axes import X_AXES
from tpsearch.study._objectives import (OBJECTIVES, check_objectives, directions, dominates, hypervolume, objectives_of,
                                        pareto_front, pareto_mask, pareto_rows, values_for)
from tpsearch.study._outcome import (CHANCE, TOO_SLOW, Outcome, accuracy_of, best_trial, count_outcomes,
                                     final_accuracy, is_trained, outcome_of, ranked, trained_index, trial_label)
from tpsearch.study._ranks import agreement, average_ranks, interval, kendall, spearman, topk_overlap
from tpsearch.study._records import BUDGET_ATTR

# The trials' frame needs pandas: imported on first use, so that the driver and the command line's parser do not
# pay for it.
_FRAME = ("STATUSES", "best_so_far", "completed_values", "in_order", "numeric", "status_of", "trials_frame",
          "trials_of")

__all__ = sorted(["BUDGET_ATTR", "X_AXES", "CHANCE", "OBJECTIVES", "Outcome", "TOO_SLOW", "accuracy_of", "agreement",
                  "average_ranks", "best_trial", "check_objectives", "count_outcomes", "directions", "dominates",
                  "final_accuracy", "hypervolume", "interval", "is_trained", "kendall", "objectives_of", "outcome_of",
                  "pareto_front", "pareto_mask", "pareto_rows", "ranked", "spearman", "topk_overlap", "trained_index",
                  "trial_label", "values_for", *_FRAME])


def __getattr__(name: str) -> Any:
    if name in _FRAME:
        return getattr(importlib.import_module("tpsearch.study._frame"), name)
    raise AttributeError(f"module 'tpsearch.study' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
