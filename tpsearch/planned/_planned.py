"""What the small studies of fixed trials share (`tpsearch ablate`, `tpsearch rerank`): the options of their
trainings and the driver's options made from them, the study they resume, which of their planned trials it holds
trained, and the mean and spread over a trial's seeds.

Such a study is run by the driver (`run_search(opts, planned=...)`), so it is recorded like any search; these
functions only read it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions

_SEARCH = RunOptions()
# How the driver runs a study of planned trials: each trial is chosen and trained whole, none is drawn or stopped.
_PLANNED = {"trials": 1, "sampler": "random", "scheduler": "none", "keep_checkpoints": 0,
            "max_macs": None}  # chosen architectures: the search's default cap is not theirs


@dataclass
class PlannedOptions:
    """What a study of planned trainings takes as a search does: each field is `tpsearch run`'s flag and
    `RunOptions`' field of the same name, with run's default unless a command says otherwise. `planned_run` hands
    them to the driver by name, so a training setting is declared once here and copied nowhere."""

    seeds: int = 3                        # trainings per configuration; seed i is --seed + i
    seed: int = 0                         # the first training seed (initial weights, batches)
    epochs: int | None = _SEARCH.epochs
    train_fraction: float = 1.0           # by default the whole training split, more than a search uses
    train_images: int | None = None
    warmup_epochs: float = _SEARCH.warmup_epochs
    data_dir: str = _SEARCH.data_dir
    storage: str = _SEARCH.storage
    runs_dir: str = _SEARCH.runs_dir      # the page goes to RUNS_DIR/STUDY/
    device: str = _SEARCH.device
    gpus_per_trial: float | None = None   # None: 1 where there are GPUs, else 0
    cpus_per_trial: float = _SEARCH.cpus_per_trial
    concurrency: int | None = None
    progress: bool = _SEARCH.progress

    def __post_init__(self) -> None:
        for flag, value in (("--seeds", self.seeds), ("--epochs", self.epochs)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{flag} must be an integer of at least 1, but got {value!r}")
        if not 0 <= self.seed < 2**32 - self.seeds:
            raise UsageError(f"--seed must be 0..{2**32 - 1 - self.seeds} (seeds --seed .. --seed + --seeds - 1 "
                             f"are used), but got {self.seed}")

    def planned_run(self, *, seed: int, **changes: Any) -> RunOptions:
        """The driver's options: a planned study's (`_PLANNED`), these options' training fields by name, then
        `changes` (the study, the space, what differs by command). `seed` is the study's, which seeds its data
        split (a rerank keeps its search's); each trial's own training seed is a user attribute of its plan."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(PlannedOptions)
                 if f.name not in ("seeds", "seed")}
        return dataclasses.replace(_SEARCH, **{**_PLANNED, **given, "seed": seed, **changes})


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
