"""`tpsearch evaluate`: an exported checkpoint on a data set's test split: accuracy, per class, confusion matrix.

`checkpoint_data` and `logits_of` are how every command that runs a checkpoint on data (evaluate, explain,
delegate) finds the data set it was trained on and normalises the images as it was trained.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch

from tpsearch.trainers import usable_device
from tpsearch.checkpoints._checkpoint import load_checkpoint
from tpsearch.checkpoints._quantize import summary as quantize_summary
from tpsearch.exceptions import UsageError

# Top-5 accuracy is reported above this many classes: with ten or fewer, five guesses are half the answers.
TOP5_CLASSES = 10


def checkpoint_data(path: str | os.PathLike, meta: Mapping[str, Any], *, dataset: str | None = None,
                    data_dir: str = "data") -> tuple[Any, list[float], list[float]]:
    """(data set, mean, std): the checkpoint's data set (or `dataset`, which must have the same image shape and
    class count), its validation split drawn with the checkpoint's seed, and the per-channel normalisation the
    checkpoint recorded."""
    from tpsearch import trainers

    recorded = meta.get("dataset") or {}
    name = trainers.canonical_dataset(dataset) if dataset else recorded.get("name")
    if not name:
        raise UsageError(f"checkpoint {str(path)!r} records no data set: give --dataset")
    seed = recorded.get("seed", 0) if name == recorded.get("name") else 0
    data = trainers.load_dataset(name, data_dir, seed=seed if isinstance(seed, int) else 0)
    shape = meta["shape"]
    got = data.shape
    if got != {k: shape[k] for k in got}:
        raise UsageError(f"data set {name!r} has {got}, but the checkpoint's model takes "
                         f"{ {k: shape[k] for k in got} }")
    return (data, *normalisation(path, meta))


def normalisation(path: str | os.PathLike, meta: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """The per-channel (mean, std) of the inputs, on the 0..1 scale, that the checkpoint recorded."""
    recorded = meta.get("dataset") or {}
    mean, std = recorded.get("mean"), recorded.get("std")
    channels = meta["shape"]["in_channels"]
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == channels):
        raise UsageError(f"checkpoint {str(path)!r} records no per-channel mean and std for its inputs")
    return mean, std


def is_int8(meta: Mapping[str, Any]) -> bool:
    return (meta.get("quantization") or {}).get("method") == "int8"


def device_for(meta: Mapping[str, Any], device: str) -> torch.device:
    """Where a checkpoint's model runs for `--device`: an int8 model on the CPU whatever it says (PyTorch's int8
    kernels are CPU kernels)."""
    return torch.device("cpu") if is_int8(meta) else usable_device(device)


def logits_of(model: torch.nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float], *,
              device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """float32 logits [N, classes] on the CPU of uint8 images [N, C, H, W], normalised as in training, unaugmented."""
    from tpsearch.trainers import normalize

    model = model.to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(model(normalize(images[i:i + batch_size].to(device), mean, std)).float().cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def evaluate_checkpoint(path: str | os.PathLike, *, dataset: str | None = None, data_dir: str = "data",
                        device: str = "auto", batch_size: int = 1024, space: str | None = None) -> dict[str, Any]:
    """Test-split figures of the checkpoint at `path`, normalised with the mean and std it recorded.

    `dataset` defaults to the checkpoint's own; another one must have the same image shape and class count.
    The confusion matrix is indexed [true class][predicted class]. With more than `TOP5_CLASSES` classes the top-5
    accuracy is reported too (the true class among the five highest logits); with fewer it is None. For a quantized
    checkpoint, `quantization` holds its method, sizes and the full-precision model's accuracy measured at export
    (else None); an int8 model is evaluated on the CPU whatever `device` says. `space` names the space of your own
    that the checkpoint was made with, if it was (see `load_checkpoint`).
    """
    model, meta = load_checkpoint(path, space=space)
    data, mean, std = checkpoint_data(path, meta, dataset=dataset, data_dir=data_dir)
    recorded = meta.get("dataset") or {}
    name = data.name
    quantization = quantize_summary(meta.get("quantization"))
    logits = logits_of(model, data.test_x, mean, std, device=device_for(meta, device), batch_size=batch_size)
    pred = logits.argmax(1)
    k = data.num_classes
    top5 = (logits.topk(5, dim=1).indices == data.test_y[:, None]).any(1) if k > TOP5_CLASSES else None
    truth = data.test_y
    confusion = torch.bincount(truth * k + pred, minlength=k * k).view(k, k)
    per_true = confusion.sum(1)
    classes = recorded.get("classes") if name == recorded.get("name") else None
    classes = [str(c) for c in (classes or data.classes)]
    per_class = {c: (float(confusion[i, i] / per_true[i]) if per_true[i] else None) for i, c in enumerate(classes)}
    return {
        "checkpoint": str(path), "dataset": data.name, "split": "test", "images": len(truth),
        "test_accuracy": float((pred == truth).float().mean()),
        "top5_accuracy": None if top5 is None else float(top5.float().mean()), "per_class_accuracy": per_class,
        "classes": classes, "confusion_matrix": confusion.tolist(),
        "recorded": meta.get("metrics", {}), "trial": (meta.get("provenance") or {}).get("trial"),
        "study": (meta.get("provenance") or {}).get("study"), "space": meta["space"], "arch": meta["arch"],
        "quantization": quantization,
    }
