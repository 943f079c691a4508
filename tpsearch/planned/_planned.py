"""What the small studies of fixed trials share (`tpsearch ablate`, `tpsearch rerank`): the study they resume,
which of their planned trials it holds trained, and the mean and spread over a trial's seeds.

Such a study is run by the driver (`run_search(opts, planned=...)`), so it is recorded like any search; these
functions only read it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions

# What must match for a resumed study's trials to compare with a new call's.
FIDELITY = ("epochs", "train_fraction", "train_images", "seed")


def existing_trials(run: RunOptions, what: str, attrs: dict[str, Any] | None = None) -> list[Any]:
    """The study's trials (none if it does not exist yet); a study of another fidelity, or whose `attrs` differ
    (a rerank's source study), is refused in one line, since its trials would not compare with this call's."""
    from tpsearch.storages import load_study, open_storage, study_names

    storage = open_storage(run.storage)
    if run.study_name() not in study_names(storage):
        return []
    study = load_study(storage, run.study_name())
    wanted = {**{key: getattr(run, key) for key in FIDELITY}, **(attrs or {})}
    for key, mine in wanted.items():
        theirs = study.user_attrs.get(key)
        if theirs != mine:
            raise UsageError(f"study {run.study_name()!r} holds {what} with {key} {theirs!r}, not {mine!r}: "
                             f"give another --study")
    return study.get_trials(deepcopy=False)


def made_trials(trials: list[Any], planned: Sequence[Any]) -> dict[int, Any]:
    """The trained trial of each planned one that the study holds, by its index in the plan."""
    from tpsearch.study import is_trained

    trained = [t for t in trials if is_trained(t)]
    made = {}
    for i, plan in enumerate(planned):
        match = next((t for t in trained if plan.made(t)), None)
        if match is not None:
            made[i] = match
    return made


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (n - 1: the spread a reader of a table over seeds expects);
    0 for one value, None for none."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
