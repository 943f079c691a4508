"""Layers the residual spaces share, with their exact parameter and MACs counts beside them (thop's rules).

One definition each, so that `resnet_5m` and `xresnet` build and count squeeze-excite, factorized convolutions and
stochastic depth alike; the options that switch them on are `spaces._options`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": lambda: nn.ReLU(inplace=True), "mish": nn.Mish}
SE_RATIO = 16


def out_side(side: int, stride: int) -> int:
    """A "same"-padded odd kernel's output side: ceil(side / stride)."""
    return (side - 1) // stride + 1


# -- convolutions, square or factorized ----------------------------------------------------------------------------
def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, factorized: bool = False) -> nn.Module:
    """A kxk convolution without bias and with "same" padding, or with `factorized` (and k > 1) a 1xk then a kx1.

    The pair has nothing between its two convolutions (no BN, no activation: it stands for one linear map of rank
    at most k per channel pair), its middle width is `c_out`, and both take `groups`. A stride is split by axis:
    the 1xk strides across the width, the kx1 down the height. Striding both axes on the 1xk would skip every other
    input row outright, since the kx1 after it only sees the rows the 1xk kept; split, every pixel is read and the
    output is the kxk's ceil(side / stride).
    """
    if not factorized or kernel == 1:
        return nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, (1, kernel), (1, stride), (0, kernel // 2), groups=groups, bias=False),
        nn.Conv2d(c_out, c_out, (kernel, 1), (stride, 1), (kernel // 2, 0), groups=groups, bias=False))


def conv_params(c_in: int, c_out: int, kernel: int, groups: int = 1, factorized: bool = False) -> int:
    if not factorized or kernel == 1:
        return kernel * kernel * (c_in // groups) * c_out
    return kernel * (c_in // groups) * c_out + kernel * (c_out // groups) * c_out


def conv_macs(c_in: int, c_out: int, kernel: int, side: int, stride: int = 1, groups: int = 1,
              factorized: bool = False) -> int:
    """thop's count for `conv(...)` on a side x side map: one MAC per weight per output pixel."""
    s = out_side(side, stride)
    if not factorized or kernel == 1:
        return s * s * c_out * (c_in // groups) * kernel * kernel
    # The 1xk has strided only the width: its output is side rows of s pixels.
    return side * s * c_out * (c_in // groups) * kernel + s * s * c_out * (c_out // groups) * kernel


# -- squeeze-excite -------------------------------------------------------------------------------------------------
def se_hidden(c: int) -> int:
    # c // 16 would be no unit at all below 16 channels, a gate stuck at sigmoid(0) = 0.5: keep at least one.
    return max(1, c // SE_RATIO)


class SqueezeExcite(nn.Module):
    """Global average pool, Linear C -> C/16 (no bias), ReLU, Linear back (no bias), sigmoid, scale the input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        hidden = se_hidden(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gate = nn.Sequential(nn.Linear(c, hidden, bias=False), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, c, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(torch.flatten(self.pool(x), 1))[:, :, None, None]


def se_params(c: int) -> int:
    return 2 * c * se_hidden(c)


def se_macs(c: int, pixels: int) -> int:
    # thop: the global pool is an addition per input and a division per output, each Linear in x out; the ReLU,
    # the sigmoid and the scaling are free.
    return c * pixels + c + 2 * c * se_hidden(c)


# -- stochastic depth -----------------------------------------------------------------------------------------------
class DropPath(nn.Module):
    """Stochastic depth on a residual branch: in training, each sample's branch is zeroed with probability `p` and
    kept ones are scaled by 1 / (1 - p), so the expected output is unchanged and evaluation is the identity with no
    rescale (timm's DropPath). Huang et al. 2016 instead scale by the survival at test time; the two agree in
    expectation, and this way a checkpoint runs as a plain network."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), but got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


def drop_probs(drop_path: float, blocks: int) -> list[float]:
    """Huang et al. 2016's linear decay: block l of L (l = 1..L, counted through the whole network) drops its branch
    with p_l = drop_path * l / L. The line runs from 0 at the input (l = 0) to `drop_path` at the last block, so the
    first block drops drop_path / L: early blocks, whose features every later one builds on, are kept most."""
    return [drop_path * l / blocks for l in range(1, blocks + 1)]
