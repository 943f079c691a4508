"""The two defaults a search decides from its data and its machine: the MACs cap and the GPUs per trial.

The MACs cap (`--max-macs auto`). Under 5M parameters, resnet_5m still holds one-layer networks of 4-5 GMAC per
32x32 image (a fifth of the feasible draws on CIFAR-10 are over 2 GMAC); each costs the GPU time of several
TPSNet-sized ones (0.73 GMAC) and none is what a 5M-parameter search is for. The default caps MACs per image at
2 GMAC for a 32x32 image, scaled by the image's area (MACs of a convolution grow with the pixels it slides over):
125 MMAC for the 8x8 digits, whose quick-start draws (200,000 parameters) stay far below it, and 98 GMAC for
224x224 images. Area, not MACs recounted at 32x32, because an architecture valid at one side (a pool size, a
stride) need not be valid at another. A study resumed with the default keeps the cap it was searched under (a
study from before this default has none): its trials stay comparable. `--max-macs N` sets one, `none` lifts it.

The GPUs per trial (`--gpus-per-trial auto`). One trial of a small network leaves an H100 mostly idle, so by
default trials share GPUs: as many per GPU as its memory holds at `GIB_PER_TRIAL` each (a capped trial at the
largest batch size of the spaces, 512, with room for its CUDA context and the data set), at most
`MAX_TRIALS_PER_GPU`, a power of two so that the fractions add up exactly: 4 on an 80 GB H100, 8 on an H200, 2 on a
40 GB A100, 1 below 32 GB. Without a MACs cap, or on a cluster joined with --address (whose GPUs this process
cannot measure), it is one GPU per trial; without GPUs, or with --device cpu, none. Each
trial's share of the GPU memory is enforced (`torch.cuda.set_per_process_memory_fraction`), and a trial that
still runs out of memory is retried at half its batch size (see `_worker`).
"""
from __future__ import annotations

from typing import Any

AUTO = "auto"
NONE = "none"  # `--max-macs none`: no MACs cap
MACS_PER_32X32 = 2_000_000_000  # the default cap for a 32x32 image; other sides scale it by their area
GIB_PER_TRIAL = 16              # GPU memory a capped trial gets at least when trials share a GPU
MAX_TRIALS_PER_GPU = 8


def default_max_macs(image_size: int) -> int:
    """The default MACs cap per image for square images of side `image_size`."""
    return max(1, round(MACS_PER_32X32 * image_size * image_size / (32 * 32)))


def settled_max_macs(value: int | str | None, image_size: int, recorded: Any = AUTO) -> int | None:
    """The cap a run applies: `value` when given (an int, or None for no cap); for "auto" the cap `recorded` on
    the study being resumed (None: searched without one), else the default for the image size."""
    if value != AUTO:
        return value  # type: ignore[return-value]
    if recorded != AUTO:
        return recorded
    return default_max_macs(image_size)


def trials_per_gpu(memory_bytes: int) -> int:
    """Trials that share one GPU of `memory_bytes`: the largest power of two whose trials each get
    `GIB_PER_TRIAL`, from 1 to `MAX_TRIALS_PER_GPU`."""
    fit = int(memory_bytes // (GIB_PER_TRIAL * 2**30))
    n = 1
    while n * 2 <= min(fit, MAX_TRIALS_PER_GPU):
        n *= 2
    return n


def auto_gpus_per_trial(*, device: str, cluster_gpus: float, capped: bool, local_memory: int | None) -> float:
    """The GPU share of a trial under `--gpus-per-trial auto`: 0 without GPUs (or on --device cpu); 1 without a
    MACs cap or when the GPUs' memory is unknown here (`local_memory` None); else 1 / `trials_per_gpu`."""
    if device == "cpu" or cluster_gpus <= 0:
        return 0.0
    if not capped or local_memory is None:
        return 1.0
    return 1.0 / trials_per_gpu(local_memory)


def local_gpu_memory() -> int | None:
    """The memory of the smallest GPU this process sees, in bytes; None without CUDA. Reads the device properties
    only: no CUDA context, so no GPU memory, is taken in the driver."""
    import torch

    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))
