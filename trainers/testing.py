"""Faults for tests: a model wrapped so that training fails the way it fails on a GPU, with no hook in the loop.

    >>> from tpsearch.trainers.testing import inject_fault
    >>> model = inject_fault(model, "oom")  # the first forward pass raises torch.OutOfMemoryError  # doctest: +SKIP

The trainer knows nothing of these: they reach it through the model's forward pass, as real failures do. The
fault suite of `tpsearch run` injects them into chosen trials (`RunOptions.faults`).
"""
from __future__ import annotations

import time

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
