"""`tpsearch export`: the best (or a chosen) trial of a study as a checkpoint, optionally retrained in full first.

Steps: 1. check the options (`_options`) and open the study (nothing written yet); 2. pick the trial (`_choice`): a
feasible COMPLETE one; 3. its weights: the file the search kept for it, or a retrain from scratch at full budget
that saves its state after every epoch to `<out>.resume.pt`, so the same command run again after a kill continues
where it stopped (`_retrain`); 4. the test accuracy; 5. with --quantize, the quantized model (ternary and binary
fine-tuned by the same trainer, under the hyperparameters that trained the weights; see `_quantized`) and its test
accuracy, the full-precision figures kept beside them, refused when it falls more than --max-loss points below full
precision (unless --accept-loss); 6. the checkpoint, written atomically, then ONNX and TorchScript beside it when
asked.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tpsearch import spaces, trainers
from tpsearch._files import write_or_refuse
from tpsearch.checkpoints import WRITERS, json_safe, make_checkpoint, quantize_summary, save_atomic, sibling
from tpsearch.exceptions import UsageError
from tpsearch.export._choice import kept_weights, load_trial_weights, pick_trial, study_attr, study_space
from tpsearch.export._options import ExportOptions, check_options
from tpsearch.export._quantized import check_loss, quantize
from tpsearch.export._retrain import resume_path, retrain
from tpsearch.planned import rerank_winner
from tpsearch.storages import load_study, open_storage, redact
from tpsearch.study import accuracy_of, objectives_of, pareto_front, trained_index


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
    check_options(opts)
    out = Path(opts.out)  # type: ignore[arg-type]
    storage = open_storage(opts.storage, create=False)
    study = load_study(storage, opts.study)
    winner = rerank_winner(storage, study.study_name) if opts.trial is None else None
    trial = pick_trial(study, winner["source_trial"] if winner else opts.trial)
    spec, space = study_space(study, opts.space)
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

    seed = opts.seed if opts.seed is not None else int(study.user_attrs.get("seed", 0))
    data = trainers.load_dataset(study_attr(study, "dataset"), opts.data_dir, seed=seed)
    shape = data.shape
    resumed = 0
    if kept is not None:
        model = load_trial_weights(kept, trial, spec, space, arch, shape)
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
        model, training, resumed = retrain(study, trial, space, arch, data, shape, epochs, opts, out, seed)
        val_accuracy = training["history"][-1]["val_accuracy"] if training["val_accuracy_meaningful"] else None

    test_accuracy = None
    if opts.test:
        device = trainers.resolve_device(opts.device)  # checked by check_options
        # float32 even on CUDA: the figure recorded is the one `tpsearch evaluate` reproduces
        test_accuracy, _ = trainers.evaluate(model, data.test_x, data.test_y, data, device=device, bf16=False)
    quantization = None
    if opts.quantize:
        model, quantization, val_accuracy, test_accuracy = quantize(
            model, training, data, shape, opts, seed, val_accuracy, test_accuracy)
        check_loss(quantization, opts, val_accuracy, test_accuracy)
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


def dataset_meta(data: trainers.Dataset, seed: int) -> dict[str, Any]:
    """A checkpoint's record of its data: what the inputs were, how they were normalised, the split's seed."""
    return {"name": data.name, "classes": list(data.classes), "in_channels": data.in_channels,
            "image_size": data.image_size, "mean": list(data.mean), "std": list(data.std), "seed": seed}


def _prepare_out(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the folder {str(out.parent)!r} for --out: {e.strerror or e}") from None
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write to the folder {str(out.parent)!r} of --out")

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tpsearch")
    except PackageNotFoundError:
        return "unknown"
