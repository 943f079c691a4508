"""Which trial `tpsearch export` writes (`pick_trial`: the best feasible completed one, or one named), the space
its architecture is of, and the weights the search kept for it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
import torch

from tpsearch import spaces
from tpsearch.checkpoints import build_model, read_plain
from tpsearch.exceptions import UnknownSpaceError, UsageError
from tpsearch.study import Outcome, accuracy_of, best_trial, outcome_of


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial `number`, or the best feasible completed one; one clear line when it cannot be exported."""
    trials = study.get_trials(deepcopy=False)
    best = best_trial(trials)
    if number is None:
        if best is None:
            raise UsageError(f"study {study.study_name!r} has no completed trial yet ({len(trials)} trials): "
                             f"run the search longer, or wait for it")
        return best
    found = [t for t in trials if t.number == number]
    if not found:
        span = f"0..{trials[-1].number}" if trials else "none"
        raise UsageError(f"study {study.study_name!r} has no trial {number} (trials: {span})")
    t = found[0]
    hint = f"; the best completed trial is {best.number}" if best is not None else ""
    outcome = outcome_of(t)
    if outcome is Outcome.INFEASIBLE and "reason" in t.user_attrs:  # over the memory, not the parameter budget
        raise UsageError(f"trial {number} is infeasible ({t.user_attrs['reason']}){hint}")
    if outcome is Outcome.INFEASIBLE:
        budget = study.user_attrs.get("max_params")
        raise UsageError(f"trial {number} is an infeasible draw ({_count(t.user_attrs.get('params'))} parameters, "
                         f"over the budget of {_count(budget)}): it was never trained{hint}")
    if outcome is not Outcome.COMPLETE or accuracy_of(t) is None:
        why = {Outcome.PRUNED: f"was pruned after {t.user_attrs.get('epochs', '?')} epochs",
               Outcome.DIVERGED: "diverged (its training loss stopped being finite)",
               Outcome.FAILED: f"failed ({t.user_attrs.get('reason', 'no reason recorded')})",
               Outcome.RUNNING: "is still running", Outcome.WAITING: "is waiting to run"}.get(
            outcome, f"is {outcome.value}")
        raise UsageError(f"trial {number} {why}; export takes a completed trial{hint}")
    return t


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def kept_weights(study: optuna.Study, trial: optuna.trial.FrozenTrial, runs_dir: str = "runs") -> Path:
    """The file the search kept for `trial` (recorded relative to `runs_dir`, or absolute by older versions), or a
    clear error suggesting --retrain."""
    kept = study.user_attrs.get("checkpoints") or {}
    path = kept.get(str(trial.number))
    if not path:
        which = ", ".join(sorted(kept, key=int)) or "none"
        raise UsageError(f"trial {trial.number} has no kept weights (the search keeps the best "
                         f"{len(kept)} completed trials' only: {which}); add --retrain --epochs N to train its "
                         f"architecture from scratch")
    path = Path(runs_dir) / path
    if not path.is_file():
        raise UsageError(f"the weights of trial {trial.number}, {str(path)!r}, are gone (moved or deleted; is "
                         f"--runs-dir the search's?); add --retrain --epochs N to train its architecture from scratch")
    return path


def load_trial_weights(path: Path, trial: optuna.trial.FrozenTrial, space_spec: str, space: spaces.Space,
                       arch: dict[str, Any], shape: dict[str, int]) -> torch.nn.Module:
    saved = read_plain(path, "trial checkpoint")
    if saved.get("arch") != arch or saved.get("space", space.name) != space.name:
        raise UsageError(f"the weights file {str(path)!r} is not trial {trial.number}'s: it holds architecture "
                         f"{saved.get('arch')!r} of space {saved.get('space')!r}")
    if not isinstance(saved.get("state_dict"), dict):
        raise UsageError(f"the weights file {str(path)!r} holds no state_dict")
    if saved.get("shape") not in (None, shape):
        raise UsageError(f"the weights file {str(path)!r} was trained on inputs {saved['shape']}, but the "
                         f"study's data set gives {shape}: is --data-dir the search's?")
    return build_model({"space": space_spec, "arch": arch, "shape": shape}, saved["state_dict"], path, space)


def study_attr(study: optuna.Study, key: str) -> Any:
    value = study.user_attrs.get(key)
    if value is None:
        raise UsageError(f"study {study.study_name!r} records no {key!r}: was it written by `tpsearch run`?")
    return value


def study_space(study: optuna.Study, given: str | None) -> tuple[str, spaces.Space]:
    """(spec, space) of the study's architectures: its record, which is the user's own storage and trusted (unlike
    a checkpoint's word, see `_trust`), or `given` (--space) where that record names a file or module that cannot
    be found from here: `tpsearch run` records FILE.py:CLASS as it was typed, relative to where it ran."""
    recorded = study_attr(study, "space")
    if given is not None:
        return given, spaces.get(given)
    try:
        return recorded, spaces.get(recorded)
    except UnknownSpaceError as e:
        if not spaces.is_own(recorded):
            raise
        raise UsageError(f"study {study.study_name!r} records the space {recorded!r}, which does not load from "
                         f"{os.getcwd()!r} ({e}): give --space FILE.py:CLASS (or MODULE:CLASS) of that space"
                         ) from None
