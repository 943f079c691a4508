"""Does the search's own fidelity rank architectures as a longer training would? Train the same K configurations
exactly as a search trains its trials, then longer, then longer again under another seed, and compare the orders.

    >>> from tpsearch.search import CalibrateOptions, RunOptions, calibrate
    >>> search = RunOptions(dataset="synthetic-hard", max_params=1_000_000, max_macs=40_000_000, seed=1,
    ...                     epochs=4, train_images=1000)
    >>> result = calibrate(CalibrateOptions(search, k=16, high_epochs=8, high_train_images=2000))  # doctest: +SKIP
    >>> result.spearman, result.rungs[0]["spearman"], result.ceiling["spearman"]  # doctest: +SKIP

A search keeps the best trials by its own scores: ASHA's at its rungs (where most trials stop, at the first one)
and the last one of the trials it lets finish. That is only as good as the agreement between those scores and the
ranking after a longer training, so this trains what the search trains, through the search's own
`RunOptions.train_config` (its warm-up, its cosine restarting at every rung, its scores at the rungs and at the
end: one path from the flags to the trainer, no field copied), and compares the score at every rung and at the end
with the high fidelity. How far the high fidelity agrees with itself bounds what any fidelity can reach: the noise
ceiling, the high fidelity trained again from other initial weights in another batch order.

It is a measurement tool, not a search: every training runs to its end in this process, with the trainer directly
(no Ray, no storage, no early stop: a trial ASHA would stop still gets its later scores), seeded, so the same options
give the same accuracies on the CPU.
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions
from tpsearch.study import agreement

# The trainings, in the order they run: the search's own, the longer one it is judged against, and that one again
# under another seed (the noise ceiling).
FIDELITIES = ("low", "high", "ceiling")


@dataclass
class CalibrateOptions:
    """Everything `tpsearch calibrate` takes. `search` is the search being calibrated, built from the same flags
    as `tpsearch run`'s (`--epochs`, `--train-images`, `--warmup-epochs`, `--grace-epochs`, `--seed` ...): its
    trainings are the low fidelity. The `high_*` fields (`--high-epochs` ...) are the training it is judged
    against: the same search's training, longer or on more images, without ASHA (`--scheduler none`: one cosine,
    scored at the end). Invalid values raise `UsageError` when the options are made.

    Both fidelities train the same configurations from the same initial weights on nested training subsets (the
    first N images of the shuffled split), so only the fidelity differs; the ceiling's initial weights and batch
    order come from another seed, its data are the high fidelity's.
    """

    search: RunOptions = field(default_factory=RunOptions)
    k: int | None = None                  # configurations compared; None: 8, or as many as --enqueue lists if more
    high_epochs: int | None = None        # None: 4 times the search's --epochs
    high_train_fraction: float = 1.0      # share of the training split at the high fidelity ...
    high_train_images: int | None = None  # ... or this many of its images
    top_k: int | None = None              # the overlap of the best `top_k` of each ranking; None: max(1, k // 4)
    ceiling: bool = True                  # also train the high fidelity under another seed (its cost again)

    def __post_init__(self) -> None:
        if not isinstance(self.search, RunOptions):
            raise TypeError(f"search must be a RunOptions, but got {type(self.search).__name__}")
        if self.k is None:
            self.k = max(8, len(self.search.enqueue))
        if self.high_epochs is None:
            self.high_epochs = 4 * self.search.epochs
        # Two configurations are the fewest that have an order to compare.
        for flag, value, low in (("--k", self.k, 2), ("--high-epochs", self.high_epochs, 1),
                                 ("--high-train-images", self.high_train_images, 1), ("--top-k", self.top_k, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise UsageError(f"{flag} must be an integer of at least {low}, but got {value!r}")
        if self.search.cpus_per_trial < 1:
            raise UsageError(f"--cpus-per-trial must be a number of at least 1 (torch threads), "
                             f"but got {self.search.cpus_per_trial!r}")
        if len(self.search.enqueue) > self.k:
            raise UsageError(f"--k must be at least the {len(self.search.enqueue)} architectures listed with "
                             f"--enqueue, but got {self.k}")
        if self.top_k is not None and self.top_k > self.k:
            raise UsageError(f"--top-k must be at most --k ({self.k}), but got {self.top_k}")
        fraction = self.high_train_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
            raise UsageError(f"--high-train-fraction must be in (0, 1], but got {fraction!r}")
        if self.high_train_images is not None and fraction != 1.0:
            raise UsageError("--high-train-images cannot be combined with --high-train-fraction")
        if self.high_epochs < self.search.epochs:
            raise UsageError(f"--high-epochs must be at least --epochs ({self.search.epochs}), "
                             f"but got {self.high_epochs}")
        if self.search.seed + self.k >= 2**32:
            raise UsageError(f"--seed plus --k must stay below 2**32 (the ceiling trains under seed + k), "
                             f"but got {self.search.seed} + {self.k}")

    @property
    def topk(self) -> int:
        return self.top_k if self.top_k is not None else max(1, int(self.k) // 4)

    def runs(self) -> dict[str, RunOptions]:
        """The options each fidelity trains under, all of them the search's: the search itself (low); the same
        without ASHA, longer or on more images (high); and that under seed `seed + k` (ceiling), whose initial
        weights (`seed + k + i` for configuration i) and batch order no other training shares. Each training is
        built by `RunOptions.train_config`, as a search's worker builds its trial's."""
        high = dataclasses.replace(self.search, epochs=self.high_epochs, train_fraction=self.high_train_fraction,
                                   train_images=self.high_train_images, scheduler="none")
        runs = {"low": self.search, "high": high}
        if self.ceiling:
            runs["ceiling"] = dataclasses.replace(high, seed=self.search.seed + int(self.k))
        return runs


@dataclass
class CalibrationResult:
    """The rankings of the same configurations at the search's rungs, at its end and after the high fidelity,
    and how far they agree.

    Correlations are None where a ranking is constant (every accuracy tied), which has no order; each has a 95%
    interval (`*_ci`, see `interval`), None where too few configurations give one.
    """

    space: str
    dataset: str
    device: str
    k: int
    top_k: int
    low: dict[str, Any]          # the search's fidelity: epochs, images per epoch, warm-up, scheduler, rung epochs
    high: dict[str, Any]
    spearman: float | None       # the search's last score against the high fidelity: Spearman's rho (average ranks)
    spearman_ci: list[float] | None
    kendall: float | None        # ... Kendall's tau-b, ties counted on either side
    kendall_ci: list[float] | None
    topk_overlap: float          # |best top_k by low ∩ best top_k by high| / top_k
    low_s: float                 # wall-clock seconds of all trainings at the low fidelity (building included)
    high_s: float
    rungs: list[dict[str, Any]]  # per ASHA rung: epochs, images seen, and the same agreement as above
    ceiling: dict[str, Any] | None  # the high fidelity against itself under another seed (None: not measured)
    architectures: list[dict[str, Any]]  # per configuration: arch, hparams, params, each fidelity's accuracy ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the measurement ------------------------------------------------------------------------------------------------
Progress = Callable[[str, int, dict[str, Any]], None]  # (fidelity, index of the configuration, its row) per training


def calibrate(opts: CalibrateOptions, progress: Progress | None = None) -> CalibrationResult:
    """Draw `opts.k` configurations as the search would (the listed ones first), train each at the low fidelity,
    then at the high one, then (with `opts.ceiling`) at the high one under another seed, and compare the rankings
    of their validation accuracies. `progress` is called after each training."""
    import torch

    from tpsearch import spaces, trainers
    from tpsearch.search import budget_of
    from tpsearch.trainers import usable_device

    search = opts.search
    space = spaces.get(search.space)
    data = trainers.load_dataset(search.dataset, search.data_dir, seed=search.seed)
    device = str(usable_device(search.device))
    runs = opts.runs()
    images = {level: _train_images(run, data, "" if level == "low" else "high-") for level, run in runs.items()}
    if (search.epochs, images["low"]) == (opts.high_epochs, images["high"]):
        raise UsageError(f"the high fidelity must differ from the search's, but both are {search.epochs} epochs on "
                         f"{images['low']:,} images")
    if images["high"] < images["low"]:
        raise UsageError(f"the high fidelity must train on at least the search's {images['low']:,} images, "
                         f"but trains on {images['high']:,}")
    budget = budget_of(search, data)  # where the search's rungs fall, in images seen (the trainer's own schedule)
    rows = _configurations(opts, space, data.shape)
    threads = torch.get_num_threads()
    # As a search's worker does. It matters: on a CPU that other processes share, a training with more threads than
    # it has cores to itself was measured several times slower than with one thread.
    torch.set_num_threads(int(search.cpus_per_trial))
    try:
        seconds = {level: _train_all(level, run, space, data, device, rows, progress) for level, run in runs.items()}
    finally:
        torch.set_num_threads(threads)
    rung_epochs = search.rung_epochs()
    for row in rows:
        scores = row.pop("low_scores")  # keyed by epoch: JSON would make the keys strings
        row["low_rungs"] = [_score_by(scores, epoch) for epoch in rung_epochs]
    high = [r["high_accuracy"] for r in rows]
    rungs = [{"epochs": epoch, "images": seen,
              **agreement([r["low_rungs"][j] for r in rows], high, opts.topk)}
             for j, (epoch, seen) in enumerate(zip(rung_epochs, budget.rungs))]
    ceiling = None
    if "ceiling" in runs:
        ceiling = {"seed": runs["ceiling"].seed, "seconds": round(seconds["ceiling"], 3),
                   **agreement(high, [r["ceiling_accuracy"] for r in rows], opts.topk)}
    return CalibrationResult(
        space=space.name, dataset=data.name, device=device, k=len(rows), top_k=opts.topk,
        low=_fidelity(search, images["low"]), high=_fidelity(runs["high"], images["high"]),
        **agreement([r["low_accuracy"] for r in rows], high, opts.topk),
        low_s=round(seconds["low"], 3), high_s=round(seconds["high"], 3), rungs=rungs, ceiling=ceiling,
        architectures=rows)


def _train_all(level: str, run: RunOptions, space: Any, data: Any, device: str, rows: list[dict[str, Any]],
               progress: Progress | None) -> float:
    """Train every configuration under `run`, recording into its row; the wall-clock seconds of it all."""
    import torch

    from tpsearch import trainers

    started = time.perf_counter()
    for i, row in enumerate(rows):
        # A search's worker seeds trial i's initial weights with seed + i: the low and high fidelities share them
        # (only the fidelity differs), the ceiling's seed is another.
        torch.manual_seed(run.seed + i)
        model = space.build(row["arch"], **data.shape)
        result = trainers.train(model, data, run.train_config(row["hparams"], device=device))
        # Every score the training made (the search's rungs and its end); a failed training (diverged, out of
        # memory) ranks by the last accuracy it reached, 0 if none.
        scores = {r.epoch: r.val_accuracy for r in result.history if r.val_accuracy is not None}
        row[f"{level}_accuracy"] = _score_by(scores, run.epochs)
        if level == "low":
            row["low_scores"] = scores
        row[f"{level}_status"] = result.status
        row[f"{level}_seconds"] = round(result.seconds, 3)
        if result.reason:
            row[f"{level}_reason"] = result.reason
        del model
        if progress is not None:
            progress(level, i, row)
    return time.perf_counter() - started


def _score_by(scores: dict[int, float], epoch: int) -> float:
    """The last score made by the end of `epoch`, 0 if none: a training that failed before a rung ranks as its
    trial would have, by what it reached."""
    made = [e for e in scores if e <= epoch]
    return scores[max(made)] if made else 0.0


def _fidelity(run: RunOptions, images: int) -> dict[str, Any]:
    """What a fidelity trains, for the reader of the result."""
    return {"epochs": run.epochs, "train_fraction": run.train_fraction, "train_images": run.train_images,
            "images": images, "warmup_epochs": run.warmup_epochs, "scheduler": run.scheduler,
            "rung_epochs": list(run.rung_epochs())}


def _train_images(run: RunOptions, data: Any, prefix: str) -> int:
    """The training images of an epoch under `run`, counted as the trainer counts them; too many is one line
    naming the flag."""
    from tpsearch import trainers

    try:
        return trainers.images_per_epoch(data, run.train_config({}))
    except ValueError:
        raise UsageError(f"--{prefix}train-images must be at most the {len(data.train_y):,} training images of "
                         f"{run.dataset}, but got {run.train_images}") from None


def _configurations(opts: CalibrateOptions, space: Any, shape: dict[str, int]) -> list[dict[str, Any]]:
    """`opts.k` distinct feasible architectures with their training hyperparameters, drawn as the search's random
    sampler would (Optuna's RandomSampler, seeded, in memory; the search's --options, --tricks and budgets);
    listed architectures come first with sampled hyperparameters."""
    import optuna

    from tpsearch.search import enqueued_arch

    from tpsearch.search import settled_max_macs

    search = opts.search
    max_macs = settled_max_macs(search.max_macs, shape["image_size"])  # "auto": the cap a new search would get
    size = dict(in_channels=shape["in_channels"], image_size=shape["image_size"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says what Optuna's INFO lines would
    listed = [(item, enqueued_arch(space, item, shape, search.max_params, max_macs, search.options))
              for item in search.enqueue]
    smallest = space.count_params(space.smallest(**size), **shape)
    if search.max_params < smallest:
        raise UsageError(f"--max-params {search.max_params:,} is below the smallest configuration of space "
                         f"{space.name!r} on {search.dataset} ({smallest:,} parameters)")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=search.seed))
    for _, arch in listed:
        study.enqueue_trial(space.params_with_options(arch, search.options, **size))
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    misses = 0
    while len(rows) < opts.k:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # enqueued trials warn that their fixed params bypass the sampler
            trial = study.ask()
        arch = space.suggest_with_options(trial, search.options, **size)
        hparams = space.suggest_training(trial, tricks=search.tricks)
        params = space.count_params(arch, **shape)
        key = json.dumps(arch, sort_keys=True)
        source = listed[len(rows)][0] if len(rows) < len(listed) else "sampled"
        over = params > search.max_params or (max_macs is not None
                                              and space.count_macs(arch, **shape) > max_macs)
        # A listed architecture is trained even when it repeats another: the user asked for it.
        if source == "sampled" and (over or key in seen):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            misses += 1
            if misses >= search.max_infeasible_draws:
                budget = "--max-params" + (" and --max-macs" if max_macs is not None else "")
                raise UsageError(f"space {space.name!r} gave only {len(rows)} distinct configurations under "
                                 f"{budget} in {misses:,} draws in a row; raise {budget} or lower --k ({opts.k})")
            continue
        misses = 0
        seen.add(key)
        study.tell(trial, 0.0)  # in memory only; the draws that follow do not depend on it
        rows.append({"index": len(rows), "source": source, "arch": arch, "hparams": hparams, "params": params})
    return rows
