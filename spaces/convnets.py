"""convnets: the four families of the cifar10-experiments project (VGG-, ResNet-, ResNeXt- and DenseNet-BC-like).

One space, the family its first dimension and every other dimension conditional on it (named per family:
`blocks_vgg`, `chunks_densenet`). Every convolution has a bias and "same" padding; every network opens with a stem
conv5x5 in_channels -> C, BN, ReLU. Post-activation throughout: "conv, BN, ReLU" below means exactly that order.

  vgg       C = channels; b blocks, block i on c = C 2^i: conv3x3 c -> c, BN, ReLU, Dropout2d 0.2,
            conv3x3 c -> 2c, BN, ReLU, MaxPool 2; flatten, Linear -> H = C 2^b / 2, Dropout 0.2, ReLU,
            Linear H -> classes
  resnet    C = channels; v vanilla chunks of n_v blocks, then k bottleneck chunks of n_k blocks; a chunk on c is
            n - 1 blocks c -> c and one block c -> 2c with stride 2; global average pool, Linear
            vanilla     conv3x3 (the stride), BN, ReLU, conv3x3, BN; + conv1x1 (the stride), BN; ReLU
            bottleneck  conv1x1 -> out/4, BN, ReLU, conv3x3 (the stride), BN, ReLU, conv1x1 -> out, BN;
                        + conv1x1 (the stride), BN; ReLU
            Every block projects its shortcut, even c -> c at stride 1, as the project did.
  resnext   C = channels; m chunks, chunk on c: block c -> c, block c -> 2c (stride 2), + conv1x1 c -> 2c
            (stride 2, no BN) from the chunk's input, no ReLU after that sum; global average pool, Linear
            block       conv1x1 -> D, BN, ReLU, grouped conv3x3 D -> D (g groups, the stride), BN, ReLU,
                        conv1x1 -> out, BN; + conv1x1 (the stride), BN; ReLU.   D = g x d at every chunk.
  densenet  growth k; stem to 4k; m chunks of a dense block and a transition, then a final dense block,
            global average pool, Linear (no BN before the pool)
            dense layer conv1x1 c -> 4k, BN, ReLU, conv3x3 4k -> k, BN, ReLU; its k maps are concatenated to c
            dense block L layers: c -> c + L k
            transition  conv1x1 c -> floor(c/2), BN, ReLU, AvgPool 2

Presets against the published counts (10 classes, 3x32x32); every count is exact:

  vgglike            vgg C 32, 3 blocks                             1,110,826
  resnetlike         resnet C 32, 1 vanilla x 3, 2 bottleneck x 3    310,474  (3 vanilla + 6 bottleneck blocks)
  resnetlike_large   resnet C 32, 2 vanilla x 3, 3 bottleneck x 3   3,921,994 (6 vanilla + 9 bottleneck blocks)
  resnextlike        resnext C 64, 3 chunks, 64 x 4d                1,087,114
  resnextlike_large  resnext C 64, 4 chunks, 64 x 4d                3,090,058
  densenetlike       densenet k 12, 4 chunks, 8 layers               508,447
  densenetlike_large densenet k 16, 5 chunks, 8 layers              1,098,724

How they were found: a script enumerated, per family, the stem width, depths and the ambiguous details (bias or
not, a BN after each conv or not, BN on the shortcuts, which shortcuts project, the ResNeXt's inner width as fixed or
proportional to the block, DenseNet's growth, layers, stem width 2k or 4k, BN placement, floor or ceil halving) and
kept the readings whose count is exact. VGG: only C 32 with 3 blocks and a BN after every conv, stem included. The
Linear to 128 of the description is C 2^b / 2 at that preset; this space keeps the half-width rule so the
classifier scales with C and b. ResNet: the two presets agree only on the reading above (biases, BN after every
conv and on both shortcuts) with C 32 and 3 blocks a chunk, and give the project's own 3 + 6 and 6 + 9 blocks.
Other exact readings each fit one preset only, with depths that are not the project's (C 42 bias-free with a
BN dropped from the bottleneck, C 56 with one vanilla block, C 72 with 2 x 5 vanilla blocks and one bottleneck).
ResNeXt: one reading fits both: BN after every conv and on a shortcut projected in every block, the chunk-level
conv1x1 with a bias and no BN, stem BN, and D = 64 x 4 = 256 in every chunk (not doubling with the width), with
C 64 and 3 or 4 chunks. DenseNet: 8 layers a block, growth 12 and 16, 4
and 5 chunks fit both presets under two readings: the post-activation one above (stem, layers and transitions all
conv, BN, ReLU), and a pre-activation one with no stem BN, a BN only before each conv3x3 and before each transition,
and a BN before the pool. The description's stem ("conv5x5, BN, ReLU") rules the second out, and the project's own
code is the first; its literal "BN-ReLU before both convs of a layer" fits neither preset (too many BNs). Halving is
floor, as in the project; the counts cannot tell (every width halved here is even).

Every choice builds on any image from 1x1 up: 3x3 convs pad 1, stride-2 convs take a side s to ceil(s/2), and every
pool (VGG's max pool, DenseNet's average pool) runs in ceil mode, so a 1-pixel side stays 1 instead of vanishing and
an odd side rounds up like the strided convs (the last, partial window of an average pool averages only the pixels it
covers). On 8x8 digits, VGG's three blocks give 4, 2, 1, and the large ResNet's five chunks 4, 2, 1, 1, 1.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from tpsearch.spaces._base import Space
from tpsearch.spaces._registry import register
from tpsearch.spaces._tally import Tally
from tpsearch.spaces._types import (Arch, ArchError, Counts, Dimension, check_classes, check_mapping, check_shape,
                                     one_of)

FAMILIES = ("vgg", "resnet", "resnext", "densenet")
# Each family's dimensions, in the order `suggest` draws them (and architecture dicts list them).
KEYS = {
    "vgg": ("channels", "blocks"),
    "resnet": ("channels", "vanilla_chunks", "vanilla_blocks", "bottleneck_chunks", "bottleneck_blocks"),
    "resnext": ("channels", "chunks", "cardinality", "bottleneck_width"),
    "densenet": ("growth", "chunks", "layers"),
}
# What `suggest` draws: (low, high, step) or (low, high, "log"). A file may give more (LIMITS), and zero chunks of one
# of the two ResNet kinds. Ranges stay sane on 32x32: at most 5 halvings (the large presets' own depth).
SAMPLED: dict[str, dict[str, tuple[int, int, int | str]]] = {
    "vgg": {"channels": (16, 64, 8), "blocks": (1, 4, 1)},
    "resnet": {"channels": (16, 64, 8), "vanilla_chunks": (1, 2, 1), "vanilla_blocks": (1, 4, 1),
               "bottleneck_chunks": (0, 3, 1), "bottleneck_blocks": (1, 4, 1)},
    "resnext": {"channels": (16, 64, 16), "chunks": (1, 4, 1), "cardinality": (4, 64, "log"),
                "bottleneck_width": (1, 8, 1)},
    "densenet": {"growth": (8, 32, 4), "chunks": (1, 5, 1), "layers": (2, 16, 1)},
}
# What `tpsearch spaces` says of each family's dimensions (in KEYS' order): symbol and meaning.
MEANINGS: dict[str, dict[str, tuple[str, str]]] = {
    "vgg": {"channels": ("C", "VGG: stem width; block i maps C 2^i to C 2^(i+1)"),
            "blocks": ("b", ("VGG: blocks of two conv3x3 and a max pool; the classifier's hidden layer is C 2^b / 2 "
                             "wide"))},
    "resnet": {"channels": ("C", "ResNet: stem width; each chunk doubles it"),
               "vanilla_chunks": ("v", "ResNet: chunks of vanilla blocks (two conv3x3), first (a file may give 0)"),
               "vanilla_blocks": ("n_v", "ResNet: blocks per vanilla chunk"),
               "bottleneck_chunks": ("k", ("ResNet: chunks of bottleneck blocks (1x1 to out/4, 3x3, 1x1), after the "
                                           "vanilla ones")),
               "bottleneck_blocks": ("n_k", "ResNet: blocks per bottleneck chunk (drawn only where k > 0)")},
    "resnext": {"channels": ("C", "ResNeXt: stem width; each chunk doubles it"),
                "chunks": ("m", "ResNeXt: chunks of two grouped bottleneck blocks"),
                "cardinality": ("g", "ResNeXt: groups of the 3x3 conv"),
                "bottleneck_width": ("d", "ResNeXt: channels per group; the bottleneck is g x d wide in every chunk")},
    "densenet": {"growth": ("k", "DenseNet: growth rate; the stem is 4k"),
                 "chunks": ("m", "DenseNet: dense block + transition chunks, before the final dense block"),
                 "layers": ("L", "DenseNet: layers per dense block")},
}
DROPOUT = 0.2  # the project's Dropout2d in VGG blocks and Dropout in its classifier
DENSE_BOTTLENECK = 4  # DenseNet-BC: a layer's conv1x1 is 4 x growth wide
# Far beyond any budget, but they keep a hand-written file from asking for a loop of a billion blocks.
LIMITS = {"channels": 65536, "blocks": 512, "chunks": 16, "cardinality": 65536, "bottleneck_width": 65536,
          "growth": 4096, "layers": 512, "width": 1 << 20}


def _half(side: int) -> int:
    """A stride-2 conv (3x3 pad 1, or 1x1) or a ceil-mode 2x2 pool: side s -> ceil(s/2), never 0."""
    return (side + 1) // 2


class _Tally(Tally):
    """`Tally` with these networks' convolutions (each with a bias) and average pools."""

    def conv(self, c_in: int, c_out: int, kernel: int, side_out: int, groups: int = 1) -> None:
        self.params += kernel * kernel * (c_in // groups) * c_out + c_out  # every conv has a bias
        self.macs += side_out * side_out * c_out * (c_in // groups) * kernel * kernel  # thop leaves out the bias

    def avg_pool(self, c: int, side: int, side_out: int) -> None:
        # One addition per pooled input, one division per output. Ceil-mode 2x2 windows tile the map exactly, and
        # the global pool reads every pixel once too.
        self.macs += c * side * side + c * side_out * side_out


# ---- the networks ---------------------------------------------------------------------------------------------

def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups), nn.BatchNorm2d(c_out)]


def _stem(in_channels: int, c: int) -> nn.Sequential:
    return nn.Sequential(*_conv_bn(in_channels, c, 5), nn.ReLU(inplace=True))


class VGGLike(nn.Module):
    def __init__(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        c, side = a["channels"], image_size
        self.stem = _stem(in_channels, c)
        blocks = []
        for _ in range(a["blocks"]):
            blocks.append(nn.Sequential(*_conv_bn(c, c, 3), nn.ReLU(inplace=True), nn.Dropout2d(DROPOUT),
                                        *_conv_bn(c, 2 * c, 3), nn.ReLU(inplace=True),
                                        nn.MaxPool2d(2, ceil_mode=True)))
            c, side = 2 * c, _half(side)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, c // 2), nn.Dropout(DROPOUT),
                                  nn.ReLU(inplace=True), nn.Linear(c // 2, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class _Residual(nn.Module):
    """relu(branch(x) + shortcut(x)): the ResNet and ResNeXt blocks, whose shortcut always projects."""

    def __init__(self, branch: nn.Sequential, shortcut: nn.Sequential) -> None:
        super().__init__()
        self.branch, self.shortcut = branch, shortcut
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


def _vanilla(c_in: int, c_out: int, stride: int) -> _Residual:
    return _Residual(nn.Sequential(*_conv_bn(c_in, c_out, 3, stride), nn.ReLU(inplace=True),
                                   *_conv_bn(c_out, c_out, 3)),
                     nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)))


def _bottleneck(c_in: int, c_out: int, stride: int, inner: int, groups: int = 1) -> _Residual:
    return _Residual(nn.Sequential(*_conv_bn(c_in, inner, 1), nn.ReLU(inplace=True),
                                   *_conv_bn(inner, inner, 3, stride, groups), nn.ReLU(inplace=True),
                                   *_conv_bn(inner, c_out, 1)),
                     nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)))


class _Chunked(nn.Module):
    """The ResNet- and ResNeXt-like networks: the stem to C channels, chunks that each double the width (`chunks`
    makes each from its input's width), global average pool, Linear."""

    def __init__(self, c: int, chunks: list[Callable[[int], nn.Module]], num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.stem = _stem(in_channels, c)
        built = []
        for chunk in chunks:
            built.append(chunk(c))
            c *= 2
        self.chunks = nn.Sequential(*built)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.chunks(self.stem(x))), 1))


def _resnet_chunk(kind: str, n: int, c: int) -> nn.Sequential:
    blocks = [_vanilla(c, c, 1) if kind == "vanilla" else _bottleneck(c, c, 1, c // 4) for _ in range(n - 1)]
    blocks.append(_vanilla(c, 2 * c, 2) if kind == "vanilla" else _bottleneck(c, 2 * c, 2, 2 * c // 4))
    return nn.Sequential(*blocks)


class ResNetLike(_Chunked):
    def __init__(self, a: Arch, num_classes: int, in_channels: int) -> None:
        chunks = [functools.partial(_resnet_chunk, kind, n) for kind, n in _resnet_chunks(a)]
        super().__init__(a["channels"], chunks, num_classes, in_channels)


class _ResNeXtChunk(nn.Module):
    def __init__(self, c: int, inner: int, groups: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(_bottleneck(c, c, 1, inner, groups), _bottleneck(c, 2 * c, 2, inner, groups))
        self.shortcut = nn.Conv2d(c, 2 * c, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x) + self.shortcut(x)


class ResNeXtLike(_Chunked):
    def __init__(self, a: Arch, num_classes: int, in_channels: int) -> None:
        chunk = functools.partial(_ResNeXtChunk, inner=a["cardinality"] * a["bottleneck_width"],
                                  groups=a["cardinality"])
        super().__init__(a["channels"], [chunk] * a["chunks"], num_classes, in_channels)


class _DenseBlock(nn.Module):
    def __init__(self, c: int, growth: int, layers: int) -> None:
        super().__init__()
        wide = DENSE_BOTTLENECK * growth
        self.layers = nn.ModuleList(nn.Sequential(*_conv_bn(c + i * growth, wide, 1), nn.ReLU(inplace=True),
                                                  *_conv_bn(wide, growth, 3), nn.ReLU(inplace=True))
                                    for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return x


class DenseNetLike(nn.Module):
    def __init__(self, a: Arch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        k, layers = a["growth"], a["layers"]
        c = DENSE_BOTTLENECK * k
        self.stem = _stem(in_channels, c)
        chunks = []
        for _ in range(a["chunks"]):
            dense = _DenseBlock(c, k, layers)
            c += layers * k
            chunks.append(nn.Sequential(dense, *_conv_bn(c, c // 2, 1), nn.ReLU(inplace=True),
                                        nn.AvgPool2d(2, ceil_mode=True)))
            c //= 2
        self.chunks = nn.Sequential(*chunks)
        self.dense = _DenseBlock(c, k, layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c + layers * k, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.dense(self.chunks(self.stem(x)))), 1))


def _resnet_chunks(a: Arch) -> list[tuple[str, int]]:
    return ([("vanilla", a.get("vanilla_blocks", 0))] * a["vanilla_chunks"]
            + [("bottleneck", a.get("bottleneck_blocks", 0))] * a["bottleneck_chunks"])


# ---- the counts: the same walk as the networks above, layer by layer ---------------------------------------------

def _tally(a: Arch, num_classes: int, in_channels: int, image_size: int) -> _Tally:
    t, side = _Tally(), image_size
    family = a["family"]
    c = DENSE_BOTTLENECK * a["growth"] if family == "densenet" else a["channels"]
    t.conv(in_channels, c, 5, side)
    t.bn(c, side)
    if family == "vgg":
        for _ in range(a["blocks"]):
            t.conv(c, c, 3, side), t.bn(c, side), t.conv(c, 2 * c, 3, side), t.bn(2 * c, side)
            c, side = 2 * c, _half(side)  # the max pool: free in thop
        t.linear(c * side * side, c // 2)
        t.linear(c // 2, num_classes)
        return t
    if family == "densenet":
        k, layers = a["growth"], a["layers"]
        for chunk in range(a["chunks"] + 1):
            for i in range(layers):
                t.conv(c + i * k, DENSE_BOTTLENECK * k, 1, side), t.bn(DENSE_BOTTLENECK * k, side)
                t.conv(DENSE_BOTTLENECK * k, k, 3, side), t.bn(k, side)
            c += layers * k
            if chunk < a["chunks"]:
                t.conv(c, c // 2, 1, side), t.bn(c // 2, side)
                t.avg_pool(c // 2, side, _half(side))
                c, side = c // 2, _half(side)
    elif family == "resnet":
        for kind, n in _resnet_chunks(a):
            for b in range(n):
                c_out, out = (2 * c, _half(side)) if b == n - 1 else (c, side)
                if kind == "vanilla":
                    t.conv(c, c_out, 3, out), t.bn(c_out, out), t.conv(c_out, c_out, 3, out), t.bn(c_out, out)
                    t.conv(c, c_out, 1, out), t.bn(c_out, out)  # the projected shortcut
                else:
                    _tally_bottleneck(t, c, c_out, c_out // 4, 1, side, out)
                c, side = c_out, out
    else:
        inner = a["cardinality"] * a["bottleneck_width"]
        for _ in range(a["chunks"]):
            _tally_bottleneck(t, c, c, inner, a["cardinality"], side, side)
            _tally_bottleneck(t, c, 2 * c, inner, a["cardinality"], side, _half(side))
            t.conv(c, 2 * c, 1, _half(side))  # the chunk's own shortcut, from its input
            c, side = 2 * c, _half(side)
    t.avg_pool(c, side, 1)
    t.linear(c, num_classes)
    return t


def _tally_bottleneck(t: _Tally, c_in: int, c_out: int, inner: int, groups: int, side: int, out: int) -> None:
    # The first 1x1 runs before the stride, at the input's resolution.
    t.conv(c_in, inner, 1, side), t.bn(inner, side)
    t.conv(inner, inner, 3, out, groups), t.bn(inner, out)
    t.conv(inner, c_out, 1, out), t.bn(c_out, out)
    t.conv(c_in, c_out, 1, out), t.bn(c_out, out)  # the projected shortcut


# ---- the space ----------------------------------------------------------------------------------------------------

_OUT_OF_RANGE = r".*\b\w+_(vgg|resnet|resnext|densenet)\b.* (is )?out of (the )?range"
_NETWORKS = {"vgg": VGGLike, "resnet": ResNetLike, "resnext": ResNeXtLike, "densenet": DenseNetLike}


@register
class ConvNetsSpace(Space):
    name = "convnets"
    description = ("the cifar10-experiments project's four families: VGG-, ResNet- (vanilla and bottleneck chunks), "
                   "ResNeXt- (grouped bottlenecks) and DenseNet-BC-like networks, the family a dimension")
    presets = {
        # The project's published networks and test accuracies: 90.16% (VGG), 91.20 / 91.79% (ResNet),
        # 92.30 / 92.00% (ResNeXt), 92.8 / 93.09% (DenseNet).
        "vgglike": {"family": "vgg", "channels": 32, "blocks": 3},
        "resnetlike": {"family": "resnet", "channels": 32, "vanilla_chunks": 1, "vanilla_blocks": 3,
                       "bottleneck_chunks": 2, "bottleneck_blocks": 3},
        "resnetlike_large": {"family": "resnet", "channels": 32, "vanilla_chunks": 2, "vanilla_blocks": 3,
                             "bottleneck_chunks": 3, "bottleneck_blocks": 3},
        "resnextlike": {"family": "resnext", "channels": 64, "chunks": 3, "cardinality": 64, "bottleneck_width": 4},
        "resnextlike_large": {"family": "resnext", "channels": 64, "chunks": 4, "cardinality": 64,
                              "bottleneck_width": 4},
        "densenetlike": {"family": "densenet", "growth": 12, "chunks": 4, "layers": 8},
        "densenetlike_large": {"family": "densenet", "growth": 16, "chunks": 5, "layers": 8},
    }

    def dimensions(self) -> list[Dimension]:
        def values(family: str, key: str) -> str:
            low, high, step = SAMPLED[family][key]
            return f"{low}..{high}" + (" log" if step == "log" else f" in steps of {step}" if step != 1 else "")

        return [Dimension("family", "F", " | ".join(FAMILIES), "the network family; every other dimension is the "
                                                               "family's own, named <dimension>_<family>"),
                *(Dimension(f"{key}_{family}", symbol, values(family, key), meaning)
                  for family in FAMILIES for key, (symbol, meaning) in MEANINGS[family].items())]

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # Convs pad, strides and pools round up, so any image from 1x1 up and any number of input channels (the
        # stem's alone) fits every choice: no dimension needs narrowing for the shape.
        family = trial.suggest_categorical("family", list(FAMILIES))
        arch: Arch = {"family": family}
        with warnings.catch_warnings():
            # An enqueued architecture may sit off the sampled grid (channels 20, no vanilla chunk): Optuna warns
            # that the fixed value is out of the distribution's range, then uses it as given, which is the point.
            warnings.filterwarnings("ignore", message=_OUT_OF_RANGE)
            for key, (low, high, step) in SAMPLED[family].items():
                if key.endswith("_blocks") and arch[key.replace("_blocks", "_chunks")] == 0:
                    continue  # blocks of a kind with no chunk: not a dimension of this network
                # Names carry the family, so each keeps one distribution across trials (define-by-run).
                name = f"{key}_{family}"
                arch[key] = (trial.suggest_int(name, low, high, log=True) if step == "log"
                             else trial.suggest_int(name, low, high, step=step))
        return arch

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        family = a["family"]
        return {"family": family, **{f"{key}_{family}": value for key, value in a.items() if key != "family"}}

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # Within a family both counts grow with every dimension from its lowest value (fewer ResNeXt groups mean
        # more weights, but g x d channels at least g x 1), except VGG's depth: fewer blocks leave a larger map to
        # flatten. So the candidates are each family's lowest corner and VGG at every depth; the least in
        # parameters, and in MACs where those tie.
        candidates: list[Arch] = []
        for family in FAMILIES:
            corner = {"family": family, **{key: low for key, (low, _, _) in SAMPLED[family].items()}}
            if family == "resnet":
                del corner["bottleneck_blocks"]
            if family == "vgg":
                candidates += [{**corner, "blocks": b} for b in range(1, SAMPLED["vgg"]["blocks"][1] + 1)]
            else:
                candidates.append(corner)
        shape = dict(in_channels=in_channels, image_size=image_size)
        counts = [(_tally(self.validate(c, **shape), 10, in_channels, image_size), c) for c in candidates]
        return min(counts, key=lambda tc: (tc[0].params, tc[0].macs))[1]

    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        check_mapping(arch)
        check_shape(in_channels, image_size)
        family = one_of(arch, "family", FAMILIES)
        keys = KEYS[family]
        for key in arch:
            if key == "family" or key in keys:
                continue
            owners = [f for f in FAMILIES if key in KEYS[f]]
            if owners:
                raise ArchError(key, f"applies to {' and '.join(owners)} only, but family is {family!r}")
            raise ArchError(key, f"is not a dimension of convnets' {family} family "
                                 f"(dimensions: family, {', '.join(keys)})")
        a: Arch = {"family": family}
        for key in keys:
            if family == "resnet" and key.endswith("_blocks"):
                chunks = key.replace("_blocks", "_chunks")
                if a[chunks] == 0:
                    if key in arch:
                        raise ArchError(key, f"applies only where {chunks} > 0, but {chunks} is 0")
                    continue
            if key not in arch:
                raise ArchError(key, f"is required for the {family} family")
            a[key] = _int(arch, key)
            low = 0 if key.endswith("_chunks") or (family, key) == ("densenet", "chunks") else 1
            high = LIMITS[key.rpartition("_")[2] if key.endswith(("_chunks", "_blocks")) else key]
            if not low <= a[key] <= high:
                raise ArchError(key, f"must be {low}..{high}, but got {a[key]}")
        if family == "resnet":
            halvings = a["vanilla_chunks"] + a["bottleneck_chunks"]
            if not 1 <= halvings <= LIMITS["chunks"]:
                raise ArchError("bottleneck_chunks", f"vanilla_chunks + bottleneck_chunks must be "
                                                     f"1..{LIMITS['chunks']}, but got {halvings}")
            narrowest = a["channels"] * 2 ** a["vanilla_chunks"]
            if a["bottleneck_chunks"] and narrowest < 4:
                raise ArchError("channels", f"the first bottleneck chunk would squeeze {narrowest} channels to "
                                            f"{narrowest}/4 = 0: channels x 2^vanilla_chunks must be at least 4")
        else:
            halvings = a["blocks"] if family == "vgg" else a["chunks"]
        if family != "densenet" and a["channels"] * 2 ** halvings > LIMITS["width"]:
            raise ArchError("channels", f"the last chunk would be {a['channels'] * 2 ** halvings} wide; "
                                        f"at most {LIMITS['width']}")
        return a

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        """The walk `_tally` takes, by thop's rules (`Space.tally`): the average pools are DenseNet's transitions
        and the global pools; max pools, dropout, the residual additions and concatenation are free."""
        return _tally(a, num_classes, in_channels, image_size).counts()

    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        check_classes(num_classes)
        if a["family"] == "vgg":  # the one family whose classifier depends on the image's size
            return VGGLike(a, num_classes, in_channels, image_size)
        return _NETWORKS[a["family"]](a, num_classes, in_channels)


def _int(arch: Mapping[str, Any], key: str) -> int:
    value = arch[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchError(key, f"must be an integer, but got {value!r}")
    return value
