"""xresnet: pre-activation "bag of tricks" ResNets and ResNeXts (XResNet, MXResNet, SE-MXResNet, SE-MXResNeXt).

The networks of the SE-MXResNet CIFAR-10 project (github iamVarunAnand/image_classification, 93.10% with SE-MXResNet20
and 94.68% with SE-MXResNeXt29_16x2d), every convolution without bias and with "same" padding:

  stem    conv3x3 in_channels -> C_0 (stride 1), nothing after it: the first block pre-activates
  stage i = 0, 1, 2: n blocks of width K_i = 2^i * C_0; stages 1 and 2 start with a stride-2 block
  basic   BN, act, conv3x3 (the block's stride), BN, act, conv3x3, [SE]; + shortcut
  bottleneck (ResNeXt)
          BN, act, conv1x1 -> G_i, BN, act, grouped conv3x3 G_i -> G_i (cardinality groups, the stride),
          BN, act, conv1x1 -> K_i, [SE]; + shortcut, with G_i = floor(K_i / 64 * d) * cardinality
  SE      global average pool, Linear K -> K/16 (no bias), ReLU, Linear K/16 -> K (no bias), sigmoid, scale the
          residual branch (before the addition)
  shortcut identity, or a projection from the pre-activated input (after the block's first BN and act):
          AvgPool 2x2 stride 2 (ceil mode, averaging real pixels only), conv1x1 -> K_i, BN. Basic blocks project
          where the stride is 2 (the first block of stages 1 and 2); bottleneck blocks project in the first block of
          every stage (stage 0 included, where the stride is 1 and the pool is left out)
  head    BN, act, [global average pool ; global max pool] concatenated, Linear (with bias) 2 K_2 -> classes

C_0 is 16 x width for basic blocks and 64 x width for bottleneck ones (the ResNeXts are 4x wider, so that a bottleneck
sees the basic block's width); act is ReLU or Mish; SE and act apply to every block alike.

Where the seed is silent or differs: its Keras code pads a stride-1 2x2 average pool on the projection of stage 0's
bottleneck block, a one-pixel blur this space leaves out (a 1x1 projection of the map itself; no parameter changes);
its SE has K // 16 hidden units, zero below 16 channels, where this space keeps at least one.

Presets against the published counts (rounded to 0.01M; our count is exact):

  se_mxresnet20         275,130  published 0.27M  (0.28M rounded: see below)
  se_mxresnet32         470,906  published 0.47M
  se_mxresnet44         666,682  published 0.67M
  se_mxresnet56         862,458  published 0.86M
  xresnext29_16x2d      332,170  published 0.32M  (0.33M rounded: see below)
  se_mxresnext29_16x2d  364,426  published 0.36M

Two published figures are off by one in the last digit, and no reading of the block description that we found fits
all six (conv biases only add, SE after the addition changes nothing): the seed's own Keras code, counted layer by
layer, has exactly these trainable parameters (its non-trainable BN statistics would only add more). Matching 0.27M
for SE-MXResNet20 would need 131 to 1,682 fewer parameters, which e.g. a head without the max pool (-640) gives, but
that head is not the project's; 0.32M for XResNeXt29_16x2d would need 7,171 to 9,426 fewer (the SE variant must stay
at 0.36M), which e.g. a stem of 16 channels together with an average-only head gives (323,610 and 355,866; the
seed's XResNeXt had that stem for a day, its SE-MXResNeXt never). We build the networks as described and published,
and report the exact counts. The 29 layers of the ResNeXts are the stem, 3 stages of 3 bottleneck blocks of 3
convolutions each and the classifier (1 + 27 + 1); 20/32/44/56 are 1 + 6n + 1.

Options (`spaces._options`; off unless a run names them, and absent from an architecture while off; SE and act are
this space's own dimensions, so it takes only these two):
  factorized       every 3x3 conv of a residual branch (the basic block's two, the bottleneck's grouped one) becomes
                   1x3 then 3x1, with the same groups; the stem, the 1x1s and the projections stay as they are
  stochastic_depth drop_path p_L: block l of the network's L = 3n blocks drops its branch (after SE) with
                   p_l = p_L l / L
"""
from __future__ import annotations

from typing import Any, Mapping

import warnings

import torch
import torch.nn as nn

from tpsearch.spaces import _options
from tpsearch.spaces._base import Space
from tpsearch.spaces._layers import (ACTIVATIONS, DropPath, SqueezeExcite, conv, conv_macs, conv_params, drop_probs,
                                     se_macs, se_params)
from tpsearch.spaces._registry import register
from tpsearch.spaces._tally import BN_OPS
from tpsearch.spaces._types import Arch, ArchError, Counts, Dimension, check_classes, check_shape, one_of

BLOCKS = ("basic", "bottleneck")
BASE_WIDTH = {"basic": 16, "bottleneck": 64}  # C_0 at width 1: the CIFAR ResNets' 16, and 4x that for bottlenecks
MAX_BLOCKS = {"basic": 12, "bottleneck": 8}  # blocks per stage `suggest` draws (a file may give more)
WIDTHS = (0.5, 2.0, 0.25)  # width multiplier sampled from..to in steps: C_0 stays a multiple of 4
CARDINALITIES = (1, 32)  # sampled log-uniformly, any integer between
BOTTLENECK_WIDTHS = (2, 8, 2)  # d sampled from..to in steps; at width >= 0.5, d >= 2 keeps every group non-empty
STAGES = 3
_KEYS = ("block", "blocks", "width", "se", "act", "cardinality", "bottleneck_width")
_BOTTLENECK_ONLY = ("cardinality", "bottleneck_width")
# Far beyond any budget, but they keep a hand-written file from asking for a loop of a billion blocks.
LIMITS = {"blocks": 512, "width": 65536, "cardinality": 65536, "bottleneck_width": 65536}


def _sides(image_size: int) -> list[int]:
    """Each stage's output side: stages 1 and 2 halve it, a 3x3 stride-2 conv with padding 1 rounding up."""
    sides = [image_size]
    for _ in range(STAGES - 1):
        sides.append((sides[-1] + 1) // 2)
    return sides


def _widths(a: Arch) -> list[int]:
    c0 = round(BASE_WIDTH[a["block"]] * a["width"])
    return [c0 * 2 ** i for i in range(STAGES)]


def _group_width(a: Arch, k: int) -> int:
    # Integer form of floor(K / 64 * d): exact where the float would round 0.999... down.
    return k * a["bottleneck_width"] // 64 * a["cardinality"]


def _projection(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    # ceil_mode with count_include_pad=False halves an odd side the way the stride-2 conv does (to ceil(s/2)) and
    # averages only the real pixels of the last, partial window: Keras's "same" average pool, as in the seed.
    pool = [nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)] if stride == 2 else []
    return nn.Sequential(*pool, nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class _Block(nn.Module):
    """One pre-activation residual block; `residual` takes the pre-activated input (BN, act already applied)."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: str, se: bool, project: bool,
                 residual: nn.Module, drop: float = 0.0) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.act = ACTIVATIONS[act]()
        self.residual = residual
        self.se = SqueezeExcite(c_out) if se else nn.Identity()
        self.drop = DropPath(drop) if drop > 0 else nn.Identity()
        self.project = _projection(c_in, c_out, stride) if project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act(self.bn(x))
        out = self.drop(self.se(self.residual(pre)))
        return out + (x if self.project is None else self.project(pre))


def _basic(c_in: int, c_out: int, stride: int, act: str, factorized: bool = False) -> nn.Sequential:
    return nn.Sequential(conv(c_in, c_out, 3, stride, factorized=factorized), nn.BatchNorm2d(c_out),
                         ACTIVATIONS[act](), conv(c_out, c_out, 3, 1, factorized=factorized))


def _bottleneck(c_in: int, c_out: int, group_width: int, cardinality: int, stride: int, act: str,
                factorized: bool = False) -> nn.Sequential:
    g = group_width
    return nn.Sequential(nn.Conv2d(c_in, g, 1, bias=False), nn.BatchNorm2d(g), ACTIVATIONS[act](),
                         conv(g, g, 3, stride, cardinality, factorized), nn.BatchNorm2d(g),
                         ACTIVATIONS[act](), nn.Conv2d(g, c_out, 1, bias=False))


class XResNet(nn.Module):
    def __init__(self, a: Arch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        widths = _widths(a)
        fact = a.get("factorized", False)
        drops = iter(drop_probs(a.get("drop_path", 0.0), STAGES * a["blocks"]))
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        stages, c_in = [], widths[0]
        for i, k in enumerate(widths):
            blocks = []
            for b in range(a["blocks"]):
                stride = 2 if (i > 0 and b == 0) else 1
                if a["block"] == "basic":
                    residual, project = _basic(c_in, k, stride, a["act"], fact), stride != 1
                else:
                    residual = _bottleneck(c_in, k, _group_width(a, k), a["cardinality"], stride, a["act"], fact)
                    project = b == 0
                blocks.append(_Block(c_in, k, stride, a["act"], a["se"], project, residual, next(drops)))
                c_in = k
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c_in)
        self.act = ACTIVATIONS[a["act"]]()
        self.avg, self.max = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(2 * c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.stages(self.stem(x))))
        return self.fc(torch.cat([torch.flatten(self.avg(x), 1), torch.flatten(self.max(x), 1)], 1))


@register
class XResNetSpace(Space):
    name = "xresnet"
    description = ("pre-activation bag-of-tricks ResNets/ResNeXts (SE-MXResNet): block type, blocks per stage, width, "
                   "squeeze-excite, ReLU or Mish, cardinality and bottleneck width")
    presets = {
        # SE-MXResNet20/32/44/56: basic blocks, Mish, SE; 93.10 / 93.80 / 93.88 / 94.36% published on CIFAR-10.
        "se_mxresnet20": {"block": "basic", "blocks": 3, "width": 1.0, "se": True, "act": "mish"},
        "se_mxresnet32": {"block": "basic", "blocks": 5, "width": 1.0, "se": True, "act": "mish"},
        "se_mxresnet44": {"block": "basic", "blocks": 7, "width": 1.0, "se": True, "act": "mish"},
        "se_mxresnet56": {"block": "basic", "blocks": 9, "width": 1.0, "se": True, "act": "mish"},
        # ResNeXt-29 16x2d: 16 groups of 2 channels in stage 0's bottleneck (4 and 8 in stages 1 and 2).
        "xresnext29_16x2d": {"block": "bottleneck", "blocks": 3, "width": 1.0, "se": False, "act": "relu",
                             "cardinality": 16, "bottleneck_width": 2},
        "se_mxresnext29_16x2d": {"block": "bottleneck", "blocks": 3, "width": 1.0, "se": True, "act": "mish",
                                 "cardinality": 16, "bottleneck_width": 2},
    }

    def dimensions(self) -> list[Dimension]:
        return [
            Dimension("block", "T", "basic | bottleneck", "residual block: two 3x3 convs, or ResNeXt's 1x1, "
                                                          "grouped 3x3, 1x1"),
            Dimension("blocks", "n", f"basic 1..{MAX_BLOCKS['basic']}, bottleneck 1..{MAX_BLOCKS['bottleneck']}",
                      "blocks in each of the 3 stages (depth 6n+2 basic, 9n+2 bottleneck)"),
            Dimension("width", "w", f"{WIDTHS[0]}..{WIDTHS[1]} in steps of {WIDTHS[2]}",
                      "width multiplier: stage widths w x 16/32/64 (basic), w x 64/128/256 (bottleneck)"),
            Dimension("se", "SE", "off | on", "squeeze-excite (ratio 16) on every block's residual branch"),
            Dimension("act", "act", "relu | mish", "activation of every block and the head"),
            Dimension("cardinality", "g", f"{CARDINALITIES[0]}..{CARDINALITIES[1]} log (bottleneck only)",
                      "groups of the bottleneck's 3x3 conv"),
            Dimension("bottleneck_width", "d", f"{BOTTLENECK_WIDTHS[0]}..{BOTTLENECK_WIDTHS[1]} in steps of "
                                               f"{BOTTLENECK_WIDTHS[2]} (bottleneck only)",
                      "channels per group at width 64; stage i's 3x3 conv is floor(K_i/64 d) g wide"),
        ]

    options = ("factorized", "stochastic_depth")  # SE and act are dimensions of its own

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # Every 3x3 conv pads by 1 and every pool rounds up, so any image from 1x1 up and any number of input
        # channels (the stem's alone) fits every choice: no dimension needs narrowing for the shape.
        block = trial.suggest_categorical("block", list(BLOCKS))
        with warnings.catch_warnings():
            # An enqueued architecture may sit off the sampled grid (width 0.375, d 3, 48 groups): Optuna warns that
            # the fixed value is out of the distribution's range, then uses it as given, which is the point here.
            warnings.filterwarnings("ignore", message=r".*\b(width_\w+|cardinality|bottleneck_width)\b.* "
                                                      r"(is )?out of (the )?range")
            # Names carry the block type, so each keeps one distribution across trials (define-by-run).
            arch: Arch = {"block": block, "blocks": trial.suggest_int(f"blocks_{block}", 1, MAX_BLOCKS[block]),
                          "width": trial.suggest_float(f"width_{block}", WIDTHS[0], WIDTHS[1], step=WIDTHS[2]),
                          "se": trial.suggest_categorical("se", [False, True]),
                          "act": trial.suggest_categorical("act", list(ACTIVATIONS))}
            if block == "bottleneck":
                # Any integer works (the 3x3 conv is floor(K/64 d) x cardinality wide, so the groups always divide
                # it); log-uniform gives 1, 2, 4, ... as much weight as 17..32.
                arch["cardinality"] = trial.suggest_int("cardinality", *CARDINALITIES, log=True)
                arch["bottleneck_width"] = trial.suggest_int("bottleneck_width", *BOTTLENECK_WIDTHS[:2],
                                                             step=BOTTLENECK_WIDTHS[2])
        return arch

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        block = a["block"]
        params: dict[str, Any] = {"block": block, f"blocks_{block}": a["blocks"], f"width_{block}": a["width"],
                                  "se": a["se"], "act": a["act"]}
        for key in _BOTTLENECK_ONLY:
            if key in a:
                params[key] = a[key]
        return params

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # One basic block per stage at the least width, no SE: a bottleneck stage is 4x as wide at any width.
        return {"block": "basic", "blocks": 1, "width": WIDTHS[0], "se": False, "act": "relu"}

    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        self.check_keys(arch, _KEYS)
        check_shape(in_channels, image_size)
        block = one_of(arch, "block", BLOCKS)
        if "blocks" not in arch:
            raise ArchError("blocks", "is required")
        n = _int(arch, "blocks")
        if not 1 <= n <= LIMITS["blocks"]:
            raise ArchError("blocks", f"must be 1..{LIMITS['blocks']} blocks per stage, but got {n}")
        width = arch.get("width", 1.0)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ArchError("width", f"must be a positive multiplier, but got {width!r}")
        c0 = BASE_WIDTH[block] * width
        if abs(c0 - round(c0)) > 1e-9 or round(c0) < 1:
            raise ArchError("width", f"{BASE_WIDTH[block]} x width must be a whole number of channels (the stem of "
                                     f"{block} blocks), but got {BASE_WIDTH[block]} x {width} = {c0:g}")
        if round(c0) * 2 ** (STAGES - 1) > LIMITS["width"]:
            raise ArchError("width", f"the last stage would be {round(c0) * 2 ** (STAGES - 1)} wide; "
                                     f"at most {LIMITS['width']}")
        se = arch.get("se", False)
        if not isinstance(se, bool):
            raise ArchError("se", f"must be true or false, but got {se!r}")
        act = one_of(arch, "act", ACTIVATIONS, "relu")
        a: Arch = {"block": block, "blocks": n, "width": float(width), "se": se, "act": act}
        on = _options.normalise(arch, self.options)  # last in the dict: an arch without options is unchanged
        if block == "basic":
            for key in _BOTTLENECK_ONLY:
                if key in arch:
                    raise ArchError(key, "applies to bottleneck blocks only, but block is 'basic'")
            return {**a, **on}
        for key in _BOTTLENECK_ONLY:
            if key not in arch:
                raise ArchError(key, "is required for bottleneck blocks")
            value = _int(arch, key)
            if not 1 <= value <= LIMITS[key]:
                raise ArchError(key, f"must be 1..{LIMITS[key]}, but got {value}")
            a[key] = value
        narrowest = _widths(a)[0]
        if narrowest * a["bottleneck_width"] // 64 < 1:
            raise ArchError("bottleneck_width", f"stage 0 ({narrowest} wide) would have groups of "
                                                f"floor({narrowest}/64 x {a['bottleneck_width']}) = 0 channels: "
                                                f"d must be at least {-(-64 // narrowest)}")
        return {**a, **on}

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        """One walk of the network, block by block, by thop's rules (`Space.tally`). Beyond them: the average pools
        are the projection's 2x2 pool, SE's and the head's global pools; the Linears are SE's two and the
        classifier; Mish and sigmoid are free (a smooth activation costs a few flops per element that this count,
        like thop's, leaves out), as are the max pool, SE's scaling and stochastic depth (the identity at
        inference)."""
        widths, sides, fact = _widths(a), _sides(image_size), a.get("factorized", False)
        params, macs = 9 * in_channels * widths[0], sides[0] ** 2 * widths[0] * 9 * in_channels  # stem conv
        c_in, s_in = widths[0], sides[0]
        for i, k in enumerate(widths):
            p = sides[i] ** 2
            for b in range(a["blocks"]):
                p_in, stride = s_in * s_in, 2 if (i > 0 and b == 0) else 1
                params, macs = params + 2 * c_in, macs + BN_OPS * c_in * p_in  # the block's pre-activation BN
                if a["block"] == "basic":
                    params += conv_params(c_in, k, 3, factorized=fact) + 2 * k + conv_params(k, k, 3, factorized=fact)
                    macs += conv_macs(c_in, k, 3, s_in, stride, factorized=fact) + BN_OPS * k * p
                    macs += conv_macs(k, k, 3, sides[i], factorized=fact)
                    project = stride == 2
                else:
                    g, card = _group_width(a, k), a["cardinality"]
                    params += c_in * g + 2 * g + conv_params(g, g, 3, card, fact) + 2 * g + g * k
                    # The first 1x1 runs before the stride, at the input's resolution.
                    macs += p_in * g * c_in + BN_OPS * g * p_in + conv_macs(g, g, 3, s_in, stride, card, fact)
                    macs += BN_OPS * g * p + p * k * g
                    project = b == 0
                if a["se"]:
                    params, macs = params + se_params(k), macs + se_macs(k, p)
                if project:
                    if stride == 2:  # even on a 1x1 map: the 2x2 pool tiles the input exactly
                        macs += c_in * p_in + c_in * p
                    params, macs = params + c_in * k + 2 * k, macs + p * k * c_in + BN_OPS * k * p
                c_in, s_in = k, sides[i]
        p_in = s_in * s_in
        return Counts(params + 2 * c_in + 2 * c_in * num_classes + num_classes,  # head BN, Linear
                      macs + BN_OPS * c_in * p_in + c_in * p_in + c_in + 2 * c_in * num_classes)

    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        check_classes(num_classes)
        return XResNet(a, num_classes, in_channels)


def _int(arch: Mapping[str, Any], key: str) -> int:
    value = arch[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchError(key, f"must be an integer, but got {value!r}")
    return value
