"""Training hyperparameters that every space searches: one definition, shared by all spaces."""
from __future__ import annotations

from typing import Any

from tpsearch.spaces._types import Dimension
from tpsearch.trainers import OPTIMIZERS  # the trainer implements them; spaces search over them

BATCH_SIZES = (64, 128, 256, 512)


def suggest(trial: Any) -> dict[str, Any]:
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    # SGD and AdamW live at learning rates two decades apart, so each gets its own range (a conditional dimension).
    if optimizer == "sgd":
        lr = trial.suggest_float("lr_sgd", 1e-2, 0.4, log=True)
    else:
        lr = trial.suggest_float("lr_adamw", 1e-4, 1e-2, log=True)
    return {
        "optimizer": optimizer,
        "lr": lr,
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
    }


def dimensions() -> list[Dimension]:
    return [
        Dimension("optimizer", "opt", "sgd | adamw", "SGD with Nesterov momentum 0.9, or AdamW"),
        Dimension("lr", "lr", "sgd: 0.01..0.4 log; adamw: 1e-4..1e-2 log", "peak learning rate (warm-up, cosine)"),
        Dimension("weight_decay", "wd", "1e-5..1e-3 log", "weight decay"),
        Dimension("batch_size", "bs", "64 | 128 | 256 | 512", "training batch size"),
        Dimension("label_smoothing", "ls", "0..0.2", "label smoothing of the cross-entropy"),
    ]
