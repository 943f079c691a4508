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


class FaultyModel(nn.Module):
    """`model` whose forward pass fails: "oom" runs out of memory, "nan" returns NaN logits (a diverged loss),
    "raise" raises a RuntimeError like a bug, "hang" never returns (a deadlock, a stuck device)."""

    def __init__(self, model: nn.Module, fault: str) -> None:
        super().__init__()
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, but got {fault!r}")
        self.model, self.fault = model, fault

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory (injected fault 'oom')")
        if self.fault == "raise":
            raise RuntimeError("injected fault: the trial raised")
        while self.fault == "hang":
            time.sleep(1.0)
        return self.model(x) * float("nan")


def inject_fault(model: nn.Module, fault: str) -> FaultyModel:
    return FaultyModel(model, fault)
