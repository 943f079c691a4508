"""A delegating classifier: a small model answers when it is sure, and hands the other images to a large one.

    >>> from tpsearch.search import DelegateOptions, delegate
    >>> result = delegate(DelegateOptions("small.pt", "large.pt", sweep=True))  # doctest: +SKIP
    >>> [(p["threshold"], p["accuracy"], p["cost_ratio"]) for p in result["sweep"]][:3]  # doctest: +SKIP

The small model's doubt about an image is the entropy of its softmax prediction, in nats (0 when it puts all its
probability on one class, ln K when it spreads it evenly over K classes). At threshold H it answers the images whose
entropy is at most H and delegates the rest to the large model. Every image pays for the small model; a delegated
one pays for the large model too, so the cost per image is small's MACs + (share delegated) x large's MACs. At H at
least the largest entropy nothing is delegated (the small model's own accuracy); below the smallest, everything is
(the large model's accuracy at a little more than its own cost).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from tpsearch.exceptions import UsageError

SPLITS = ("test", "val")


@dataclass
class DelegateOptions:
    """Everything `tpsearch delegate` takes; each field is the flag of the same name. Invalid values raise
    `UsageError` when the options are made. `threshold` or `sweep`: one of them."""

    small: str
    large: str
    threshold: float | None = None        # nats: the small model answers where its entropy is at most this
    sweep: bool = False                   # every threshold from 0 to the largest entropy instead
    split: str = "test"                   # "test", or "val" (the validation split both were scored on)
    space: str | None = None              # the space of your own both checkpoints were made with (its consent)
    data_dir: str = "data"
    device: str = "auto"

    def __post_init__(self) -> None:
        if (self.threshold is None) == (not self.sweep):
            raise UsageError("give --threshold H (nats) or --sweep" if self.threshold is None
                             else "give --threshold or --sweep, not both")
        if self.threshold is not None and (isinstance(self.threshold, bool) or not math.isfinite(self.threshold)
                                           or self.threshold < 0):
            raise UsageError(f"--threshold must be a finite entropy in nats, at least 0, but got {self.threshold!r}")
        if self.split not in SPLITS:
            raise UsageError(f"--split must be one of {', '.join(SPLITS)}, but got {self.split!r}")


# -- the arithmetic -----------------------------------------------------------------------------------------------
def entropy(logits: torch.Tensor) -> np.ndarray:
    """The entropy in nats of each row's softmax, in float64 (a sure prediction stays above 0 where float32's
    softmax would round it to exactly one class)."""
    logp = torch.log_softmax(logits.double(), dim=1)
    return (-(logp.exp() * logp).sum(1)).clamp(min=0).numpy()


def delegation_curve(entropies: np.ndarray, small_correct: np.ndarray, large_correct: np.ndarray,
                     thresholds: Sequence[float], small_macs: float, large_macs: float) -> list[dict[str, float]]:
    """For each threshold H: the accuracy when the small model answers the images of entropy <= H and the large
    one the rest, the share delegated, the cost per image in MACs and its ratio to the large model's."""
    order = np.argsort(entropies, kind="stable")
    sorted_h = np.asarray(entropies, dtype=np.float64)[order]
    n = len(sorted_h)
    # Images are answered by the small model in order of increasing entropy: prefix sums give every threshold at once.
    small_kept = np.concatenate([[0], np.cumsum(np.asarray(small_correct, dtype=np.int64)[order])])
    large_given = np.concatenate([[0], np.cumsum(np.asarray(large_correct, dtype=np.int64)[order][::-1])])[::-1]
    points = []
    for h in thresholds:
        answered = int(np.searchsorted(sorted_h, h, side="right"))
        delegated = (n - answered) / n
        cost = small_macs + delegated * large_macs
        points.append({"threshold": float(h), "accuracy": float(small_kept[answered] + large_given[answered]) / n,
                       "delegated": delegated, "cost_macs": cost, "cost_ratio": cost / large_macs})
    return points


def sweep_thresholds(entropies: np.ndarray) -> list[float]:
    """0, then every distinct entropy: each threshold at which the answer of some image changes hands, both ends
    included (the largest entropy delegates nothing)."""
    distinct = np.unique(np.asarray(entropies, dtype=np.float64))
    return [0.0, *[float(h) for h in distinct if h > 0]]


def cheapest_matching(points: Sequence[Mapping[str, float]], accuracy: float) -> dict[str, float] | None:
    """The cheapest point at least as accurate as `accuracy` (the large model alone), or None."""
    matching = [p for p in points if p["accuracy"] >= accuracy]
    return dict(min(matching, key=lambda p: (p["cost_macs"], -p["accuracy"]))) if matching else None


# -- the command ----------------------------------------------------------------------------------------------------
def delegate(opts: DelegateOptions) -> dict[str, Any]:
    """Both checkpoints on the split of their data set; the delegation at `opts.threshold`, or the whole sweep.

    The result holds each model alone (`small`, `large`: accuracy, MACs), the entropies' range, and `point` (at the
    threshold) or `sweep` (every threshold) with `cheapest_matching`: the cheapest threshold that is at least as
    accurate as the large model alone.
    """
    from tpsearch.trainers import usable_device
    from tpsearch.checkpoints._checkpoint import load_checkpoint
    from tpsearch.checkpoints._evaluate import checkpoint_data, device_for, logits_of

    usable_device(opts.device)  # a bad --device is refused before anything is read
    small_model, small_meta = load_checkpoint(opts.small, space=opts.space)
    large_model, large_meta = load_checkpoint(opts.large, space=opts.space)
    _check_same_data(opts, small_meta, large_meta)
    small_data, small_mean, small_std = checkpoint_data(opts.small, small_meta, data_dir=opts.data_dir)
    large_data, large_mean, large_std = checkpoint_data(opts.large, large_meta, data_dir=opts.data_dir)
    x = small_data.test_x if opts.split == "test" else small_data.val_x
    y = small_data.test_y if opts.split == "test" else small_data.val_y
    device = device_for(large_meta, opts.device)
    small_logits = logits_of(small_model, x, small_mean, small_std, device=device_for(small_meta, opts.device))
    large_logits = logits_of(large_model, x, large_mean, large_std, device=device)
    small_correct = (small_logits.argmax(1) == y).numpy()
    large_correct = (large_logits.argmax(1) == y).numpy()
    h = entropy(small_logits)
    small_macs, large_macs = _macs(opts.small, small_meta, opts.space), _macs(opts.large, large_meta, opts.space)
    if large_macs <= 0:
        raise UsageError(f"checkpoint {opts.large!r} records {large_macs} MACs per image; the cost needs a positive "
                         f"figure")

    def alone(path: str, meta: Mapping[str, Any], correct: np.ndarray, macs: float) -> dict[str, Any]:
        return {"checkpoint": str(path), "space": meta["space"], "accuracy": float(correct.mean()), "macs": macs,
                "params": (meta.get("metrics") or {}).get("params")}

    result: dict[str, Any] = {
        "dataset": small_data.name, "split": opts.split, "images": len(y), "device": str(device),
        "small": alone(opts.small, small_meta, small_correct, small_macs),
        "large": alone(opts.large, large_meta, large_correct, large_macs),
        "entropy": {"unit": "nats", "min": float(h.min()), "max": float(h.max()), "mean": float(h.mean()),
                    "uniform": math.log(small_data.num_classes)},
        "threshold": opts.threshold, "point": None, "sweep": None}
    args = (h, small_correct, large_correct)
    if opts.threshold is not None:
        result["point"] = delegation_curve(*args, [opts.threshold], small_macs, large_macs)[0]
    # The sweep costs no inference: the page draws it even for one threshold.
    sweep = delegation_curve(*args, sweep_thresholds(h), small_macs, large_macs)
    result["cheapest_matching"] = cheapest_matching(sweep, result["large"]["accuracy"])
    result["sweep"] = sweep
    return result


def _check_same_data(opts: DelegateOptions, small: Mapping[str, Any], large: Mapping[str, Any]) -> None:
    """Both models must classify the same images into the same classes; on the validation split, the same one."""
    a, b = small.get("dataset") or {}, large.get("dataset") or {}
    names = (a.get("name"), b.get("name"))
    if names[0] != names[1]:
        raise UsageError(f"{opts.small!r} was trained on {names[0]!r} and {opts.large!r} on {names[1]!r}: a "
                         f"delegating pair must take the same data set")
    if small["shape"] != large["shape"]:
        raise UsageError(f"{opts.small!r} takes {small['shape']} and {opts.large!r} takes {large['shape']}: a "
                         f"delegating pair must take the same images and classes")
    if a.get("classes") != b.get("classes"):
        raise UsageError(f"{opts.small!r} and {opts.large!r} name their classes differently: a delegating pair "
                         f"must predict the same classes")
    if opts.split == "val" and a.get("seed") != b.get("seed"):
        raise UsageError(f"--split val: {opts.small!r} and {opts.large!r} drew their validation splits with "
                         f"different seeds ({a.get('seed')!r}, {b.get('seed')!r}), so one was trained on the "
                         f"other's validation images; use the test split")


def _macs(path: str, meta: Mapping[str, Any], space: str | None) -> float:
    """The MACs per image the checkpoint records; counted through its space where an older one has none (the
    space `load_checkpoint` used: a checkpoint's own word never loads one, see `export._trust`)."""
    macs = (meta.get("metrics") or {}).get("macs")
    if isinstance(macs, (int, float)) and not isinstance(macs, bool):
        return float(macs)
    from tpsearch.checkpoints._trust import checkpoint_space

    found = checkpoint_space(meta, f"checkpoint {str(path)!r}", space)
    return float(found.count_macs(meta["arch"], **meta["shape"]))
