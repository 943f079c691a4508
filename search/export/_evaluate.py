"""`tpsearch evaluate`: an exported checkpoint on a data set's test split: accuracy, per class, confusion matrix."""
from __future__ import annotations

import os
from typing import Any

import torch

from tpsearch.search._options import usable_device
from tpsearch.search.export._checkpoint import load_checkpoint
from tpsearch.search.export._quantize import summary as quantize_summary
from tpsearch.exceptions import UsageError


def evaluate_checkpoint(path: str | os.PathLike, *, dataset: str | None = None, data_dir: str = "data",
                        device: str = "auto", batch_size: int = 1024) -> dict[str, Any]:
    """Test-split figures of the checkpoint at `path`, normalised with the mean and std it recorded.

    `dataset` defaults to the checkpoint's own; another one must have the same image shape and class count.
    The confusion matrix is indexed [true class][predicted class]. For a quantized checkpoint, `quantization` holds
    its method, sizes and the full-precision model's accuracy measured at export (else None); an int8 model is
    evaluated on the CPU whatever `device` says.
    """
    from tpsearch import trainers
    model, meta = load_checkpoint(path)
    recorded = meta.get("dataset") or {}
    name = dataset or recorded.get("name")
    if not name:
        raise UsageError(f"checkpoint {str(path)!r} records no data set: give --dataset")
    seed = recorded.get("seed", 0) if name == recorded.get("name") else 0
    data = trainers.load_dataset(name, data_dir, seed=seed if isinstance(seed, int) else 0)
    shape = meta["shape"]
    got = data.shape
    if got != {k: shape[k] for k in got}:
        raise UsageError(f"data set {name!r} has {got}, but the checkpoint's model takes "
                         f"{ {k: shape[k] for k in got} }")
    mean, std = recorded.get("mean"), recorded.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == data.in_channels):
        raise UsageError(f"checkpoint {str(path)!r} records no per-channel mean and std for its inputs")

    quantization = quantize_summary(meta.get("quantization"))
    # PyTorch's int8 kernels are CPU kernels
    dev = torch.device("cpu") if quantization and quantization["method"] == "int8" else usable_device(device)
    model = model.to(dev)
    k = data.num_classes
    preds = []
    with torch.no_grad():
        for i in range(0, len(data.test_y), batch_size):
            images = trainers.normalize(data.test_x[i:i + batch_size].to(dev), mean, std)
            preds.append(model(images).argmax(1).cpu())
    pred = torch.cat(preds)
    truth = data.test_y
    confusion = torch.bincount(truth * k + pred, minlength=k * k).view(k, k)
    per_true = confusion.sum(1)
    classes = recorded.get("classes") if name == recorded.get("name") else None
    classes = [str(c) for c in (classes or data.classes)]
    per_class = {c: (float(confusion[i, i] / per_true[i]) if per_true[i] else None) for i, c in enumerate(classes)}
    return {
        "checkpoint": str(path), "dataset": data.name, "split": "test", "images": len(truth),
        "test_accuracy": float((pred == truth).float().mean()), "per_class_accuracy": per_class,
        "classes": classes, "confusion_matrix": confusion.tolist(),
        "recorded": meta.get("metrics", {}), "trial": (meta.get("provenance") or {}).get("trial"),
        "study": (meta.get("provenance") or {}).get("study"), "space": meta["space"], "arch": meta["arch"],
        "quantization": quantization,
    }
