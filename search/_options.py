"""A run's configuration: one dataclass from the flags to the trainer, checked when it is made.

The CLI builds `RunOptions` by field name from its flags; the worker receives the same object and derives the
trainer's `TrainConfig` from it (`train_config`), so a setting is written down once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from tpsearch.exceptions import UsageError
from tpsearch.search._auto import AUTO
from tpsearch.storages import DEFAULT_STORAGE

SAMPLERS = ("tpe", "random", "nsga2")
SCHEDULERS = ("asha", "none")
METRIC = "val_accuracy"  # what every trial reports and the study maximises (first, with --objectives)
CHECKPOINT_BYTES = "checkpoint_bytes"  # the report that carries a trial's weights to the driver


@dataclass
class RunOptions:
    """Everything `tpsearch run` takes; each field is the flag of the same name (`max_params` is `--max-params`).

    Invalid values raise `UsageError` when the options are made, before anything is opened or written.
    """

    space: str = "resnet_5m"              # a registered name, or MODULE:CLASS / FILE.py:CLASS of your own
    trials: int = 200                     # trained trials wanted (completed or pruned; infeasible draws do not count)
    study: str | None = None              # None: SPACE-DATASET (an image folder: SPACE-FOLDER-SIDEpx)
    storage: str = DEFAULT_STORAGE
    sampler: str = "tpe"                  # tpe | random | nsga2 (Optuna's NSGA-II, made for several objectives)
    startup_trials: int = 10              # tpe: trained trials drawn at random before TPE models them
    objectives: list[str] = field(default_factory=lambda: ["accuracy"])  # accuracy, then costs: params, macs, latency
    seed: int = 0                         # of the sampler, the data split and training
    max_params: int = 5_000_000           # parameter budget of a feasible model
    # MACs per image of a feasible model (`Space.count_macs`); "auto": 2 GMAC per 32x32 image scaled by the image's
    # area, or the cap of the study resumed (see `_auto`); None: no limit
    max_macs: int | str | None = AUTO
    max_latency_ms: float | None = None   # ms per image at batch 1 on the trial's device; None: no limit
    dataset: str = "cifar10"              # a registered name, or imagefolder:PATH[@SIDE]
    data_dir: str = "data"
    epochs: int = 15                      # of a trial that is not stopped early
    train_fraction: float = 1.0           # fidelity: train on this share of the training split ...
    train_images: int | None = None       # ... or on this many of its images
    warmup_epochs: float = 0.25           # learning-rate warm-up of each trial; it ends by ASHA's first rung
    scheduler: str = "asha"
    grace_epochs: int = 1                 # ASHA: epochs before a trial may stop (its first rung)
    reduction_factor: int = 3             # ASHA: keep 1/ETA per rung
    stop_margin: float = 0.0              # ASHA: stop only this many standard errors of the validation split
                                          # below the rung's cutoff (0: ASHA's rule, chosen by the strategy
                                          # table: README, "Comparing strategies"); see `_scheduler`
    min_rung_steps: int = 8               # ASHA: a trial with fewer optimizer steps at a rung is not judged there
    reproducible: bool = False            # decisions in launch order: same seed, same study, whatever the load
    gpus_per_trial: float | str = AUTO    # "auto": trials share a GPU as its memory allows, 0 without GPUs (`_auto`)
    cpus_per_trial: float = 1.0
    concurrency: int | None = None        # at most this many trials at once; None: as resources allow
    address: str | None = None            # a running Ray cluster (HOST:PORT or auto); None: a fresh local Ray
    connect_timeout: float = 30.0         # seconds to join --address before the run ends with one line, exit 2
    enqueue: list[str] = field(default_factory=list)  # presets or FILE.json trained first
    tricks: list[str] = field(default_factory=list)   # trick dimensions also searched (mixup, schedule, ...)
    options: list[str] = field(default_factory=list)  # architecture options also searched (se, mish, ...)
    keep_checkpoints: int = 5             # the weights of the best K completed trials are kept
    runs_dir: str = "runs"
    max_retries: int = 2                  # of a trial whose worker died
    device: str = "auto"
    compile: bool = False
    tta_flip: bool = False                # scores average each validation image's logits with its mirror image's
    progress: bool = True
    trial_timeout: float | None = None    # seconds a trial may run before its worker is killed
    stall_timeout: float | None = None    # seconds without any trial's report before the run ends as stalled
                                          # (None: max(20 min, 5x the longest gap between reports), `_watchdog`)
    dashboard: str | None = None          # rewrite this page while the search runs ...
    dashboard_every: float = 30.0         # ... at most every this many seconds
    max_infeasible_draws: int = 2000      # consecutive draws over the budget before the run gives up

    def __post_init__(self) -> None:
        if self.gpus_per_trial is None:  # the default before "auto" existed, still passed by callers of the API
            self.gpus_per_trial = AUTO
        for flag, value, what in (("--max-macs", self.max_macs, "an integer, auto or none"),
                                  ("--gpus-per-trial", self.gpus_per_trial, "a number or auto")):
            if isinstance(value, str) and value != AUTO:
                raise UsageError(f"{flag} must be {what}, but got {value!r}")
        _choice("--sampler", self.sampler, SAMPLERS)
        _choice("--scheduler", self.scheduler, SCHEDULERS)
        for flag, value, low in (("--trials", self.trials, 1), ("--epochs", self.epochs, 1),
                                 ("--max-params", self.max_params, 1),
                                 ("--max-macs", None if self.max_macs == AUTO else self.max_macs, 1),
                                 ("--keep-checkpoints", self.keep_checkpoints, 0),
                                 ("--grace-epochs", self.grace_epochs, 1),
                                 ("--startup-trials", self.startup_trials, 1),
                                 ("--reduction-factor", self.reduction_factor, 2),
                                 ("--min-rung-steps", self.min_rung_steps, 0),
                                 ("--max-retries", self.max_retries, 0), ("--concurrency", self.concurrency, 1),
                                 ("--train-images", self.train_images, 1),
                                 ("max_infeasible_draws", self.max_infeasible_draws, 1)):
            if value is not None and value < low:
                raise UsageError(f"{flag} must be at least {low}, but got {value}")
        if self.max_latency_ms is not None and not (math.isfinite(self.max_latency_ms) and self.max_latency_ms > 0):
            raise UsageError(f"--max-latency-ms must be a positive number, but got {self.max_latency_ms}")
        gpus = None if self.gpus_per_trial == AUTO else self.gpus_per_trial
        for flag, value in (("--cpus-per-trial", self.cpus_per_trial), ("--gpus-per-trial", gpus),
                            ("--trial-timeout", self.trial_timeout), ("--train-fraction", self.train_fraction),
                            ("--dashboard-every", self.dashboard_every)):
            if value is not None and not math.isfinite(value):
                raise UsageError(f"{flag} must be a finite number, but got {value}")
        from tpsearch.study import check_objectives

        self.objectives = check_objectives(self.objectives)
        from tpsearch.spaces import check_tricks

        try:
            self.tricks = check_tricks(self.tricks)
        except ValueError as e:
            raise UsageError(f"--tricks: {e}") from None
        from tpsearch.spaces import check_option_names

        try:
            self.options = list(check_option_names(self.options))
        except ValueError as e:
            raise UsageError(f"--options: {e}") from None
        from tpsearch.trainers import canonical_dataset

        # One spelling per data set: the study records it, a resume compares it, and a worker that runs elsewhere
        # (another directory, another node) finds an image folder by its absolute path.
        try:
            self.dataset = canonical_dataset(self.dataset)
        except UsageError as e:
            raise UsageError(f"--dataset: {e}") from None
        if not 0 <= self.seed < 2**32:  # the samplers' and NumPy's seed range
            raise UsageError(f"--seed must be 0..{2**32 - 1}, but got {self.seed}")
        if not (math.isfinite(self.stop_margin) and self.stop_margin >= 0):
            raise UsageError(f"--stop-margin must be a finite number >= 0, but got {self.stop_margin}")
        if not (math.isfinite(self.warmup_epochs) and 0 <= self.warmup_epochs):
            raise UsageError(f"--warmup-epochs must be a finite number >= 0, but got {self.warmup_epochs}")
        if self.scheduler == "asha" and self.warmup_epochs > self.grace_epochs:
            raise UsageError(f"--warmup-epochs {self.warmup_epochs:g} must end by ASHA's first rung (--grace-epochs "
                             f"{self.grace_epochs}): a trial is not compared at its warm-up's peak learning rate")
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise UsageError(f"--connect-timeout must be positive seconds, but got {self.connect_timeout}")
        if self.trial_timeout is not None and self.trial_timeout <= 0:
            raise UsageError(f"--trial-timeout must be positive seconds, but got {self.trial_timeout}")
        if self.stall_timeout is not None and not (math.isfinite(self.stall_timeout) and self.stall_timeout > 0):
            raise UsageError(f"--stall-timeout must be positive seconds, but got {self.stall_timeout}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise UsageError(f"--train-fraction must be in (0, 1], but got {self.train_fraction}")
        if self.train_images is not None and self.train_fraction != 1.0:
            raise UsageError("--train-images cannot be combined with --train-fraction")
        if gpus is not None and gpus < 0:
            raise UsageError(f"--gpus-per-trial must be >= 0, but got {gpus}")
        if self.cpus_per_trial <= 0:
            raise UsageError(f"--cpus-per-trial must be > 0, but got {self.cpus_per_trial}")
        if self.device == "cpu" and gpus:
            raise UsageError(f"--device cpu trains on the CPU: --gpus-per-trial {self.gpus_per_trial} would hold GPUs "
                             f"that no trial uses; drop it or give --device auto")

    def study_name(self) -> str:
        """--study, else SPACE-DATASET (an image folder: SPACE-FOLDER-SIDEpx), with the objectives after it for a
        multi-objective search (its study cannot be the single-objective one's)."""
        from tpsearch.trainers import dataset_label

        costs = "".join(f"-{n}" for n in self.objectives[1:])
        return self.study or f"{self.space}-{dataset_label(self.dataset)}" + (f"-accuracy{costs}" if costs else "")

    def rung_epochs(self) -> tuple[int, ...]:
        """Where ASHA compares trials, in epochs: --grace-epochs times powers of --reduction-factor, below --epochs
        (a rung at the end compares nothing: every trial stops there). Empty without ASHA."""
        rungs: list[int] = []
        rung = self.grace_epochs
        while self.scheduler == "asha" and rung < self.epochs:
            rungs.append(rung)
            rung *= self.reduction_factor
        return tuple(rungs)

    def train_config(self, hparams: Mapping[str, Any], **overrides: Any) -> Any:
        """The trainer's config for one trial: its sampled `hparams`, then every field that `TrainConfig` shares
        with these options by name (epochs, seed, fidelity, warm-up, device, compile, tta_flip), the learning rate's
        restarts at the rungs (see `tpsearch.search._budget`), then `overrides`."""
        from tpsearch.trainers import TrainConfig

        shared = {f.name for f in dataclasses.fields(TrainConfig)} & {f.name for f in dataclasses.fields(self)}
        rungs = self.rung_epochs()
        # A search needs a score only where trials are compared: the rungs and the end.
        return TrainConfig.from_hparams(hparams, **{**{k: getattr(self, k) for k in shared}, "restarts": rungs,
                                                    "eval_epochs": rungs, **overrides})


@dataclass
class RunSummary:
    """How a run ended: the study's counts by outcome (see `tpsearch.study.Outcome`), its most accurate trial and,
    with several objectives, its Pareto front (`pareto_rows`)."""

    study: str
    storage: str
    requested: int
    finished: int                  # trained trials in the study: completed, pruned or diverged
    counts: dict[str, int]         # trials of the study per outcome ("complete", "pruned", "failed", ...)
    best_value: float | None
    best_params: int | None
    best_trial: int | None
    seconds: float
    interrupted: bool
    error: str | None
    best_trained: int | None = None  # the best trial's place among the trained ones (`trained_index`)
    objectives: list[str] = field(default_factory=lambda: ["accuracy"])
    pareto: list[dict[str, Any]] = field(default_factory=list)  # several objectives: the front, most accurate first


def _choice(flag: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"unknown {flag.lstrip('-')} {value!r}; choose one of: {', '.join(choices)}")
