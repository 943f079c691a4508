"""The digest of a model's weights that a checkpoint records and a load checks: below both the format and
quantization, which seal what they write with it."""
from __future__ import annotations

import hashlib
from typing import Mapping

import torch


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A digest of the weights that any change to a name, dtype, shape or value alters."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
