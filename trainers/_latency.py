"""Inference latency of a model on a device: the median of repeated timed forward passes after a warm-up.

    lat = measure_latency(model, in_channels=3, image_size=32, batch=1, device="cuda")
    lat.median_ms, lat.cv, lat.images_per_s

On CUDA each pass is timed with CUDA events (the GPU's own clock, no host round trip inside the timed span); on
the CPU with `time.perf_counter`. The median, not the mean, because a busy machine adds rare long passes; the
coefficient of variation (standard deviation over mean) says how far to trust it.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn


@dataclass(frozen=True)
class Latency:
    batch: int
    median_ms: float   # per forward pass of `batch` images
    cv: float          # standard deviation over mean of the timed passes
    repeats: int
    device: str

    @property
    def images_per_s(self) -> float:
        return self.batch / (self.median_ms / 1000) if self.median_ms > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_s": self.images_per_s}


def measure_latency(model: nn.Module, *, in_channels: int = 3, image_size: int = 32, batch: int = 1,
                    device: str | torch.device = "cpu", warmup: int = 3, repeats: int = 20,
                    channels_last: bool = False, bf16: bool = False) -> Latency:
    """Time `repeats` forward passes of a random batch after `warmup` untimed ones, in eval mode without autograd.

    The model is moved to `device` (and left there, in the mode it came in). `channels_last` and `bf16` (CUDA only)
    time the model as the trainer evaluates it there.
    """
    if batch < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"batch and repeats must be at least 1 and warmup at least 0, but got batch={batch}, "
                         f"repeats={repeats}, warmup={warmup}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    was_training = model.training
    model.to(device).eval()
    x = torch.randn(batch, in_channels, image_size, image_size, device=device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times: list[float] = []
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and cuda):
            for _ in range(warmup):
                model(x)
            if cuda:
                # One pair of events per pass, read after the last: the timed span holds no host sync.
                events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                          for _ in range(repeats)]
                torch.cuda.synchronize(device)
                for start, end in events:
                    start.record()
                    model(x)
                    end.record()
                torch.cuda.synchronize(device)
                times = [start.elapsed_time(end) for start, end in events]
            else:
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    model(x)
                    times.append((time.perf_counter() - t0) * 1000)
    finally:
        model.train(was_training)
    mean = statistics.fmean(times)
    cv = statistics.pstdev(times) / mean if mean > 0 and len(times) > 1 else 0.0
    return Latency(batch=batch, median_ms=statistics.median(times), cv=cv, repeats=repeats, device=str(device))
