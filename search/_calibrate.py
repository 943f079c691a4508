"""Does a cheap fidelity rank architectures as an expensive one would? Train the same K configurations at both and
compare the orders.

    >>> from tpsearch.search import CalibrateOptions, calibrate
    >>> opts = CalibrateOptions(dataset="synthetic-hard", k=8, max_params=100_000, low_epochs=2,
    ...                         low_train_images=1000, high_epochs=6, high_train_images=2000)
    >>> result = calibrate(opts)  # doctest: +SKIP
    >>> result.spearman, result.kendall, result.topk_overlap, result.low_s, result.high_s  # doctest: +SKIP

A search trains every trial at one fidelity (epochs, training images) and keeps the best by that measure; that is
only as good as the agreement between the ranking at that fidelity and the ranking after a full training. This
measures the agreement. It is a measurement tool, not a search: everything runs in this process with the trainer
directly (no Ray, no storage), seeded, so the same options give the same accuracies on the CPU.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from tpsearch.exceptions import UsageError
from tpsearch.search._options import RunOptions

FIDELITIES = ("low", "high")
_SEARCH = RunOptions()  # a search's defaults: the low fidelity starts as `tpsearch run`'s
MAX_DRAWS = _SEARCH.max_infeasible_draws  # draws over the budget (or repeats) in a row before giving up


@dataclass
class CalibrateOptions:
    """Everything `tpsearch calibrate` takes; each field is the flag of the same name (`low_epochs` is
    `--low-epochs`). Invalid values raise `UsageError` when the options are made.

    The low fidelity is the search's (by default `tpsearch run`'s: 15 epochs on the whole training split); the high
    one is what the ranking is judged against. Both train the same configurations from the same initial weights on
    nested training subsets (the first N images of the shuffled split), so only the fidelity differs.
    """

    space: str = "resnet_5m"
    dataset: str = "cifar10"
    data_dir: str = "data"
    k: int | None = None                  # configurations compared; None: 8, or as many as `enqueue` lists if more
    enqueue: list[str] = field(default_factory=list)  # presets or FILE.json calibrated first; the rest sampled
    seed: int = 0                         # of the sampler, the data split, the initial weights and the batches
    max_params: int = _SEARCH.max_params  # parameter budget of a sampled configuration
    low_epochs: int = _SEARCH.epochs
    low_train_fraction: float = 1.0       # share of the training split at the low fidelity ...
    low_train_images: int | None = None   # ... or this many of its images
    high_epochs: int = 4 * _SEARCH.epochs
    high_train_fraction: float = 1.0
    high_train_images: int | None = None
    top_k: int | None = None              # the overlap of the best `top_k` of each ranking; None: max(1, k // 4)
    device: str = "auto"
    cpus_per_trial: float = _SEARCH.cpus_per_trial  # torch CPU threads of each training, as a search's trial has

    def __post_init__(self) -> None:
        if self.k is None:
            self.k = max(8, len(self.enqueue))
        # Two configurations are the fewest that have an order to compare.
        for flag, value, low in (("--k", self.k, 2), ("--max-params", self.max_params, 1),
                                 ("--low-epochs", self.low_epochs, 1), ("--high-epochs", self.high_epochs, 1),
                                 ("--low-train-images", self.low_train_images, 1),
                                 ("--high-train-images", self.high_train_images, 1), ("--top-k", self.top_k, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise UsageError(f"{flag} must be an integer of at least {low}, but got {value!r}")
        if not (isinstance(self.cpus_per_trial, (int, float)) and math.isfinite(self.cpus_per_trial)
                and self.cpus_per_trial >= 1):
            raise UsageError(f"--cpus-per-trial must be a number of at least 1, but got {self.cpus_per_trial!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"--seed must be an integer, but got {self.seed!r}")
        if len(self.enqueue) > self.k:
            raise UsageError(f"--k must be at least the {len(self.enqueue)} architectures listed with --enqueue, "
                             f"but got {self.k}")
        if self.top_k is not None and self.top_k > self.k:
            raise UsageError(f"--top-k must be at most --k ({self.k}), but got {self.top_k}")
        for level in FIDELITIES:
            fraction, images = getattr(self, f"{level}_train_fraction"), getattr(self, f"{level}_train_images")
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
                raise UsageError(f"--{level}-train-fraction must be in (0, 1], but got {fraction!r}")
            if images is not None and fraction != 1.0:
                raise UsageError(f"--{level}-train-images cannot be combined with --{level}-train-fraction")
        from tpsearch.trainers import TrainConfig

        try:
            TrainConfig(device=self.device)  # the trainer's one check of a device name
        except ValueError as e:
            raise UsageError(str(e)) from None
        if self.high_epochs < self.low_epochs:
            raise UsageError(f"--high-epochs must be at least --low-epochs ({self.low_epochs}), "
                             f"but got {self.high_epochs}")

    @property
    def topk(self) -> int:
        return self.top_k if self.top_k is not None else max(1, int(self.k) // 4)

    def fidelity(self, level: str) -> dict[str, Any]:
        """The `TrainConfig` fields that make fidelity `level` ("low" or "high")."""
        return {name: getattr(self, f"{level}_{name}") for name in ("epochs", "train_fraction", "train_images")}


@dataclass
class CalibrationResult:
    """The two rankings of the same configurations and how far they agree.

    `spearman` and `kendall` are None where a ranking is constant (every accuracy tied), which has no order.
    """

    space: str
    dataset: str
    device: str
    k: int
    top_k: int
    low: dict[str, Any]          # the fidelity: epochs, training images
    high: dict[str, Any]
    spearman: float | None       # Spearman's rho of the validation accuracies, ties at their average rank
    kendall: float | None        # Kendall's tau-b, ties counted on either side
    topk_overlap: float          # |best top_k by low ∩ best top_k by high| / top_k
    low_s: float                 # wall-clock seconds of all trainings at the low fidelity (building included)
    high_s: float
    architectures: list[dict[str, Any]]  # per configuration: arch, hparams, params, each fidelity's accuracy ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- rank statistics ------------------------------------------------------------------------------------------------
def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span (as `scipy.stats.rankdata`)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for j in range(start, end + 1):
            ranks[order[j]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: the Pearson correlation of the average ranks; None when either side is constant."""
    _same_length(a, b)
    ra, rb = average_ranks(a), average_ranks(b)
    n = len(ra)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return None if va == 0 or vb == 0 else _clip(cov / math.sqrt(va * vb))


def kendall(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-b, which corrects for ties: (concordant - discordant) / sqrt((n0 - ties_a) (n0 - ties_b)) over
    all n0 pairs; None when either side is constant. Quadratic: meant for tens of configurations, not thousands."""
    _same_length(a, b)
    concordant = discordant = ties_a = ties_b = 0
    n = len(a)
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0:
                ties_a += 1
            if db == 0:
                ties_b += 1
            if da and db:
                if (da > 0) == (db > 0):
                    concordant += 1
                else:
                    discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return None if denominator == 0 else _clip((concordant - discordant) / denominator)


def topk_overlap(a: Sequence[float], b: Sequence[float], k: int) -> float:
    """The share of the `k` best by `a` that are also among the `k` best by `b` (higher is better). A tie at the
    border is broken by position, the earlier configuration first, the same way on both sides."""
    _same_length(a, b)
    if not 1 <= k <= len(a):
        raise ValueError(f"k must be in 1..{len(a)}, but got {k}")

    def best(v: Sequence[float]) -> set[int]:
        return set(sorted(range(len(v)), key=lambda i: (-v[i], i))[:k])

    return len(best(a) & best(b)) / k


def _same_length(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two rankings of the same 2 or more items, but got {len(a)} and {len(b)}")


def _clip(r: float) -> float:
    return max(-1.0, min(1.0, r))  # rounding can land a perfect correlation at 1.0000000000000002


# -- the measurement ------------------------------------------------------------------------------------------------
Progress = Callable[[str, int, dict[str, Any]], None]  # (fidelity, index of the configuration, its row) per training


def calibrate(opts: CalibrateOptions, progress: Progress | None = None) -> CalibrationResult:
    """Draw `opts.k` configurations (the listed ones first), train each at the low then at the high fidelity, and
    compare the rankings of their validation accuracies. `progress` is called after each of the 2 K trainings."""
    import torch

    from tpsearch import spaces, trainers

    space = spaces.get(opts.space)
    data = trainers.load_dataset(opts.dataset, opts.data_dir, seed=opts.seed)
    try:
        device = str(trainers.resolve_device(opts.device))
    except ValueError as e:
        raise UsageError(str(e)) from None
    images = {level: _train_images(opts, level, len(data.train_y)) for level in FIDELITIES}
    if (opts.low_epochs, images["low"]) == (opts.high_epochs, images["high"]):
        raise UsageError(f"the high fidelity must differ from the low one, but both are {opts.low_epochs} epochs on "
                         f"{images['low']:,} images")
    if images["high"] < images["low"]:
        raise UsageError(f"the high fidelity must train on at least the low one's {images['low']:,} images, "
                         f"but trains on {images['high']:,}")
    rows = _configurations(opts, space, data.shape)
    threads = torch.get_num_threads()
    # As a search's worker does. It matters: on a CPU that other processes share, a training with more threads than
    # it has cores to itself was measured several times slower than with one thread.
    torch.set_num_threads(int(opts.cpus_per_trial))
    try:
        seconds = {level: _train_all(opts, level, space, data, device, rows, progress) for level in FIDELITIES}
    finally:
        torch.set_num_threads(threads)
    low = [r["low_accuracy"] for r in rows]
    high = [r["high_accuracy"] for r in rows]
    return CalibrationResult(
        space=space.name, dataset=data.name, device=device, k=len(rows), top_k=opts.topk,
        low={**opts.fidelity("low"), "images": images["low"]}, high={**opts.fidelity("high"), "images": images["high"]},
        spearman=spearman(low, high), kendall=kendall(low, high), topk_overlap=topk_overlap(low, high, opts.topk),
        low_s=round(seconds["low"], 3), high_s=round(seconds["high"], 3), architectures=rows)


def _train_all(opts: CalibrateOptions, level: str, space: Any, data: Any, device: str, rows: list[dict[str, Any]],
               progress: Progress | None) -> float:
    """Train every configuration at fidelity `level`, recording into its row; the wall-clock seconds of it all."""
    import torch

    from tpsearch import trainers

    started = time.perf_counter()
    for i, row in enumerate(rows):
        torch.manual_seed(opts.seed + i)  # the same initial weights at both fidelities: only the fidelity differs
        model = space.build(row["arch"], **data.shape)
        # Scored at the end only, as a search without ASHA scores its trials: the seconds are what a search pays.
        config = trainers.TrainConfig.from_hparams(row["hparams"], **opts.fidelity(level), seed=opts.seed,
                                                   device=device, eval_epochs=())
        result = trainers.train(model, data, config)
        # A failed training (diverged, out of memory) ranks by the accuracy it reached, 0 if none.
        row[f"{level}_accuracy"] = result.val_accuracy or 0.0
        row[f"{level}_status"] = result.status
        row[f"{level}_seconds"] = round(result.seconds, 3)
        if result.reason:
            row[f"{level}_reason"] = result.reason
        del model
        if progress is not None:
            progress(level, i, row)
    return time.perf_counter() - started


def _train_images(opts: CalibrateOptions, level: str, available: int) -> int:
    """The training images of fidelity `level`, counted as the trainer counts them."""
    images = getattr(opts, f"{level}_train_images")
    if images is None:
        return max(1, round(available * getattr(opts, f"{level}_train_fraction")))
    if images > available:
        raise UsageError(f"--{level}-train-images must be at most the {available:,} training images of "
                         f"{opts.dataset}, but got {images}")
    return images


def _configurations(opts: CalibrateOptions, space: Any, shape: dict[str, int]) -> list[dict[str, Any]]:
    """`opts.k` distinct feasible architectures with their training hyperparameters, drawn as a random search would
    (Optuna's RandomSampler, seeded, in memory); listed architectures come first with sampled hyperparameters."""
    import optuna

    from tpsearch.search._driver import _enqueued_arch  # the one check of a listed architecture, as --enqueue has it

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says what Optuna's INFO lines would
    listed = [(item, _enqueued_arch(space, item, shape, opts.max_params)) for item in opts.enqueue]
    smallest = space.count_params(space.smallest(in_channels=shape["in_channels"], image_size=shape["image_size"]),
                                  **shape)
    if opts.max_params < smallest:
        raise UsageError(f"--max-params {opts.max_params:,} is below the smallest configuration of space "
                         f"{space.name!r} on {opts.dataset} ({smallest:,} parameters)")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=opts.seed))
    for _, arch in listed:
        study.enqueue_trial(space.params_of(arch, in_channels=shape["in_channels"], image_size=shape["image_size"]))
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    misses = 0
    while len(rows) < opts.k:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # enqueued trials warn that their fixed params bypass the sampler
            trial = study.ask()
        arch = space.suggest(trial, in_channels=shape["in_channels"], image_size=shape["image_size"])
        hparams = space.suggest_training(trial)
        params = space.count_params(arch, **shape)
        key = json.dumps(arch, sort_keys=True)
        source = listed[len(rows)][0] if len(rows) < len(listed) else "sampled"
        # A listed architecture is trained even when it repeats another: the user asked for it.
        if source == "sampled" and (params > opts.max_params or key in seen):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            misses += 1
            if misses >= MAX_DRAWS:
                raise UsageError(f"space {space.name!r} gave only {len(rows)} distinct configurations under "
                                 f"--max-params {opts.max_params:,} in {MAX_DRAWS:,} draws in a row; raise "
                                 f"--max-params or lower --k ({opts.k})")
            continue
        misses = 0
        seen.add(key)
        study.tell(trial, 0.0)  # in memory only; the draws that follow do not depend on it
        rows.append({"index": len(rows), "source": source, "arch": arch, "hparams": hparams, "params": params})
    return rows
