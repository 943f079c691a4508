"""Checkpoints shared by the tests of the commands that read them (explain, delegate)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

# Two epochs each on digits with no warm-up: about 60% and 93% test accuracy, a second or two of training each.
SMALL = {"layers": 1, "blocks": [1], "channels": 8, "pool": 8}
LARGE = {"layers": 2, "blocks": [1, 1], "channels": 16}


@dataclass(frozen=True)
class DigitsPair:
    small: Path
    large: Path


@pytest.fixture(scope="session")
def digits_pair(tmp_path_factory) -> DigitsPair:
    """A small and a large `resnet_5m` trained on digits and saved in `tpsearch export`'s format."""
    import torch

    from tpsearch.testing.search import train_checkpoint

    folder = tmp_path_factory.mktemp("checkpoints")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a search's trial has: on a shared CPU, more threads were measured many times slower
    try:
        return DigitsPair(train_checkpoint(folder / "small.pt", SMALL), train_checkpoint(folder / "large.pt", LARGE))
    finally:
        torch.set_num_threads(threads)
