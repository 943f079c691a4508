"""Training hyperparameters that every space searches: one definition, shared by all spaces.

Two kinds. The base dimensions (optimizer, learning rate, weight decay, batch size, label smoothing) are drawn in
every trial. The trick dimensions (mixup, the confidence penalty, the schedule, the crop's padding) are drawn only
when a search names them (`tpsearch run --tricks mixup,schedule`, `suggest(trial, tricks=...)`); unnamed, they stay
at the trainer's defaults (off; cosine; reflection) and cost no Optuna call, so a seeded search draws exactly what
it drew before they existed.

`TRICKS` is the other view of the same fields: the switches of `tpsearch ablate`'s chain, each from the value a
bare baseline trains with to the value the trick trains with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from tpsearch.spaces._types import Dimension
from tpsearch.trainers import OPTIMIZERS, PAD_MODES, SCHEDULES  # the trainer implements them; spaces search them

BATCH_SIZES = (64, 128, 256, 512)


def _mixup(trial: Any) -> dict[str, Any]:
    # On/off first: "off" is a point TPE can find, which a range starting at 0 would almost never sample.
    if trial.suggest_categorical("mixup", [False, True]):
        return {"mixup_alpha": trial.suggest_float("mixup_alpha", 0.1, 0.4)}
    return {"mixup_alpha": 0.0}


# What `--tricks` may name: each adds its dimension(s) to the draw, in this order whatever order it was named in.
SEARCHED_TRICKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "mixup": _mixup,
    "confidence_penalty": lambda trial: {"confidence_penalty": trial.suggest_float("confidence_penalty", 0.0, 0.2)},
    "schedule": lambda trial: {"schedule": trial.suggest_categorical("schedule", list(SCHEDULES))},
    "pad_mode": lambda trial: {"pad_mode": trial.suggest_categorical("pad_mode", list(PAD_MODES))},
}


def check_tricks(tricks: Iterable[str]) -> list[str]:
    """`tricks` as a list, or ValueError naming the first unknown one and the known ones."""
    tricks = list(tricks)
    for name in tricks:
        if name not in SEARCHED_TRICKS:
            raise ValueError(f"unknown trick {name!r} to search; choose from: {', '.join(SEARCHED_TRICKS)}")
    return tricks


def suggest(trial: Any, tricks: Iterable[str] = ()) -> dict[str, Any]:
    named = set(check_tricks(tricks))
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    # SGD and AdamW live at learning rates two decades apart, so each gets its own range (a conditional dimension).
    if optimizer == "sgd":
        lr = trial.suggest_float("lr_sgd", 1e-2, 0.4, log=True)
    else:
        lr = trial.suggest_float("lr_adamw", 1e-4, 1e-2, log=True)
    hparams = {
        "optimizer": optimizer,
        "lr": lr,
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
    }
    for name, draw in SEARCHED_TRICKS.items():
        if name in named:
            hparams.update(draw(trial))
    return hparams


def params_of(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The trial params that make `suggest(trial, tricks=SEARCHED_TRICKS)` return `hparams` (as `Space.params_of`
    is for an architecture): how a known training configuration is enqueued in a study. Trick fields that
    `hparams` leaves out are at the trainer's defaults."""
    optimizer = hparams["optimizer"]
    alpha = float(hparams.get("mixup_alpha", 0.0))
    params = {"optimizer": optimizer, f"lr_{optimizer}": hparams["lr"], "weight_decay": hparams["weight_decay"],
              "batch_size": hparams["batch_size"], "label_smoothing": hparams["label_smoothing"], "mixup": alpha > 0,
              "confidence_penalty": float(hparams.get("confidence_penalty", 0.0)),
              "schedule": hparams.get("schedule", SCHEDULES[0]), "pad_mode": hparams.get("pad_mode", PAD_MODES[0])}
    if alpha > 0:
        params["mixup_alpha"] = alpha
    return params


def dimensions() -> list[Dimension]:
    return [
        Dimension("optimizer", "opt", "sgd | adamw", "SGD with Nesterov momentum 0.9, or AdamW"),
        Dimension("lr", "lr", "sgd: 0.01..0.4 log; adamw: 1e-4..1e-2 log", "peak learning rate (warm-up, then decay)"),
        Dimension("weight_decay", "wd", "1e-5..1e-3 log", "weight decay"),
        Dimension("batch_size", "bs", "64 | 128 | 256 | 512", "training batch size"),
        Dimension("label_smoothing", "ls", "0..0.2", "label smoothing of the cross-entropy"),
        Dimension("mixup_alpha", "mix", "off | on: 0.1..0.4 (--tricks mixup)",
                  "mixup: batch blended with its permutation, Beta(a, a); default off"),
        Dimension("confidence_penalty", "cp", "0..0.2 (--tricks confidence_penalty)",
                  "loss minus beta x the prediction's entropy; default 0"),
        Dimension("schedule", "sched", "cosine | step (--tricks schedule)",
                  "decay after warm-up; step: x0.1 at 50%, 75%; default cosine"),
        Dimension("pad_mode", "pad", "reflect | zero (--tricks pad_mode)",
                  "padding of the random crop; default reflect"),
    ]


@dataclass(frozen=True)
class Trick:
    """One step of `tpsearch ablate`'s chain: the training field `field` switched from `off` (the chain's bare
    baseline) to `on` (the trick at a common setting)."""

    name: str
    field: str
    off: Any
    on: Any


# The SE-MXResNet project's tricks and two more, each at the setting it is commonly used with.
TRICKS = {t.name: t for t in (
    Trick("cosine", "schedule", "step", "cosine"),
    Trick("reflect", "pad_mode", "zero", "reflect"),
    Trick("label_smoothing", "label_smoothing", 0.0, 0.1),
    Trick("mixup", "mixup_alpha", 0.0, 0.2),
    Trick("confidence_penalty", "confidence_penalty", 0.0, 0.1),
    Trick("adamw", "optimizer", "sgd", "adamw"),
)}
