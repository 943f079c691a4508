"""For tests: faults (a model wrapped so that training fails the way it fails on a GPU, with no hook in the loop)
and image folders written on disk.

    >>> from tpsearch.testing.trainers import inject_fault
    >>> model = inject_fault(model, "oom")  # the first forward pass raises torch.OutOfMemoryError  # doctest: +SKIP

The trainer knows nothing of these: they reach it through the model's forward pass, as real failures do. The
fault suite of `tpsearch run` injects them into chosen trials (`tpsearch.testing.search.with_faults`, a trainable).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

FAULTS = ("oom", "nan", "raise", "hang")
OOM_ABOVE = "oom_above_"  # "oom_above_N": out of memory on training batches of more than N images only


class FaultyModel(nn.Module):
    """`model` whose forward pass fails: "oom" runs out of memory, "oom_above_N" does so only on training batches
    of more than N images (a model that fits at a smaller batch; evaluation, without gradients, fits), "nan"
    returns NaN logits (a diverged loss), "raise" raises a RuntimeError like a bug, "hang" never returns (a
    deadlock, a stuck device)."""

    def __init__(self, model: nn.Module, fault: str) -> None:
        super().__init__()
        self.model, self.fault = model, fault
        self.fits = _fits(fault)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fault == "oom" or (self.training and len(x) > self.fits):
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected fault {self.fault!r})")
        if self.fault == "raise":
            raise RuntimeError("injected fault: the trial raised")
        while self.fault == "hang":
            time.sleep(1.0)
        if self.fault == "nan":
            return self.model(x) * float("nan")
        return self.model(x)


def _fits(fault: str) -> float:
    """The largest batch that fits in memory under `fault` (any, but for "oom_above_N")."""
    if fault.startswith(OOM_ABOVE) and fault[len(OOM_ABOVE):].isdigit():
        return int(fault[len(OOM_ABOVE):])
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)} or {OOM_ABOVE}N, but got {fault!r}")
    return float("inf")


def inject_fault(model: nn.Module, fault: str) -> FaultyModel:
    return FaultyModel(model, fault)


def write_image_folder(root: Path, classes: int = 12, per_class: int = 15, seed: int = 0,
                       truncated: int = 1) -> list[str]:
    """ROOT/class_NN/<images> as a photo collection holds them: PNG and JPEG files of varied sizes and aspect
    ratios, some grayscale or with a palette, each class a colour of its own under noise (learnable in an epoch or
    two), a stray text file that is no image, and the first `truncated` images of class 00 cut short. Returns the
    truncated files, relative to `root`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class_{c:02d}"
        folder.mkdir(parents=True)
        colour = rng.integers(0, 256, 3)
        for i in range(per_class):
            h, w = (int(v) for v in rng.integers(12, 72, 2))
            pixels = np.clip(colour + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            if i % 5 == 3:
                image = image.convert("L")
            elif i % 5 == 4:
                image = image.convert("P")
            image.save(folder / f"img_{i:03d}.{'jpg' if i % 2 and image.mode != 'P' else 'png'}")
    (root / "class_00" / "notes.txt").write_text("not an image: ignored, not counted")
    cut = []
    for path in sorted((root / "class_00").glob("img_*"))[:truncated]:
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 3])
        cut.append(path.relative_to(root).as_posix())
    return cut
