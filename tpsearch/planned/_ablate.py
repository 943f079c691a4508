"""What does each training trick add? Train one architecture bare, then with each named trick switched on in turn
(cumulatively), several seeds per row, and tabulate the accuracy with its spread over the seeds.

    >>> from tpsearch.search import AblateOptions, ablate
    >>> opts = AblateOptions(preset="se_mxresnet20", tricks=["cosine", "label_smoothing", "mixup", "reflect"],
    ...                      dataset="digits", epochs=8)
    >>> result = ablate(opts)  # doctest: +SKIP
    >>> [(row["label"], row["accuracy_mean"], row["accuracy_std"]) for row in result["rows"]]  # doctest: +SKIP

The chain is a small study run by the search's own driver (`run_search` with planned trials): every row and seed
is one trial, enqueued whole (the architecture's params and the training's, `spaces._training.params_of`) with
its `row`, `tricks` and `seed` as user attributes. So it is recorded like any search (optuna-dashboard reads it),
and calling it again trains only the rows and seeds the study does not hold yet: a longer chain or more seeds
reuse what is there. The baseline is every trick of `spaces._training.TRICKS` off (step decay, zero padding, no
label smoothing, no mixup, no confidence penalty, SGD); a seed fixes a trial's initial weights and batches, so
row k and row k+1 of one seed start from the same weights and differ only by the trick.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tpsearch.exceptions import UsageError
from tpsearch.planned._planned import _SEARCH, PlannedOptions
from tpsearch.search import RunOptions

DEFAULT_TRICKS = ["cosine", "label_smoothing", "mixup", "reflect"]  # the SE-MXResNet project's chain


@dataclass
class AblateOptions(PlannedOptions):
    """Everything `tpsearch ablate` takes; each field is the flag of the same name (the trainings' fields are
    `PlannedOptions`'). Invalid values raise `UsageError` when the options are made."""

    preset: str = "se_mxresnet20"
    space: str | None = None              # None: the space that has the preset
    tricks: list[str] = field(default_factory=lambda: list(DEFAULT_TRICKS))  # switched on in this order
    seed: int = 0                         # the first seed, and the data split's
    epochs: int = _SEARCH.epochs
    batch_size: int = 128
    warmup_epochs: float = 1.0
    dataset: str = "cifar10"
    study: str | None = None              # None: ablate-PRESET-DATASET

    def __post_init__(self) -> None:
        from tpsearch.spaces import BATCH_SIZES, TRICKS

        super().__post_init__()
        for name in self.tricks:
            if name not in TRICKS:
                raise UsageError(f"unknown trick {name!r}; choose from: {', '.join(TRICKS)}")
        if len(set(self.tricks)) != len(self.tricks):
            raise UsageError(f"--tricks names each trick once, but got {','.join(self.tricks)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"--batch-size must be an integer of at least 1, but got {self.batch_size!r}")
        if self.batch_size not in BATCH_SIZES:  # the chain's trials are a study's: their params must be drawable
            raise UsageError(f"--batch-size must be one of {', '.join(map(str, BATCH_SIZES))} (the batch sizes a "
                             f"search draws), but got {self.batch_size}")
        self.dataset = self.run_options().dataset  # the search's own checks of the rest, the data set made canonical

    def study_name(self) -> str:
        from tpsearch.trainers import dataset_label

        return self.study or f"ablate-{self.preset}-{dataset_label(self.dataset)}"

    def run_options(self, space: str | None = None,
                    max_params: int = _SEARCH.max_params) -> RunOptions:
        from tpsearch.spaces import SEARCHED_TRICKS

        return self.planned_run(seed=self.seed, space=space or self.space or "resnet_5m", study=self.study_name(),
                                   dataset=self.dataset, max_params=max_params,
                                   tricks=list(SEARCHED_TRICKS))  # every trick field is a param of the planned trials


def chain_hparams(tricks: list[str], batch_size: int) -> list[dict[str, Any]]:
    """The training hyperparameters of each row: the baseline (every trick off), then each trick switched on in
    turn; the learning rate is the trainer's default peak for the row's optimizer."""
    from tpsearch.spaces import TRICKS
    from tpsearch.trainers import DEFAULT_LR, TrainConfig

    defaults = TrainConfig()
    row = {"optimizer": "sgd", "weight_decay": defaults.weight_decay, "batch_size": batch_size,
           **{t.field: t.off for t in TRICKS.values()}}
    rows = [dict(row)]
    for name in tricks:
        row[TRICKS[name].field] = TRICKS[name].on
        rows.append(dict(row))
    return [{**r, "lr": DEFAULT_LR[r["optimizer"]]} for r in rows]


def ablate(opts: AblateOptions) -> dict[str, Any]:
    """Train the chain's missing trials through the driver, then read every row back from the study: a dict with
    a `rows` list (label, tricks, the seeds' accuracies, their mean and standard deviation, the error) and what
    was trained how."""
    import optuna

    from tpsearch import spaces, trainers
    from tpsearch.search import PlannedTrial, enqueued_arch, run_search
    from tpsearch.planned._planned import existing_trials, made_trials
    from tpsearch.spaces import params_of

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the table and the progress bar say what its INFO would
    started = time.time()
    space = spaces.get(opts.space) if opts.space else space_with_preset(opts.preset)
    data = trainers.load_dataset(opts.dataset, opts.data_dir, seed=opts.seed)
    shape = data.shape
    arch = space.validate(space.preset(opts.preset), in_channels=data.in_channels, image_size=data.image_size)
    params = space.count_params(arch, **shape)
    run = opts.run_options(space.name, max(_SEARCH.max_params, params))
    if run.train_images is not None and run.train_images > len(data.train_y):
        raise UsageError(f"--train-images {run.train_images} is more than the {len(data.train_y)} training images "
                         f"of {opts.dataset}")
    enqueued_arch(space, opts.preset, shape, run.max_params)  # the driver's check that the space can draw it
    arch_params = space.params_of(arch, in_channels=data.in_channels, image_size=data.image_size)
    rows = chain_hparams(opts.tricks, opts.batch_size)
    # Seed by seed: a run stopped half way already has every row at least once.
    planned = [PlannedTrial({**arch_params, **params_of(hp)},
                            {"row": k, "tricks": opts.tricks[:k], "seed": opts.seed + s})
               for s in range(opts.seeds) for k, hp in enumerate(rows)]
    before = len(made_trials(existing_trials(run, "an ablation"), planned))
    summary = run_search(run, planned=planned)
    if summary.interrupted:
        raise KeyboardInterrupt  # the trials finished so far are in the study: the same call resumes
    made = made_trials(existing_trials(run, "an ablation"), planned)
    return {
        "study": run.study_name(), "storage": summary.storage, "space": space.name, "preset": opts.preset,
        "arch": arch, "params": params, "dataset": data.name, "epochs": opts.epochs,
        "train_images": trainers.images_per_epoch(data, run.train_config({})), "batch_size": opts.batch_size,
        "seeds": opts.seeds, "tricks": opts.tricks, "rows": _rows(rows, opts.tricks, made, planned),
        "trained_now": len(made) - before, "missing": len(planned) - len(made),
        "seconds": round(time.time() - started, 1), "error": summary.error,
    }


def _rows(rows: list[dict[str, Any]], tricks: list[str], made: dict[int, Any], planned: list[Any]
          ) -> list[dict[str, Any]]:
    from tpsearch.study import Outcome, outcome_of
    from tpsearch.planned._planned import mean_std

    out = []
    for k, hparams in enumerate(rows):
        trials = sorted((t for i, t in made.items() if planned[i].attrs["row"] == k),
                        key=lambda t: t.user_attrs["seed"])
        accuracies = [float(t.value) for t in trials]
        mean, std = mean_std(accuracies)
        out.append({"row": k, "label": "baseline" if k == 0 else f"+ {tricks[k - 1]}", "tricks": tricks[:k],
                    "hparams": hparams, "seeds": len(trials), "accuracies": accuracies,
                    "accuracy_mean": mean, "accuracy_std": std,
                    "error_mean": None if mean is None else 1.0 - mean,
                    "diverged": sum(1 for t in trials if outcome_of(t) == Outcome.DIVERGED),
                    "trials": [{"number": t.number, "seed": t.user_attrs["seed"], "value": t.value} for t in trials]})
    return out


def space_with_preset(preset: str) -> Any:
    from tpsearch import spaces

    having = [name for name in spaces.names() if preset in spaces.get(name).presets]
    if not having:
        known = "; ".join(f"{n}: {', '.join(sorted(spaces.get(n).presets))}" for n in spaces.names())
        raise UsageError(f"unknown preset {preset!r}; presets by space: {known}")
    if len(having) > 1:
        raise UsageError(f"preset {preset!r} is in several spaces ({', '.join(having)}): give --space")
    return spaces.get(having[0])
