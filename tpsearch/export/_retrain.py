"""`tpsearch export --retrain`: the chosen trial's architecture trained from scratch under a recipe, its state
saved after every epoch to `<out>.resume.pt` (`resume_path`), so that the same command run again after a kill
continues where it stopped, and a state of another retrain is refused rather than mixed in."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import optuna
import torch

from tpsearch import spaces, trainers
from tpsearch._files import write_or_refuse
from tpsearch.checkpoints import read_plain, save_atomic
from tpsearch.exceptions import UsageError
from tpsearch.export._options import RECIPES, ExportOptions
from tpsearch.export._training import epoch_bar, train_config, training_data


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume.pt")


def retrain(study: optuna.Study, trial: optuna.trial.FrozenTrial, space: spaces.Space, arch: dict[str, Any],
            data: trainers.Dataset, shape: dict[str, int], epochs: int, opts: ExportOptions, out: Path, seed: int
            ) -> tuple[torch.nn.Module, dict[str, Any], int]:
    """Train `arch` from scratch under `opts.recipe` on the whole split; resumes a killed retrain."""
    if opts.recipe == "trial":
        hparams = trial.user_attrs.get("hparams")
        if not isinstance(hparams, dict):
            raise UsageError(f"trial {trial.number} records no training hyperparameters: use --recipe long")
    else:
        hparams = dict(RECIPES[opts.recipe])
    config = train_config(hparams, epochs=epochs, seed=seed, device=opts.device)
    data = training_data(data, opts.on)

    # What makes a saved state this retrain's: resuming another one would silently mix two runs.
    job = {"epochs": epochs, "on": opts.on, "seed": seed, "trial": trial.number, "study": study.study_name,
           "dataset": data.name, "space": space.name, "arch": arch, "recipe": opts.recipe,
           "hparams": dict(hparams)}
    state_path = resume_path(out)
    state = None
    if state_path.exists():
        saved = read_plain(state_path, "retrain state")
        theirs = saved.get("job") if isinstance(saved.get("job"), dict) else {}
        differ = [k for k in job if theirs.get(k) != job[k]]
        if differ or not isinstance(saved.get("train"), dict):
            what = ", ".join(k if isinstance(job[k], (dict, list)) else f"{k} {theirs.get(k)!r} there, {job[k]!r} here"
                             for k in differ[:3]) or "unreadable"
            raise UsageError(f"{str(state_path)!r} holds the state of another retrain ({what}): rerun that "
                             f"command, or delete the file to start this one from scratch")
        state = saved["train"]
    resumed = int(state["epoch"]) if state else 0

    torch.manual_seed(seed)
    model = space.build(arch, **shape)
    bar, on_epoch = epoch_bar(f"retrain trial {trial.number} on {opts.on}", epochs, resumed, opts.progress)
    if resumed:
        bar.write(f"resuming the retrain from epoch {resumed} of {epochs} ({state_path})", file=sys.stderr)

    # `save_atomic` as this module's name: `tpsearch.testing.search.export_held_after_first_epoch` replaces it
    # here to hold a retrain once its first epoch is saved.
    def checkpoint(train_state: dict[str, Any]) -> None:
        write_or_refuse("retrain state", state_path,
                        lambda: save_atomic({"job": job, "train": train_state}, state_path))

    try:
        try:
            result = trainers.train(model, data, config, callback=on_epoch, checkpoint=checkpoint, resume=state)
        except ValueError as e:  # a state that does not fit this run (another data split size, say)
            raise UsageError(f"cannot resume from {str(state_path)!r}: {e}; delete it to start over") from None
    finally:
        bar.close()
    if result.status != "completed":
        raise UsageError(f"retraining trial {trial.number} failed: {result.reason}; nothing exported")
    meaningful = opts.on == "train"
    training = {
        "source": "retrain", "epochs": result.epochs, "recipe": opts.recipe, "hparams": dict(hparams),
        "on": opts.on, "seed": seed,
        "val_accuracy_meaningful": meaningful,
        **({} if meaningful else {"note": "validation images were trained on: their accuracy is not a measure "
                                          "of generalisation; see metrics.test_accuracy"}),
        "config": dataclasses.asdict(config), "resumed_from_epoch": resumed, "device": result.device,
        "history": [dataclasses.asdict(r) for r in result.history],
    }
    return model, training, resumed
