"""How export trains, a retrain and a quantized model's fine-tune alike: the trainer's config from a recipe or a
trial's hyperparameters, built as a search builds its trials' (`RunOptions.train_config`), the split it trains on,
and the progress bar over its epochs."""
from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable

import torch

from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions
from tpsearch.trainers import HPARAM_KEYS, Dataset, TrainConfig, resolve_device

# The search's options as one training fills them: no scheduler, so no rungs to restart the learning rate at, and
# the trainer's own warm-up where the recipe names none (a search's is short, to end by ASHA's first rung).
_ONE_RUN = RunOptions(scheduler="none", warmup_epochs=TrainConfig.warmup_epochs)


def train_config(hparams: dict[str, Any], *, epochs: int, seed: int, device: str) -> TrainConfig:
    """The trainer's config from a recipe or a trial's hyperparameters (schedule keys such as warmup_epochs
    included), the device checked: one line for a value it refuses."""
    known = {k: v for k, v in hparams.items() if k in HPARAM_KEYS}
    schedule = {k: v for k, v in hparams.items() if k not in HPARAM_KEYS}
    try:
        # The seed goes on top: export takes any integer, where a search's options hold a sampler's range. Every
        # epoch is scored, not only a search's rungs: the retrain's history and its bar show each one.
        config = dataclasses.replace(_ONE_RUN, epochs=epochs, device=device).train_config(
            known, seed=seed, **{"eval_epochs": None, **schedule})
        resolve_device(config.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return config


def training_data(data: Dataset, on: str) -> Dataset:
    if on == "train+val":
        # Validation images join the training set; the trainer still scores them each epoch, which then says
        # nothing about generalisation (recorded as such).
        return dataclasses.replace(data, train_x=torch.cat([data.train_x, data.val_x]),
                                   train_y=torch.cat([data.train_y, data.val_y]))
    return data


def epoch_bar(desc: str, epochs: int, initial: int, enabled: bool) -> tuple[Any, Callable[..., None]]:
    """A progress bar over epochs on stderr, and the trainer callback that advances it."""
    from tqdm import tqdm

    bar = tqdm(total=epochs, initial=initial, desc=desc, unit="epoch", file=sys.stderr, dynamic_ncols=True,
               disable=not enabled)

    def on_epoch(report: Any) -> None:
        val = "-" if report.val_accuracy is None else f"{report.val_accuracy:.4f}"
        bar.set_postfix({"loss": f"{report.train_loss:.4f}", "val": val}, refresh=False)
        bar.update(1)

    return bar, on_epoch
