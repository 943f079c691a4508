"""backbones: torchvision's classifiers (ResNet-18/34, DenseNet-121, SqueezeNet 1.1, MobileNet-V3 small and large)
with a fresh head for the data's classes and a first convolution for its channels.

Every network is torchvision's own, built with `weights=None`: nothing is downloaded, ever, and training starts from
torchvision's random initialisation. Two things are swapped after it is built, each counted exactly:

  the first conv  torchvision's stems read 3 channels; it is rebuilt for the data's (same kernel, stride and padding,
                  with the stem "imagenet"), and re-initialised as torchvision initialises that layer
  the head        torchvision's own, made for `num_classes` (ResNet's fc, DenseNet's classifier, SqueezeNet's final
                  1x1 conv, MobileNet-V3's last Linear)

The stem. torchvision's networks shrink a 224x224 image 4x before their first block (ResNet and DenseNet: conv 7x7
stride 2 and max pool 3x3 stride 2; SqueezeNet 1.1: conv 3x3 stride 2 without padding and a max pool; MobileNet-V3:
conv 3x3 stride 2), which leaves a 32x32 CIFAR image 8x8 at the first block and an 8x8 digit 2x2. The stem "cifar"
is the usual small-image change: the first conv becomes 3x3, stride 1, padding 1 (bias as torchvision's: SqueezeNet
has one, the others none) and the stem's max pool is removed (nn.Identity, so the layer names and the state dict
keep torchvision's). Where the image is too small for a network's pools (DenseNet's three 2x2 average pools,
SqueezeNet's three 3x3 max pools without padding), `validate` refuses it naming the smallest image that works, and
`suggest` draws only what fits: the stem "imagenet" of those two from their smallest image up, and DenseNet and
SqueezeNet at all only from theirs with the stem "cifar" (8 and 4 pixels: digits fit).

The dimensions beyond the model and its stem are the knobs torchvision itself exposes that matter when a network
is trained from scratch on a small data set. There are no pretrained weights, so the usual fine-tuning knobs
(freezing the backbone, a smaller learning rate for it than for the head) would have nothing to preserve; the
optimizer, learning rate, weight decay, batch size and label smoothing are the shared training dimensions of
`spaces._training`:
  zero_init  ResNet: each block's last BN scale starts at zero, so every block starts as the identity
             (torchvision's `zero_init_residual`, Goyal et al. 2017)
  drop_rate  DenseNet: dropout after every dense layer (torchvision's `drop_rate`; the DenseNet paper used 0.2 on
             CIFAR without augmentation)
  dropout    SqueezeNet (before its final conv, torchvision 0.5) and MobileNet-V3 (in the classifier, 0.2)
  width      MobileNet-V3's width multiplier (torchvision's `width_mult`): every width times w, rounded to a
             multiple of 8 as torchvision rounds it (at least 8, never more than 10% below)

One departure from torchvision: MobileNet-V3's batch norms update their running statistics with momentum 0.1,
PyTorch's default and that of the other networks here, instead of torchvision's 0.01 (eps stays 0.001). 0.01 suits
ImageNet's hundreds of thousands of steps; after a search trial's few hundred the running statistics have barely
left their initial values, and evaluation, which uses them, scores chance: MobileNet-V3 small (w 0.25, stem cifar)
trained 8 epochs on digits with AdamW scored 10.5% validation accuracy with 0.01 and 45.5% with 0.1, on the same
training trajectory (the training loss fell from 2.29 to 1.62 in both). The momentum changes no count.

Counts. `count_params` and `count_macs` read one walk of each network's description (`_tally`), never building
it; its MACs follow thop's rules (`Space.tally`), so they equal `measure_macs`: Hardswish, Hardsigmoid and SE's
scaling are free, as ReLU is. DenseNet's forward applies its final ReLU and global pool as functions, which thop
does not see, so they count nothing here either.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Mapping

import torch.nn as nn

from tpsearch.spaces._base import Space
from tpsearch.spaces._registry import register
from tpsearch.spaces._tally import Tally
from tpsearch.spaces._types import (Arch, ArchError, Counts, Dimension, check_classes, check_mapping, check_shape,
                                     one_of)

MODELS = ("resnet18", "resnet34", "densenet121", "squeezenet1_1", "mobilenet_v3_small", "mobilenet_v3_large")
STEMS = ("imagenet", "cifar")

# Each model's own keys beyond `model` and `stem`, with torchvision's default (what a file may leave out).
KNOBS: dict[str, dict[str, Any]] = {
    "resnet18": {"zero_init": False},
    "resnet34": {"zero_init": False},
    "densenet121": {"drop_rate": 0.0},
    "squeezenet1_1": {"dropout": 0.5},
    "mobilenet_v3_small": {"width": 1.0, "dropout": 0.2},
    "mobilenet_v3_large": {"width": 1.0, "dropout": 0.2},
}
# What `suggest` draws for the float knobs: from, to, step.
SAMPLED = {"drop_rate": (0.0, 0.3, 0.1), "dropout": (0.0, 0.5, 0.1), "width": (0.25, 1.25, 0.25)}
MAX_WIDTH = 16.0  # far beyond any budget, but it keeps a hand-written file from asking for a billion channels

# ResNet: BasicBlocks per stage (the stages are 64, 128, 256, 512 wide; stages 2-4 open at stride 2).
RESNET_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
RESNET_WIDTHS = (64, 128, 256, 512)
# DenseNet-121: growth rate k, dense layers per block, the stem's width, the bottleneck's width in units of k.
DENSE_GROWTH, DENSE_BLOCKS, DENSE_STEM, DENSE_BN_SIZE = 32, (6, 12, 24, 16), 64, 4
# SqueezeNet 1.1 after its 64-wide stem: Fire modules (squeeze, expand 1x1, expand 3x3), "M" a 3x3 stride-2 max pool.
SQUEEZE_STEM = 64
SQUEEZE_LAYERS: tuple[tuple[int, int, int] | str, ...] = (
    (16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
    (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))
# MobileNet-V3 (Howard et al. 2019, tables 1 and 2) at width 1: input, kernel, expanded, output, squeeze-excite,
# stride; the activation (ReLU or Hardswish) counts nothing. Then a 1x1 conv to 6x the last output, global pool,
# Linear to LAST_CHANNEL, Hardswish, dropout, Linear to the classes.
MOBILENET_BLOCKS = {
    "mobilenet_v3_small": (
        (16, 3, 16, 16, True, 2), (16, 3, 72, 24, False, 2), (24, 3, 88, 24, False, 1), (24, 5, 96, 40, True, 2),
        (40, 5, 240, 40, True, 1), (40, 5, 240, 40, True, 1), (40, 5, 120, 48, True, 1), (48, 5, 144, 48, True, 1),
        (48, 5, 288, 96, True, 2), (96, 5, 576, 96, True, 1), (96, 5, 576, 96, True, 1)),
    "mobilenet_v3_large": (
        (16, 3, 16, 16, False, 1), (16, 3, 64, 24, False, 2), (24, 3, 72, 24, False, 1), (24, 5, 72, 40, True, 2),
        (40, 5, 120, 40, True, 1), (40, 5, 120, 40, True, 1), (40, 3, 240, 80, False, 2), (80, 3, 200, 80, False, 1),
        (80, 3, 184, 80, False, 1), (80, 3, 184, 80, False, 1), (80, 3, 480, 112, True, 1),
        (112, 3, 672, 112, True, 1), (112, 5, 672, 160, True, 2), (160, 5, 960, 160, True, 1),
        (160, 5, 960, 160, True, 1)),
}
LAST_CHANNEL = {"mobilenet_v3_small": 1024, "mobilenet_v3_large": 1280}
MOBILENET_STEM = 16
BN_MOMENTUM = 0.1  # MobileNet-V3's batch norms: PyTorch's default, as in the other networks (not torchvision's 0.01)


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding (`_make_divisible`): nearest multiple of `divisor`, at least `divisor`, and
    never more than 10% below `v`."""
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


class _Vanishes(Exception):
    """A layer's output would have no pixel left (torch refuses it at the forward pass)."""


class _Tally(Tally):
    """`Tally` with the side of each layer's output maps, and `_Vanishes` where none is left."""

    def conv(self, c_in: int, c_out: int, kernel: int, side: int, stride: int = 1, padding: int = 0,
             groups: int = 1, bias: bool = False) -> int:
        out = (side + 2 * padding - kernel) // stride + 1
        if out < 1:
            raise _Vanishes
        self.params += kernel * kernel * (c_in // groups) * c_out + (c_out if bias else 0)
        self.macs += out * out * c_out * (c_in // groups) * kernel * kernel
        return out

    def global_pool(self, c: int, side: int) -> None:
        self.macs += c * side * side + c

    @staticmethod
    def max_pool(side: int, kernel: int, stride: int, padding: int = 0, ceil: bool = False) -> int:
        # torch's rule: with ceil_mode the last window may overhang the end, but must start inside the input.
        out = (side + 2 * padding - kernel + (stride - 1 if ceil else 0)) // stride + 1
        if ceil and (out - 1) * stride >= side + padding:
            out -= 1
        if out < 1:
            raise _Vanishes
        return out

    def avg_pool2(self, c: int, side: int) -> int:
        # DenseNet's transition, 2x2 stride 2 flooring: its windows read 2 out of every axis's pixels.
        out = side // 2
        if out < 1:
            raise _Vanishes
        self.macs += c * (2 * out) ** 2 + c * out * out
        return out


def _tally(a: Arch, num_classes: int, in_channels: int, image_size: int) -> _Tally:
    t, side, model = _Tally(), image_size, a["model"]
    imagenet = a["stem"] == "imagenet"
    if model in RESNET_BLOCKS:
        c = RESNET_WIDTHS[0]
        side = t.conv(in_channels, c, 7, side, 2, 3) if imagenet else t.conv(in_channels, c, 3, side, 1, 1)
        t.bn(c, side)
        if imagenet:
            side = t.max_pool(side, 3, 2, 1)
        for stage, (width, n) in enumerate(zip(RESNET_WIDTHS, RESNET_BLOCKS[model])):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                out = t.conv(c, width, 3, side, stride, 1)
                t.bn(width, out)
                t.conv(width, width, 3, out, 1, 1)
                t.bn(width, out)
                if stride != 1 or c != width:  # the projected shortcut: conv1x1 at the stride, BN
                    t.conv(c, width, 1, side, stride)
                    t.bn(width, out)
                c, side = width, out
        t.global_pool(c, side)
        t.linear(c, num_classes)
    elif model == "densenet121":
        c, k, inner = DENSE_STEM, DENSE_GROWTH, DENSE_BN_SIZE * DENSE_GROWTH
        side = t.conv(in_channels, c, 7, side, 2, 3) if imagenet else t.conv(in_channels, c, 3, side, 1, 1)
        t.bn(c, side)
        if imagenet:
            side = t.max_pool(side, 3, 2, 1)
        for i, layers in enumerate(DENSE_BLOCKS):
            for j in range(layers):  # BN, ReLU, conv1x1 to 4k, BN, ReLU, conv3x3 to k, concatenated
                t.bn(c + j * k, side)
                t.conv(c + j * k, inner, 1, side)
                t.bn(inner, side)
                t.conv(inner, k, 3, side, 1, 1)
            c += layers * k
            if i < len(DENSE_BLOCKS) - 1:  # the transition: BN, ReLU, conv1x1 to half, average pool 2x2
                t.bn(c, side)
                t.conv(c, c // 2, 1, side)
                c //= 2
                side = t.avg_pool2(c, side)
        t.bn(c, side)  # norm5; the ReLU and global pool after it are functional, unseen by thop
        t.linear(c, num_classes)
    elif model == "squeezenet1_1":
        c = SQUEEZE_STEM
        side = t.conv(in_channels, c, 3, side, 2, 0, bias=True) if imagenet else \
            t.conv(in_channels, c, 3, side, 1, 1, bias=True)
        if imagenet:
            side = t.max_pool(side, 3, 2, ceil=True)
        for layer in SQUEEZE_LAYERS:
            if layer == "M":
                side = t.max_pool(side, 3, 2, ceil=True)
                continue
            squeeze, e1, e3 = layer
            t.conv(c, squeeze, 1, side, bias=True)
            t.conv(squeeze, e1, 1, side, bias=True)
            t.conv(squeeze, e3, 3, side, 1, 1, bias=True)
            c = e1 + e3
        t.conv(c, num_classes, 1, side, bias=True)  # the head: dropout, conv1x1 to the classes, ReLU, global pool
        t.global_pool(num_classes, side)
    else:
        w = a["width"]
        c = _divisible(MOBILENET_STEM * w)
        side = t.conv(in_channels, c, 3, side, 2 if imagenet else 1, 1)
        t.bn(c, side)
        for c_in, kernel, expanded, c_out, se, stride in MOBILENET_BLOCKS[model]:
            c_in, expanded, c_out = _divisible(c_in * w), _divisible(expanded * w), _divisible(c_out * w)
            if expanded != c_in:  # the 1x1 expansion, absent where it would not widen
                t.conv(c_in, expanded, 1, side)
                t.bn(expanded, side)
            out = t.conv(expanded, expanded, kernel, side, stride, (kernel - 1) // 2, groups=expanded)
            t.bn(expanded, out)
            if se:  # squeeze-excite: global pool, conv1x1 to a quarter, ReLU, conv1x1 back, Hardsigmoid, scale
                squeeze = _divisible(expanded // 4)
                t.global_pool(expanded, out)
                t.conv(expanded, squeeze, 1, 1, bias=True)
                t.conv(squeeze, expanded, 1, 1, bias=True)
            t.conv(expanded, c_out, 1, out)
            t.bn(c_out, out)
            c, side = c_out, out
        t.conv(c, 6 * c, 1, side)
        t.bn(6 * c, side)
        c *= 6
        t.global_pool(c, side)
        last = _divisible(LAST_CHANNEL[model] * w)
        t.linear(c, last)
        t.linear(last, num_classes)
    return t


@functools.lru_cache(maxsize=None)
def min_image_size(model: str, stem: str) -> int:
    """The smallest side of a square image that `model` with `stem` can take (every pool keeps a pixel); 1 for the
    networks whose strided convs and pools all pad."""
    a = {"model": model, "stem": stem, **KNOBS[model]}
    side = 1
    while True:  # every output side grows with the input's, so the first size that fits is the floor
        try:
            _tally(a, 1, 1, side)
            return side
        except _Vanishes:
            side += 1


def fits(model: str, stem: str, image_size: int) -> bool:
    return image_size >= min_image_size(model, stem)


def _float(arch: Mapping[str, Any], key: str, default: float) -> float:
    value = arch.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArchError(key, f"must be a number, but got {value!r}")
    return float(value)


_OUT_OF_RANGE = r".*\b(stem|drop_rate|dropout|width)\b.* (is )?out of (the )?range"


@register
class BackbonesSpace(Space):
    name = "backbones"
    description = ("torchvision's ResNet-18/34, DenseNet-121, SqueezeNet 1.1 and MobileNet-V3 small/large, random "
                   "weights, a head for the data; an ImageNet or a CIFAR (3x3 stride-1, no max pool) stem")
    presets = {
        **{model: {"model": model, "stem": "imagenet", **KNOBS[model]} for model in MODELS},
        **{f"{model}_cifar": {"model": model, "stem": "cifar", **KNOBS[model]} for model in MODELS},
    }

    def dimensions(self) -> list[Dimension]:
        drop, dropout, width = SAMPLED["drop_rate"], SAMPLED["dropout"], SAMPLED["width"]
        return [
            Dimension("model", "M", " | ".join(MODELS), "the torchvision network (random weights, a fresh head)"),
            Dimension("stem", "S", "imagenet | cifar",
                      "imagenet: torchvision's (4x down before the first block); cifar: conv3x3 stride 1, no max "
                      "pool. Drawn where both fit the image"),
            Dimension("zero_init", "z", "off | on", "ResNet: each block's last BN scale starts at 0 (identity)"),
            Dimension("drop_rate", "d", f"{drop[0]}..{drop[1]} in steps of {drop[2]}",
                      "DenseNet: dropout after every dense layer"),
            Dimension("dropout", "p", f"{dropout[0]}..{dropout[1]} in steps of {dropout[2]}",
                      "SqueezeNet, MobileNet-V3: dropout in the head (torchvision: 0.5, 0.2)"),
            Dimension("width", "w", f"{width[0]}..{width[1]} in steps of {width[2]}",
                      "MobileNet-V3: width multiplier, every width rounded to a multiple of 8"),
        ]

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # Only what fits the image is drawn: the choices depend on the shape, which is one per study.
        model = trial.suggest_categorical("model", [m for m in MODELS if fits(m, "cifar", image_size)])
        arch: Arch = {"model": model}
        with warnings.catch_warnings():
            # An enqueued architecture may sit off the sampled grid (dropout 0.25, width 0.35): Optuna warns that
            # the fixed value is out of the distribution's range, then uses it as given, which is the point.
            warnings.filterwarnings("ignore", message=_OUT_OF_RANGE)
            arch["stem"] = (trial.suggest_categorical("stem", list(STEMS)) if fits(model, "imagenet", image_size)
                            else "cifar")
            for key in KNOBS[model]:
                if key == "zero_init":
                    arch[key] = trial.suggest_categorical(key, [False, True])
                else:
                    low, high, step = SAMPLED[key]
                    # Rounded: a stepped float comes back as 0.30000000000000004, which a file would never say.
                    arch[key] = round(trial.suggest_float(key, low, high, step=step), 6)
        return arch

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        params = dict(a)
        if not fits(a["model"], "imagenet", image_size):
            del params["stem"]  # not drawn: the stem "cifar" is the only one that fits
        return params

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # Every knob's lowest drawn value is its least in both counts (dropout and zero_init count nothing), so the
        # candidates are each model's lowest corner with each stem that fits; the least in parameters, then MACs.
        candidates = []
        for model in MODELS:
            low = {k: (False if k == "zero_init" else SAMPLED[k][0]) for k in KNOBS[model]}
            candidates += [{"model": model, "stem": stem, **low} for stem in STEMS if fits(model, stem, image_size)]

        def cost(a: Arch) -> tuple[int, int]:
            t = _tally(a, 10, in_channels, image_size)
            return t.params, t.macs

        return min(candidates, key=cost)

    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        check_mapping(arch)
        check_shape(in_channels, image_size)
        model = one_of(arch, "model", MODELS)
        knobs = KNOBS[model]
        unknown = sorted(set(arch) - {"model", "stem", *knobs})
        if unknown:
            takes = ", ".join(["model", "stem", *knobs])
            raise ArchError(unknown[0], f"is not a dimension of {model} (its dimensions: {takes})")
        stem = one_of(arch, "stem", STEMS, "imagenet")
        if not fits(model, stem, image_size):
            least = min_image_size(model, stem)
            if stem == "imagenet" and fits(model, "cifar", image_size):
                raise ArchError("stem", f"{model}'s imagenet stem needs images of at least {least}x{least} (its "
                                        f"pools would leave no pixel), but got {image_size}x{image_size}: use the "
                                        f"stem 'cifar' (preset {model}_cifar)")
            raise ArchError("model", f"{model} needs images of at least {least}x{least} with the stem {stem!r} (its "
                                     f"pools would leave no pixel), but got {image_size}x{image_size}")
        a: Arch = {"model": model, "stem": stem}
        for key, default in knobs.items():
            if key == "zero_init":
                value = arch.get(key, default)
                if not isinstance(value, bool):
                    raise ArchError(key, f"must be true or false, but got {value!r}")
                a[key] = value
            elif key == "width":
                value = _float(arch, key, default)
                if not 0 < value <= MAX_WIDTH:
                    raise ArchError(key, f"must be a multiplier in (0, {MAX_WIDTH:g}], but got {value!r}")
                a[key] = value
            else:
                value = _float(arch, key, default)
                if not 0 <= value < 1:
                    raise ArchError(key, f"must be a probability in [0, 1), but got {value!r}")
                a[key] = value
        return a

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        """The walk `_tally` takes (module docstring, "Counts")."""
        return _tally(a, num_classes, in_channels, image_size).counts()

    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        check_classes(num_classes)
        return _build(a, num_classes, in_channels)


def _build(a: Arch, num_classes: int, in_channels: int) -> nn.Module:
    # Imported here: torchvision costs a second to import, and only building a network needs it.
    from torchvision import models

    model, cifar = a["model"], a["stem"] == "cifar"
    if model in RESNET_BLOCKS:
        net = getattr(models, model)(weights=None, num_classes=num_classes, zero_init_residual=a["zero_init"])
        net.conv1 = (nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False) if cifar
                     else nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False))
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's ResNet
        if cifar:
            net.maxpool = nn.Identity()
        return net
    if model == "densenet121":
        net = models.densenet121(weights=None, num_classes=num_classes, drop_rate=a["drop_rate"])
        net.features.conv0 = (nn.Conv2d(in_channels, DENSE_STEM, 3, 1, 1, bias=False) if cifar
                              else nn.Conv2d(in_channels, DENSE_STEM, 7, 2, 3, bias=False))
        nn.init.kaiming_normal_(net.features.conv0.weight)  # as torchvision's DenseNet
        if cifar:
            net.features.pool0 = nn.Identity()
        return net
    if model == "squeezenet1_1":
        net = models.squeezenet1_1(weights=None, num_classes=num_classes, dropout=a["dropout"])
        stem = (nn.Conv2d(in_channels, SQUEEZE_STEM, 3, 1, 1) if cifar
                else nn.Conv2d(in_channels, SQUEEZE_STEM, 3, 2))
        nn.init.kaiming_uniform_(stem.weight)  # as torchvision's SqueezeNet
        nn.init.zeros_(stem.bias)
        net.features[0] = stem
        if cifar:
            net.features[2] = nn.Identity()
        return net
    # torchvision's BN momentum here is 0.01, tuned for ImageNet's long runs: over a trial's few hundred steps the
    # running statistics barely leave their initial values and evaluation scores chance (module docstring).
    norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=BN_MOMENTUM)
    net = getattr(models, model)(weights=None, num_classes=num_classes, dropout=a["dropout"], width_mult=a["width"],
                                 norm_layer=norm)
    first = net.features[0][0]
    stem = nn.Conv2d(in_channels, first.out_channels, 3, 1 if cifar else 2, 1, bias=False)
    nn.init.kaiming_normal_(stem.weight, mode="fan_out")  # as torchvision's MobileNetV3
    net.features[0][0] = stem
    return net
