"""inception: Inception-V3 networks for small images, with the paper's factorized convolutions as a dimension.

The modules of "Rethinking the Inception Architecture for Computer Vision" (Szegedy et al., 2015), with the branch
layout and widths of torchvision's Inception3. Every conv is conv (no bias, "same" padding) -> BN -> ReLU, as
torchvision's BasicConv2d (BatchNorm with PyTorch's defaults); branches are concatenated along the channels:

  stem  3x3, 3x3, 3x3, 1x1, 3x3 (widths 16, 16, 24, 32, 80), all stride 1: torchvision's stem without its two
        stride-2 convs and two max pools, which take 299 down to 35; a 32x32 image enters block A at 32x32
  A     the 35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avgpool 3x3 -> 1x1
        factorized: the 5x5 becomes two 3x3 (the paper's figure 5; the second keeps the first one's width)
  B     grid reduction: 3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 | maxpool 3x3 stride 2
  C     the 17x17 module: 1x1 | 1x1 -> 1xn -> nx1 | 1x1 -> 1xn -> nx1 -> 1xn -> nx1 | avgpool 3x3 -> 1x1
        unfactorized: 1x1 -> nxn | 1x1 -> nxn -> nxn (each 1xn, nx1 pair of the paper's figure 6 is one nxn)
  D     grid reduction: 1x1 -> 3x3 stride 2 | 1x1 -> 1xn -> nx1 -> 3x3 stride 2 | maxpool 3x3 stride 2
        unfactorized: 1x1 -> nxn -> 3x3 stride 2
  E     the 8x8 expanded filter bank (figure 7): 1x1 | 1x1 -> (1x3 ; 3x1) | 1x1 -> 3x3 -> (1x3 ; 3x1) |
        avgpool 3x3 -> 1x1, where (1x3 ; 3x1) are two parallel convs whose outputs are concatenated. The same
        factorized or not: its split is the module's point (wider outputs), not a stand-in for a 3x3
  head  global average pool, dropout, Linear (with bias) to the classes

A network is the paper's sequence A^a B C^c D E^e, written as a string ("AABCD"). n (the paper's 7) is the kernel of
C's and D's nxn, factorized or not. torchvision runs its double branch of C as 7x1, 1x7, 7x1, 1x7; here every pair
is 1xn then nx1 (the issue's words), which changes no count.

Any image from 1x1 up and any number of input channels builds every choice: stride-1 convs and the average pools
pad to keep the side, and every stride-2 conv and max pool (3x3, padding 1) takes a side s to ceil(s/2), so a side
of 1 stays 1 (torchvision's reductions pad nothing and need a side of at least 3). The average pools average the
real pixels only (count_include_pad=False), so a border pixel is not diluted by padding (torchvision counts it).

Widths: each is torchvision's Inception3 width (the first module of each kind: Mixed_5b, 6a, 6b, 7a, 7b) times
SCALE = 0.4125, rounded to the nearest multiple of 8 (the channel alignment of the tensor cores' fast path, as in
resnet_5m); the width multiplier w scales them again, rounding to the nearest channel (at least one). SCALE is a
fit, not a derivation: the issue asks for "about 0.82M parameters" for the seed's blocks A, A, B, C, D without the
auxiliary head, and we do not have the seed's code. Every scale from 0.4125 up to (not including) 5/12 gives
822,362 parameters (+0.29%), the nearest to 0.82M of any scale from 0.35 to 0.5 (0.4063 to 0.4125 give 816,506,
5/12 gives 827,322). The auxiliary classifier is left out: it trains only, and the seed's figure is without it.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn

from tpsearch.spaces._base import Space
from tpsearch.spaces._registry import register
from tpsearch.spaces._tally import BN_OPS
from tpsearch.spaces._types import Arch, ArchError, Counts, Dimension, check_classes, check_mapping, check_shape

# torchvision's Inception3 widths (ImageNet, the first module of each kind); names say which branch and step.
TORCHVISION = {
    "stem": (32, 32, 64, 80, 192),
    "A": {"1x1": 64, "5x5_reduce": 48, "5x5": 64, "dbl_reduce": 64, "dbl": 96, "pool": 32},
    "B": {"3x3": 384, "dbl_reduce": 64, "dbl": 96},
    "C": {"1x1": 192, "nxn_reduce": 128, "nxn": 192, "pool": 192},
    "D": {"3x3_reduce": 192, "3x3": 320, "nxn": 192},
    "E": {"1x1": 320, "3x3_reduce": 384, "3x3": 384, "dbl_reduce": 448, "dbl": 384, "pool": 192},
}
SCALE = 0.4125  # fitted so that AABCD lands nearest 0.82M (module docstring)
ALIGN = 8
STEM_KERNELS = (3, 3, 3, 1, 3)


def _fit(width: int) -> int:
    return max(ALIGN, int(width * SCALE / ALIGN + 0.5) * ALIGN)


# The widths at w = 1: stem 16, 16, 24, 32, 80; A outputs 104 channels, C 320, E 696.
STEM = tuple(_fit(c) for c in TORCHVISION["stem"])
WIDTHS = {kind: {k: _fit(c) for k, c in table.items()} for kind, table in TORCHVISION.items() if kind != "stem"}

KINDS = "ABCDE"
GRAMMAR = re.compile(r"A*BC*DE*")
MAX_BLOCKS = {"A": 3, "C": 4, "E": 2}  # what `suggest` draws: the paper's 3, 4 and 2 (A from 1, C and E from 0)
MULTIPLIERS = (0.25, 2.0, 0.25)  # width multiplier sampled from..to in steps
KERNELS = (3, 7, 2)  # n sampled from..to in steps: 3, 5, 7
DROPOUTS = (0.0, 0.5, 0.1)
_KEYS = ("blocks", "width", "factorized", "n", "dropout")
# Far beyond any budget, but they keep a hand-written file from asking for a loop of a billion blocks.
LIMITS = {"blocks": 512, "width": 64.0, "n": 63}


@dataclass(frozen=True)
class Conv:
    """conv (no bias) -> BN -> ReLU; padding keeps the side at stride 1, and takes s to ceil(s/2) at stride 2."""

    c_out: int
    kh: int
    kw: int
    stride: int = 1


@dataclass(frozen=True)
class Pool:
    """3x3 pool with padding 1: average at stride 1 (real pixels only), max at stride 2."""

    kind: str
    stride: int


@dataclass(frozen=True)
class Branch:
    """Ops in sequence, then optionally `split`: parallel convs on the last output, concatenated (block E)."""

    ops: tuple[Conv | Pool, ...]
    split: tuple[Conv, ...] = ()


def _width(base: int, w: float) -> int:
    return max(1, int(base * w + 0.5))


def _branches(kind: str, w: float, factorized: bool, n: int) -> list[Branch]:
    """The branches of one block: the one description that `build` and `tally` both read."""
    c = {k: _width(v, w) for k, v in WIDTHS[kind].items()}
    if kind == "A":
        if factorized:
            five = (Conv(c["5x5_reduce"], 1, 1), Conv(c["5x5"], 3, 3), Conv(c["5x5"], 3, 3))
        else:
            five = (Conv(c["5x5_reduce"], 1, 1), Conv(c["5x5"], 5, 5))
        return [Branch((Conv(c["1x1"], 1, 1),)), Branch(five),
                Branch((Conv(c["dbl_reduce"], 1, 1), Conv(c["dbl"], 3, 3), Conv(c["dbl"], 3, 3))),
                Branch((Pool("avg", 1), Conv(c["pool"], 1, 1)))]
    if kind == "B":
        return [Branch((Conv(c["3x3"], 3, 3, 2),)),
                Branch((Conv(c["dbl_reduce"], 1, 1), Conv(c["dbl"], 3, 3), Conv(c["dbl"], 3, 3, 2))),
                Branch((Pool("max", 2),))]
    if kind == "C":
        r, out = c["nxn_reduce"], c["nxn"]
        if factorized:
            single = (Conv(r, 1, n), Conv(out, n, 1))
            double = (Conv(r, 1, n), Conv(r, n, 1), Conv(r, 1, n), Conv(out, n, 1))
        else:
            single, double = (Conv(out, n, n),), (Conv(r, n, n), Conv(out, n, n))
        return [Branch((Conv(c["1x1"], 1, 1),)), Branch((Conv(r, 1, 1),) + single),
                Branch((Conv(r, 1, 1),) + double), Branch((Pool("avg", 1), Conv(c["pool"], 1, 1)))]
    if kind == "D":
        r = c["nxn"]
        nxn = (Conv(r, 1, n), Conv(r, n, 1)) if factorized else (Conv(r, n, n),)
        return [Branch((Conv(c["3x3_reduce"], 1, 1), Conv(c["3x3"], 3, 3, 2))),
                Branch((Conv(r, 1, 1),) + nxn + (Conv(r, 3, 3, 2),)),
                Branch((Pool("max", 2),))]
    three, dbl = c["3x3"], c["dbl"]
    return [Branch((Conv(c["1x1"], 1, 1),)),
            Branch((Conv(c["3x3_reduce"], 1, 1),), (Conv(three, 1, 3), Conv(three, 3, 1))),
            Branch((Conv(c["dbl_reduce"], 1, 1), Conv(dbl, 3, 3)), (Conv(dbl, 1, 3), Conv(dbl, 3, 1))),
            Branch((Pool("avg", 1), Conv(c["pool"], 1, 1)))]


def _out_channels(branches: list[Branch], c_in: int) -> int:
    total = 0
    for branch in branches:
        c = c_in  # a pool keeps its input's channels
        for op in branch.ops:
            if isinstance(op, Conv):
                c = op.c_out
        total += sum(s.c_out for s in branch.split) if branch.split else c
    return total


def _down(side: int, stride: int) -> int:
    return (side - 1) // stride + 1  # 3x3, padding 1: ceil(s/2) at stride 2, s at stride 1


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, conv: Conv) -> None:
        super().__init__(nn.Conv2d(c_in, conv.c_out, (conv.kh, conv.kw), conv.stride, (conv.kh // 2, conv.kw // 2),
                                   bias=False),
                         nn.BatchNorm2d(conv.c_out), nn.ReLU(inplace=True))


class InceptionBranch(nn.Module):
    def __init__(self, c_in: int, branch: Branch) -> None:
        super().__init__()
        ops, c = [], c_in
        for op in branch.ops:
            if isinstance(op, Conv):
                ops.append(ConvBNReLU(c, op))
                c = op.c_out
            elif op.kind == "avg":
                ops.append(nn.AvgPool2d(3, op.stride, 1, count_include_pad=False))
            else:
                ops.append(nn.MaxPool2d(3, op.stride, 1))
        self.ops = nn.Sequential(*ops)
        self.split = nn.ModuleList(ConvBNReLU(c, s) for s in branch.split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ops(x)
        return torch.cat([s(x) for s in self.split], 1) if len(self.split) else x


class InceptionBlock(nn.Module):
    def __init__(self, kind: str, c_in: int, branches: list[Branch]) -> None:
        super().__init__()
        self.kind = kind
        self.branches = nn.ModuleList(InceptionBranch(c_in, b) for b in branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class InceptionV3(nn.Module):
    def __init__(self, a: Arch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        stem, c = [], in_channels
        for width, k in zip(STEM, STEM_KERNELS):
            stem.append(ConvBNReLU(c, Conv(_width(width, a["width"]), k, k)))
            c = _width(width, a["width"])
        self.stem = nn.Sequential(*stem)
        blocks = []
        for kind in a["blocks"]:
            branches = _branches(kind, a["width"], a["factorized"], a["n"])
            blocks.append(InceptionBlock(kind, c, branches))
            c = _out_channels(branches, c)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(a["dropout"])
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(self.blocks(self.stem(x))), 1)
        return self.fc(self.dropout(x))


@register
class InceptionSpace(Space):
    name = "inception"
    description = ("Inception-V3 modules for small images: blocks A^a B C^c D E^e, width, factorized convolutions "
                   "(two 3x3 for a 5x5, 1xn then nx1 for nxn), n, dropout")
    presets = {
        # The seed's blocks A, A, B, C, D at the fitted widths: 822,362 parameters (the "about 0.82M").
        "inception_v3_cifar": {"blocks": "AABCD", "width": 1.0, "factorized": True, "n": 7, "dropout": 0.2},
    }

    def dimensions(self) -> list[Dimension]:
        return [
            Dimension("blocks", "a,c,e", f"a 1..{MAX_BLOCKS['A']}, c 0..{MAX_BLOCKS['C']}, "
                                                   f"e 0..{MAX_BLOCKS['E']}",
                      "the blocks in order, as a string (\"AABCD\"): 35x35-style modules A, grid reduction B, "
                      "17x17-style C, grid reduction D, 8x8 expanded filter banks E"),
            Dimension("width", "w", f"{MULTIPLIERS[0]}..{MULTIPLIERS[1]} in steps of {MULTIPLIERS[2]}",
                      "width multiplier of every conv (stem 16..80, A out 104, C out 320, E out 696 at w = 1)"),
            Dimension("factorized", "F", "on | off", "two 3x3 for A's 5x5, 1xn then nx1 for C's and D's nxn"),
            Dimension("n", "n", f"{KERNELS[0]}..{KERNELS[1]} odd", "kernel of C's and D's nxn (the paper's 7)"),
            Dimension("dropout", "p", f"{DROPOUTS[0]}..{DROPOUTS[1]} in steps of {DROPOUTS[2]}",
                      "dropout before the classifier"),
        ]

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # Every conv and pool keeps a side of 1 at 1, so any input shape fits every choice: nothing narrows.
        with warnings.catch_warnings():
            # An enqueued architecture may sit off the sampled grid (4 A blocks, width 0.6, n 9, dropout 0.25):
            # Optuna warns that the fixed value is out of the distribution's range, then uses it as given.
            warnings.filterwarnings("ignore", message=r".*\b(blocks_[ace]|width|n|dropout)\b.* "
                                                      r"(is )?out of (the )?range")
            a = trial.suggest_int("blocks_a", 1, MAX_BLOCKS["A"])
            c = trial.suggest_int("blocks_c", 0, MAX_BLOCKS["C"])
            e = trial.suggest_int("blocks_e", 0, MAX_BLOCKS["E"])
            width = trial.suggest_float("width", MULTIPLIERS[0], MULTIPLIERS[1], step=MULTIPLIERS[2])
            factorized = trial.suggest_categorical("factorized", [True, False])
            n = trial.suggest_int("n", KERNELS[0], KERNELS[1], step=KERNELS[2])
            # Rounded: a stepped float comes back as 0.30000000000000004, which a file would never say.
            dropout = round(trial.suggest_float("dropout", DROPOUTS[0], DROPOUTS[1], step=DROPOUTS[2]), 6)
        return {"blocks": "A" * a + "B" + "C" * c + "D" + "E" * e, "width": float(width), "factorized": factorized,
                "n": n, "dropout": dropout}

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        blocks = a["blocks"]
        return {"blocks_a": blocks.count("A"), "blocks_c": blocks.count("C"), "blocks_e": blocks.count("E"),
                "width": a["width"], "factorized": a["factorized"], "n": a["n"], "dropout": a["dropout"]}

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # One A, no C or E, the least width and n. Factorized is the smaller in parameters and MACs at every sampled
        # width: a 1xn, nx1 pair costs 2/n of an nxn, and two 3x3 cost less than a 5x5 while the 5x5 is under 16/9
        # times as wide as its reduce (24 to 16 at w = 1, so 1.5 at every multiple of 0.25).
        return {"blocks": "ABD", "width": MULTIPLIERS[0], "factorized": True, "n": KERNELS[0], "dropout": 0.0}

    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        check_mapping(arch)
        unknown = sorted(set(arch) - set(_KEYS))
        if unknown:
            raise ArchError(unknown[0], f"is not a dimension of inception (dimensions: {', '.join(_KEYS)})")
        check_shape(in_channels, image_size)
        if "blocks" not in arch:
            raise ArchError("blocks", "is required")
        blocks = arch["blocks"]
        if not isinstance(blocks, str) or not GRAMMAR.fullmatch(blocks):
            raise ArchError("blocks", f"must be a string of A's, one B, C's, one D and E's in that order (the "
                                      f"paper's A^a B C^c D E^e, e.g. 'AABCD'), but got {blocks!r}")
        if len(blocks) > LIMITS["blocks"]:
            raise ArchError("blocks", f"must be at most {LIMITS['blocks']} blocks, but got {len(blocks)}")
        width = arch.get("width", 1.0)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= LIMITS["width"]:
            raise ArchError("width", f"must be a multiplier in (0, {LIMITS['width']:g}], but got {width!r}")
        factorized = arch.get("factorized", True)
        if not isinstance(factorized, bool):
            raise ArchError("factorized", f"must be true or false, but got {factorized!r}")
        n = arch.get("n", 7)
        if isinstance(n, bool) or not isinstance(n, int) or n % 2 == 0 or not 3 <= n <= LIMITS["n"]:
            raise ArchError("n", f"must be an odd kernel size 3..{LIMITS['n']} (odd, so that padding n//2 keeps "
                                 f"the side), but got {n!r}")
        dropout = arch.get("dropout", 0.2)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ArchError("dropout", f"must be a probability in [0, 1), but got {dropout!r}")
        return {"blocks": blocks, "width": float(width), "factorized": factorized, "n": n, "dropout": float(dropout)}

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        """One walk of the network, branch by branch, by thop's rules (`Space.tally`), each conv with its BN: a
        conv's weights (no bias) and BN's weight and bias; per output pixel, a MAC per weight and 4 per channel.
        The 3x3 stride-1 average pools average real pixels only, so a side s pools 3s - 2 pixels along each axis
        (edges 2, not 3); max pools are free."""
        convs: list[tuple[int, Conv, int]] = []  # every conv, BN, ReLU: its input's channels, itself, its output side
        pooled, c, side = 0, in_channels, image_size
        for width, k in zip(STEM, STEM_KERNELS):
            convs.append((c, Conv(_width(width, a["width"]), k, k), side))
            c = convs[-1][1].c_out
        for kind in a["blocks"]:
            branches = _branches(kind, a["width"], a["factorized"], a["n"])
            for branch in branches:
                b, s = c, side
                for op in branch.ops:
                    if isinstance(op, Conv):
                        s = _down(s, op.stride)
                        convs.append((b, op, s))
                        b = op.c_out
                    elif op.kind == "avg":  # stride 1
                        pooled += b * (3 * s - 2) ** 2 + b * s * s
                    else:
                        s = _down(s, op.stride)
                convs += [(b, split, s) for split in branch.split]
            c = _out_channels(branches, c)
            if kind in "BD":
                side = _down(side, 2)
        params = sum(b * op.c_out * op.kh * op.kw + 2 * op.c_out for b, op, _ in convs)
        macs = pooled + sum(s * s * op.c_out * (b * op.kh * op.kw + BN_OPS) for b, op, s in convs)
        # The head: global average pool, Linear.
        return Counts(params + c * num_classes + num_classes, macs + c * side * side + c + c * num_classes)

    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        check_classes(num_classes)
        return InceptionV3(a, num_classes, in_channels)
