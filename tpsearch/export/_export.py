"""`tpsearch export`: the best (or a chosen) trial of a study as a checkpoint, optionally retrained in full first.

Steps: 1. check the options and open the study (nothing written yet); 2. pick the trial: a feasible COMPLETE one;
3. its weights: the file the search kept for it, or a retrain from scratch at full budget that saves its state
after every epoch to `<out>.resume.pt`, so the same command run again after a kill continues where it stopped;
4. the test accuracy; 5. with --quantize, the quantized model (ternary and binary fine-tuned by the same trainer,
under the hyperparameters that trained the weights; see `_quantize`) and its test accuracy, the full-precision
figures kept beside them, refused when it falls more than --max-loss points below full precision (unless
--accept-loss); 6. the checkpoint, written atomically, then ONNX and TorchScript beside it when asked.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import optuna
import torch

from tpsearch import spaces
from tpsearch._files import write_or_refuse
from tpsearch.checkpoints import (BATCH_NORM_IMAGES, CALIBRATION_IMAGES, DEFAULT_EPOCHS, DEFAULT_THRESHOLD, FORMATS,
                                  WRITERS, QuantizeConfig, build_model, json_safe, make_checkpoint, need_onnx,
                                  quantize_model, quantize_summary, read_plain, save_atomic, sealed, sibling)
from tpsearch.checkpoints import QUANTIZE_METHODS as METHODS
from tpsearch.exceptions import QuantizationLossError, UnknownSpaceError, UsageError
from tpsearch.planned import rerank_winner
from tpsearch.storages import DEFAULT_STORAGE, load_study, open_storage, redact
from tpsearch.study import Outcome, accuracy_of, best_trial, objectives_of, outcome_of, pareto_front, trained_index
from tpsearch.trainers import usable_device

if TYPE_CHECKING:
    from tpsearch.trainers import Dataset, TrainConfig

SPLITS = ("train", "train+val")
# The retrain's recipes. "long" suits a 200-300 epoch run of a CIFAR ResNet whatever won the short race: SGD with
# Nesterov momentum at 0.1 per 128 images, weight decay 5e-4 (a search of 15 epochs can favour 1e-5, which
# overfits 300), label smoothing 0.1, 5 warm-up epochs then cosine to zero. "trial" reuses the trial's own.
RECIPES: dict[str, dict[str, Any]] = {
    "long": {"optimizer": "sgd", "lr": 0.1, "batch_size": 128, "weight_decay": 5e-4, "label_smoothing": 0.1,
             "warmup_epochs": 5.0},
    "trial": {},
}
# How far, in points of accuracy, a quantized model may fall below its full-precision self before export refuses to
# write it (--max-loss). The measured price on digits is 0-3 points (README: "Quantized export"); a model that fell
# further has usually broken (the ternary collapse of issue 26 lost 67), and one that is merely worse should be a
# choice the user makes (--accept-loss), not a file that looks like the model they searched for.
DEFAULT_MAX_LOSS = 5.0


@dataclass
class ExportOptions:
    """Everything `tpsearch export` takes; the CLI maps its flags one to one onto these fields."""

    out: str | None = None            # the checkpoint to write; or, with `pareto`, None
    pareto: str | None = None         # a folder: write one checkpoint per trial on the study's Pareto front
    study: str | None = None
    storage: str = DEFAULT_STORAGE
    trial: int | None = None          # None: the re-ranked winner if STUDY-rerank holds one, else the best trial
    space: str | None = None          # the study's space of your own, where its record does not find it from here
    data_dir: str = "data"
    runs_dir: str = "runs"            # the search's; the study records kept weights relative to it
    test: bool = True                 # measure the test accuracy before writing
    retrain: bool = False             # train the architecture from scratch instead of using the kept weights
    epochs: int | None = None         # of a retrain; None: the study's epochs
    on: str = "train"                 # what a retrain trains on: "train", or "train+val" (no validation left)
    recipe: str = "long"              # of a retrain: "long" (RECIPES) or "trial" (the trial's hyperparameters)
    seed: int | None = None           # of the data split and a retrain; None: the study's seed, else 0
    device: str = "auto"              # of a retrain and the test evaluation
    formats: list[str] = field(default_factory=list)  # also write these of FORMATS beside `out`
    quantize: str | None = None       # one of METHODS: ternary (TTQ), binary, int8
    quantize_epochs: int | None = None  # ternary, binary: fine-tune epochs; None: DEFAULT_EPOCHS
    ternary_threshold: float | None = None  # ternary: delta = t x max|w| per layer; None: DEFAULT_THRESHOLD
    quantize_first_last: bool = False  # ternary, binary: also the first conv and the last linear layer
    max_loss: float | None = None     # points of accuracy the quantized model may lose; None: DEFAULT_MAX_LOSS
    accept_loss: bool = False         # write the quantized model whatever it lost
    progress: bool = True


@dataclass
class ExportResult:
    path: str
    study: str
    trial: int
    trained: int | None               # the trial's place among the study's trained trials (`trained_index`)
    source: str                       # "search" (the kept weights) or "retrain"
    epochs: int
    val_accuracy: float | None
    test_accuracy: float | None
    params: int
    macs: int | None
    weights_sha256: str
    resumed_from_epoch: int           # a retrain that continued a killed one: the epochs it found done
    pt2: str | None = None
    onnx: str | None = None
    torchscript: str | None = None
    seconds: float = 0.0
    chosen_by: str | None = None      # without --trial: "rerank" (the re-ranked winner) or "search" (its best)
    rerank: dict[str, Any] | None = None  # then: the rerank study, and the winner's mean, std and seeds (n) there
    quantization: dict[str, Any] | None = None  # with --quantize: method, bits, sizes, full-precision accuracy, ...


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume.pt")


def export_pareto(opts: ExportOptions) -> list[ExportResult]:
    """One checkpoint per trial on the Pareto front of a multi-objective study (`tpsearch run --objectives`):
    PARETO/trial_N.pt, most accurate first, each written as `export` writes one (so --retrain, --format and the
    test accuracy apply to each)."""
    if opts.out is not None or opts.trial is not None:
        raise UsageError("--pareto writes every trial of the front: drop --out and --trial")
    folder = Path(opts.pareto or "")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--pareto {str(folder)!r} is a file; give a folder")
    study = load_study(open_storage(opts.storage, create=False), opts.study)
    objectives = objectives_of(study)
    if len(objectives) == 1:
        raise UsageError(f"study {study.study_name!r} has one objective (accuracy): its front is its best trial; "
                         f"export it with --out FILE.pt, or search with --objectives accuracy,COST")
    front = pareto_front(study.get_trials(deepcopy=False), objectives)
    if not front:
        raise UsageError(f"study {study.study_name!r} has no completed trial yet: no Pareto front to export")
    return [export(dataclasses.replace(opts, pareto=None, study=study.study_name, trial=t.number,
                                       out=str(folder / f"trial_{t.number}.pt"))) for t in front]


def export(opts: ExportOptions) -> ExportResult:
    started = time.time()
    _check_options(opts)
    out = Path(opts.out)  # type: ignore[arg-type]
    storage = open_storage(opts.storage, create=False)
    study = load_study(storage, opts.study)
    winner = rerank_winner(storage, study.study_name) if opts.trial is None else None
    trial = pick_trial(study, winner["source_trial"] if winner else opts.trial)
    spec, space = _study_space(study, opts.space)
    arch = trial.user_attrs.get("arch")
    if not isinstance(arch, dict):
        raise UsageError(f"trial {trial.number} of study {study.study_name!r} records no architecture")
    try:
        kept = None if opts.retrain else kept_weights(study, trial, opts.runs_dir)  # before the data: fail at once
    except UsageError as e:
        if winner is None:
            raise
        raise UsageError(f"the re-ranked winner ({winner['study']!r}): {e}") from None
    _prepare_out(out)

    from tpsearch import trainers
    seed = opts.seed if opts.seed is not None else int(study.user_attrs.get("seed", 0))
    data = trainers.load_dataset(_study_attr(study, "dataset"), opts.data_dir, seed=seed)
    shape = data.shape
    resumed = 0
    if kept is not None:
        model = _load_trial_weights(kept, trial, spec, space, arch, shape)
        val_accuracy = accuracy_of(trial)
        training = {"source": "search", "epochs": int(trial.user_attrs.get("epochs") or 0),
                    "hparams": trial.user_attrs.get("hparams"), "on": "train", "seed": seed,
                    "val_accuracy_meaningful": True,
                    "history": [{"epoch": int(e), "val_accuracy": float(v)}
                                for e, v in sorted(trial.intermediate_values.items())]}
    else:
        epochs = opts.epochs if opts.epochs is not None else int(study.user_attrs.get("epochs") or 0)
        if epochs < 1:
            raise UsageError("give --epochs N for the retrain (the study records no epochs)")
        model, training, resumed = _retrain(study, trial, space, arch, data, shape, epochs, opts, out, seed)
        val_accuracy = training["history"][-1]["val_accuracy"] if training["val_accuracy_meaningful"] else None

    test_accuracy = None
    if opts.test:
        device = trainers.resolve_device(opts.device)  # checked by _check_options
        # float32 even on CUDA: the figure recorded is the one `tpsearch evaluate` reproduces
        test_accuracy, _ = trainers.evaluate(model, data.test_x, data.test_y, data, device=device, bf16=False)
    quantization = None
    if opts.quantize:
        model, quantization, val_accuracy, test_accuracy = _quantize(
            model, training, data, shape, opts, seed, val_accuracy, test_accuracy)
        _check_loss(quantization, opts, val_accuracy, test_accuracy)
    model = model.to("cpu").eval()
    meta = {
        "space": spec, "arch": arch, "shape": shape,
        **({"space_source": source} if (source := spaces.source_of(spec)) else {}),
        "dataset": dataset_meta(data, seed),
        "metrics": {"val_accuracy": val_accuracy, "test_accuracy": test_accuracy,
                    "params": space.count_params(arch, **shape), "macs": space.count_macs(arch, **shape)},
        "training": training,
        **({"quantization": quantization} if quantization else {}),
        "provenance": {"study": study.study_name, "trial": trial.number, "storage": redact(opts.storage),
                       "tpsearch": _version(), "torch": str(torch.__version__),
                       "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
    }
    ckpt = make_checkpoint(model, json_safe(meta))
    write_or_refuse("checkpoint", out, lambda: save_atomic(ckpt, out))
    if opts.retrain:
        resume_path(out).unlink(missing_ok=True)  # the export is written: the retrain is done
    result = ExportResult(
        path=str(out), study=study.study_name, trial=trial.number,
        trained=trained_index(study.get_trials(deepcopy=False)).get(trial.number), source=training["source"],
        epochs=training["epochs"], val_accuracy=val_accuracy, test_accuracy=test_accuracy,
        params=meta["metrics"]["params"], macs=meta["metrics"]["macs"], weights_sha256=ckpt["weights_sha256"],
        resumed_from_epoch=resumed, chosen_by=None if opts.trial is not None else "rerank" if winner else "search",
        rerank={k: winner[k] for k in ("study", "mean", "std", "n")} if winner else None,
        quantization=quantize_summary(ckpt.get("quantization")))
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    for fmt in opts.formats:
        path = sibling(out, fmt)
        write_or_refuse(fmt, path, lambda: WRITERS[fmt](model, meta, path))
        setattr(result, fmt, str(path))
    result.seconds = round(time.time() - started, 3)
    return result


def dataset_meta(data: Dataset, seed: int) -> dict[str, Any]:
    """A checkpoint's record of its data: what the inputs were, how they were normalised, the split's seed."""
    return {"name": data.name, "classes": list(data.classes), "in_channels": data.in_channels,
            "image_size": data.image_size, "mean": list(data.mean), "std": list(data.std), "seed": seed}


# -- 1. options --------------------------------------------------------------------------------------------------
def _check_options(opts: ExportOptions) -> None:
    if not opts.out:
        raise UsageError("give --out FILE.pt (or --pareto DIR for every trial of a multi-objective study's front)")
    if opts.on not in SPLITS:
        raise UsageError(f"--on must be one of {', '.join(SPLITS)}, but got {opts.on!r}")
    if opts.recipe not in RECIPES:
        raise UsageError(f"--recipe must be one of {', '.join(RECIPES)}, but got {opts.recipe!r}")
    if not opts.retrain and (opts.epochs is not None or opts.on != "train" or opts.recipe != "long"):
        raise UsageError("--epochs, --on and --recipe choose how --retrain trains; add --retrain")
    if opts.epochs is not None and opts.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, but got {opts.epochs}")
    for fmt in opts.formats:
        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, but got {fmt!r}")
    if "onnx" in opts.formats:
        need_onnx()
    usable_device(opts.device)
    out = Path(opts.out)
    if out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a directory; give a file name such as {str(out / 'best.pt')!r}")
    if any(sibling(out, fmt) == out for fmt in opts.formats):
        raise UsageError(f"--out {str(out)!r} would be overwritten by its own --format file; use a .pt name")
    if opts.quantize is None:
        if opts.quantize_epochs is not None or opts.ternary_threshold is not None or opts.quantize_first_last:
            raise UsageError("--quantize-epochs, --ternary-threshold and --quantize-first-last choose how "
                             "--quantize quantizes; add --quantize ternary|binary")
        if opts.max_loss is not None or opts.accept_loss:
            raise UsageError("--max-loss and --accept-loss bound what --quantize may cost; add --quantize")
        return
    if opts.max_loss is not None and not (isinstance(opts.max_loss, (int, float)) and 0 <= opts.max_loss <= 100):
        raise UsageError(f"--max-loss must be in points of accuracy, 0 to 100, but got {opts.max_loss!r}")
    if opts.max_loss is not None and opts.accept_loss:
        raise UsageError("--accept-loss writes the quantized model whatever it loses, --max-loss bounds the loss: "
                         "give one of them")
    if not opts.test and not opts.accept_loss and opts.on == "train+val":
        raise UsageError("--no-test with --on train+val leaves no accuracy to check the quantized model against: "
                         "drop --no-test, or add --accept-loss")
    if opts.quantize not in METHODS:
        raise UsageError(f"--quantize must be one of {', '.join(METHODS)}, but got {opts.quantize!r}")
    if opts.ternary_threshold is not None and opts.quantize != "ternary":
        raise UsageError(f"--ternary-threshold is for --quantize ternary, not {opts.quantize}")
    if opts.quantize == "int8":
        if opts.quantize_epochs is not None or opts.quantize_first_last:
            raise UsageError("--quantize int8 is post-training quantization of every layer: --quantize-epochs and "
                             "--quantize-first-last are for ternary and binary")
        if opts.formats:
            raise UsageError("--format writes a float model; an int8 model runs in PyTorch (load_checkpoint) only")
    _quantize_config(opts)  # its own checks of the epochs and the threshold


def _quantize_config(opts: ExportOptions) -> QuantizeConfig:
    return QuantizeConfig(
        opts.quantize or "", epochs=DEFAULT_EPOCHS if opts.quantize_epochs is None else opts.quantize_epochs,
        threshold=DEFAULT_THRESHOLD if opts.ternary_threshold is None else opts.ternary_threshold,
        first_last=opts.quantize_first_last)


def _prepare_out(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the folder {str(out.parent)!r} for --out: {e.strerror or e}") from None
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write to the folder {str(out.parent)!r} of --out")


def _study_attr(study: optuna.Study, key: str) -> Any:
    value = study.user_attrs.get(key)
    if value is None:
        raise UsageError(f"study {study.study_name!r} records no {key!r}: was it written by `tpsearch run`?")
    return value


def _study_space(study: optuna.Study, given: str | None) -> tuple[str, spaces.Space]:
    """(spec, space) of the study's architectures: its record, which is the user's own storage and trusted (unlike
    a checkpoint's word, see `_trust`), or `given` (--space) where that record names a file or module that cannot
    be found from here: `tpsearch run` records FILE.py:CLASS as it was typed, relative to where it ran."""
    recorded = _study_attr(study, "space")
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


# -- 2. the trial ------------------------------------------------------------------------------------------------
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


def _load_trial_weights(path: Path, trial: optuna.trial.FrozenTrial, space_spec: str, space: spaces.Space,
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tpsearch")
    except PackageNotFoundError:
        return "unknown"


# -- 3. retrain ---------------------------------------------------------------------------------------------------
def _retrain(study: optuna.Study, trial: optuna.trial.FrozenTrial, space: spaces.Space, arch: dict[str, Any],
             data: "Dataset", shape: dict[str, int], epochs: int, opts: ExportOptions, out: Path, seed: int
             ) -> tuple[torch.nn.Module, dict[str, Any], int]:
    """Train `arch` from scratch under `opts.recipe` on the whole split; resumes a killed retrain."""
    from tpsearch import trainers

    if opts.recipe == "trial":
        hparams = trial.user_attrs.get("hparams")
        if not isinstance(hparams, dict):
            raise UsageError(f"trial {trial.number} records no training hyperparameters: use --recipe long")
    else:
        hparams = dict(RECIPES[opts.recipe])
    config = _train_config(hparams, epochs=epochs, seed=seed, device=opts.device)
    data = _training_data(data, opts.on)

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
    bar, on_epoch = _epoch_bar(f"retrain trial {trial.number} on {opts.on}", epochs, resumed, opts.progress)
    if resumed:
        bar.write(f"resuming the retrain from epoch {resumed} of {epochs} ({state_path})", file=sys.stderr)

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


def _train_config(hparams: dict[str, Any], *, epochs: int, seed: int, device: str) -> "TrainConfig":
    """The trainer's config from a recipe or a trial's hyperparameters (schedule keys such as warmup_epochs
    included), the device checked: one line for a value it refuses."""
    from tpsearch import trainers

    known = {k: v for k, v in hparams.items() if k in trainers.HPARAM_KEYS}
    schedule = {k: v for k, v in hparams.items() if k not in trainers.HPARAM_KEYS}
    try:
        config = trainers.TrainConfig.from_hparams(known, epochs=epochs, seed=seed, device=device, **schedule)
        trainers.resolve_device(config.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return config


def _training_data(data: "Dataset", on: str) -> "Dataset":
    if on == "train+val":
        # Validation images join the training set; the trainer still scores them each epoch, which then says
        # nothing about generalisation (recorded as such).
        return dataclasses.replace(data, train_x=torch.cat([data.train_x, data.val_x]),
                                   train_y=torch.cat([data.train_y, data.val_y]))
    return data


def _epoch_bar(desc: str, epochs: int, initial: int, enabled: bool) -> tuple[Any, Callable[..., None]]:
    """A progress bar over epochs on stderr, and the trainer callback that advances it."""
    from tqdm import tqdm

    bar = tqdm(total=epochs, initial=initial, desc=desc, unit="epoch", file=sys.stderr, dynamic_ncols=True,
               disable=not enabled)

    def on_epoch(report: Any) -> None:
        val = "-" if report.val_accuracy is None else f"{report.val_accuracy:.4f}"
        bar.set_postfix({"loss": f"{report.train_loss:.4f}", "val": val}, refresh=False)
        bar.update(1)

    return bar, on_epoch


# -- 5. quantize --------------------------------------------------------------------------------------------------
def _quantize(model: torch.nn.Module, training: dict[str, Any], data: "Dataset", shape: dict[str, int],
              opts: ExportOptions, seed: int, val_accuracy: float | None, test_accuracy: float | None
              ) -> tuple[torch.nn.Module, dict[str, Any], float | None, float | None]:
    """(the model the checkpoint stores, its quantization record, validation and test accuracy of the quantized
    model). Ternary and binary fine-tune with the trainer under the hyperparameters that trained the weights (the
    trial's, or the retrain's recipe), on the same split, for --quantize-epochs; int8 calibrates on training
    images. The full-precision accuracies go into the record."""
    from tpsearch import trainers

    config = _quantize_config(opts)
    meaningful = bool(training.get("val_accuracy_meaningful", True))
    on = training.get("on", "train")

    def finetune(net: torch.nn.Module) -> dict[str, Any]:
        hparams = training.get("hparams")
        if not isinstance(hparams, dict):
            raise UsageError("the trial records no training hyperparameters to fine-tune the quantized model "
                             "with: add --retrain")
        train_config = _train_config(hparams, epochs=config.epochs, seed=seed, device=opts.device)
        bar, on_epoch = _epoch_bar(f"fine-tune {config.method} weights", config.epochs, 0, opts.progress)
        try:
            result = trainers.train(net, _training_data(data, on), train_config, callback=on_epoch)
        finally:
            bar.close()
        if result.status != "completed":
            raise UsageError(f"fine-tuning the {config.method} weights failed: {result.reason}; nothing exported")
        return {"epochs": result.epochs, "hparams": hparams, "on": on, "device": result.device,
                "history": [dataclasses.asdict(r) for r in result.history]}

    images = CALIBRATION_IMAGES if config.method == "int8" else BATCH_NORM_IMAGES
    calibration = trainers.normalize(data.train_x[:images], data.mean, data.std)
    cpu = torch.device("cpu")
    device = cpu if config.method == "int8" else trainers.resolve_device(opts.device)
    # The validation accuracy that --max-loss compares when there is no test figure: both models measured alike
    # (the trial's recorded score may come from another evaluation, flipped test-time augmentation say).
    fp_val = trainers.evaluate(model, data.val_x, data.val_y, data, device=device, bf16=False)[0] \
        if meaningful and not opts.test else None
    q = quantize_model(model, config, shape, finetune=finetune, calibration=calibration)
    # Measured on the final model: the fine-tune's last score predates the baked weights' batch-norm statistics.
    q_val = trainers.evaluate(q.model, data.val_x, data.val_y, data, device=device, bf16=False)[0] \
        if meaningful else None
    q_test = None
    if opts.test:
        q_test, _ = trainers.evaluate(q.model, data.test_x, data.test_y, data, device=device, bf16=False)
    full = {"val_accuracy": val_accuracy, "test_accuracy": test_accuracy,
            **({"val_accuracy_at_export": fp_val} if fp_val is not None else {})}
    record = sealed({**q.record, "full_precision": full})
    return q.float_model, record, q_val, q_test


def _check_loss(record: dict[str, Any], opts: ExportOptions, val_accuracy: float | None,
                test_accuracy: float | None) -> None:
    """Refuse (nothing written) a quantized model that lost more than --max-loss points of accuracy: test
    accuracy, or with --no-test validation accuracy, both models measured alike."""
    if opts.accept_loss:
        return
    full = record["full_precision"]
    if test_accuracy is not None and full.get("test_accuracy") is not None:
        split, quantized, reference = "test", test_accuracy, full["test_accuracy"]
    elif val_accuracy is not None and full.get("val_accuracy_at_export") is not None:
        split, quantized, reference = "validation", val_accuracy, full["val_accuracy_at_export"]
    else:  # _check_options refuses the one combination that measures nothing
        raise UsageError("no accuracy to check the quantized model against: drop --no-test, or add --accept-loss")
    bound = DEFAULT_MAX_LOSS if opts.max_loss is None else float(opts.max_loss)
    lost = 100 * (reference - quantized)
    if lost > bound:
        raise QuantizationLossError(
            f"{record['method']} weights lose {lost:.2f} points of {split} accuracy ({quantized:.2%} against "
            f"{reference:.2%} in full precision), more than --max-loss {bound:g}; nothing written: add --accept-loss "
            f"to write it anyway", method=record["method"], split=split, quantized=quantized,
            full_precision=reference, bound=bound)
