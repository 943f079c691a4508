"""resnet_5m: the TPSNet space of residual networks, searched under 5M parameters.

The network (TPSNet, random search over ResNets, 94.84% on CIFAR-10):
  stem   conv F_1xF_1 (stride 1, padding F_1//2, no bias) in_channels -> C_1, BN, ReLU
  layer i = 1..N: B_i BasicBlocks of width 2^i * C_1; the first block of every layer after the first has stride 2
  block  conv F_ixF_i, BN, ReLU, conv F_ixF_i, BN, + shortcut, ReLU   (convs without bias, padding F_i//2)
         shortcut = identity, or conv K_ixK_i (stride of the block, padding K_i//2, no bias) + BN when the
         stride or the width changes (always in a layer's first block: layer 1 doubles C_1)
  head   avg-pool P (stride P), flatten, Linear (with bias) to the classes

Where TPSNet is silent: kernels 5 and 7 pad F//2 like kernel 3 ("same" padding), so every stride-2 layer takes a
map of size s to ceil(s/2) whatever F_i and K_i; the stem uses F_1; P may be any value up to the final map's size
(AvgPool2d floors), and `suggest` samples only the divisors of the final map so that no pixel is dropped.

Where this space departs from TPSNet: `suggest` samples C_1 in steps of 8 (8, 16, ..., 64), so that every layer's
width (2^i * C_1) is a multiple of 8, the channel alignment that keeps fp16/bf16 convolutions on the tensor cores'
fast path. An architecture given whole (a file, a preset, `--enqueue`) keeps any C_1: TPSNet's own models have 34,
22 and 16. Such a C_1 reaches a study as the enqueued trial's fixed `channels` param, which Optuna takes as given
even off the sampled grid (with a warning, silenced here), so `params_of` still inverts `suggest`.

Options (`spaces._options`; off unless a run names them, and absent from an architecture while off):
  se               squeeze-excite on every block's residual branch, after bn2 and before the addition
  mish             act "mish": Mish instead of every ReLU (stem, blocks, after the additions)
  factorized       every block's FxF conv (F > 1) becomes 1xF then Fx1 (the stem and the shortcuts stay square)
  stochastic_depth drop_path p_L: block l of the network's L blocks drops its branch with p_l = p_L l / L
"""
from __future__ import annotations

from typing import Any, Mapping

import warnings

import torch
import torch.nn as nn

from tpsearch.spaces import _options
from tpsearch.spaces._base import Space
from tpsearch.spaces._layers import (ACTIVATIONS, DropPath, SqueezeExcite, conv, conv_macs, conv_params, drop_probs,
                                     out_side, se_macs, se_params)
from tpsearch.spaces._registry import register
from tpsearch.spaces._tally import BN_OPS
from tpsearch.spaces._types import Arch, ArchError, Counts, Dimension, check_classes, check_shape

KERNELS = (3, 5, 7)
SKIP_KERNELS = (1, 3)
MAX_BLOCKS = 16
CHANNELS = (8, 64)
CHANNEL_STEP = 8  # sampled C_1, hence every layer width, is a multiple of this (tensor-core alignment)
_KEYS = ("layers", "blocks", "channels", "kernels", "skip_kernels", "pool")
# Far beyond any budget, but they keep a hand-written file from asking for a loop of a billion layers.
LIMITS = {"layers": 16, "blocks": 512, "channels": 65536, "width": 65536}


def _final_size(image_size: int, layers: int) -> int:
    s = image_size
    for _ in range(layers - 1):
        s = (s + 1) // 2
    return s


def _layer_inputs(image_size: int, layers: int) -> list[int]:
    # Layer 1 runs at stride 1, so layers 1 and 2 both see the full image; layer i >= 2 sees it halved i-2 times.
    sizes, s = [], image_size
    for i in range(layers):
        sizes.append(s)
        if i >= 1:
            s = (s + 1) // 2
    return sizes


def max_layers(image_size: int) -> int:
    """The most layers whose every input map still fits the smallest kernel (3)."""
    n = 1
    while _layer_inputs(image_size, n + 1)[-1] >= min(KERNELS):
        n += 1
    return n


def _int(arch: Mapping[str, Any], key: str) -> int:
    value = arch[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchError(key, f"must be an integer, but got {value!r}")
    return value


def _per_layer(arch: Mapping[str, Any], key: str, layers: int, default: int | None) -> list[int]:
    value = arch.get(key, default)
    if value is None:
        raise ArchError(key, "is required")
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * layers
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ArchError(key, f"must be an integer or a list of {layers} integers (one per layer), but got {value!r}")
    if len(value) != layers:
        raise ArchError(key, f"must list one value per layer ({layers}), but got {len(value)}: {list(value)}")
    return list(value)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, skip_kernel: int, stride: int, act: str = "relu",
                 se: bool = False, factorized: bool = False, drop: float = 0.0) -> None:
        super().__init__()
        self.conv1 = conv(c_in, c_out, kernel, stride, factorized=factorized)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv(c_out, c_out, kernel, 1, factorized=factorized)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = ACTIVATIONS[act]()
        self.se = SqueezeExcite(c_out) if se else nn.Identity()
        self.drop = DropPath(drop) if drop > 0 else nn.Identity()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, skip_kernel, stride, skip_kernel // 2, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.drop(self.se(self.bn2(self.conv2(out))))
        return self.act(out + self.shortcut(x))


class TPSNet(nn.Module):
    def __init__(self, arch: Arch, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        c1, kernels = arch["channels"], arch["kernels"]
        o = {**_options.defaults(), **arch}
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernels[0], 1, kernels[0] // 2, bias=False), nn.BatchNorm2d(c1),
            ACTIVATIONS[o["act"]]())
        drops = iter(drop_probs(o["drop_path"], sum(arch["blocks"])))
        layers, c_in = [], c1
        for i in range(arch["layers"]):
            width = c1 * 2 ** (i + 1)
            blocks = []
            for b in range(arch["blocks"][i]):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(BasicBlock(c_in, width, kernels[i], arch["skip_kernels"][i], stride, o["act"], o["se"],
                                         o["factorized"], next(drops)))
                c_in = width
            layers.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(arch["pool"])
        side = _final_size(image_size, arch["layers"]) // arch["pool"]
        self.fc = nn.Linear(c_in * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


@register
class ResNet5M(Space):
    name = "resnet_5m"
    description = "TPSNet's residual networks: layers, blocks per layer, channels, kernels, skip kernels, pool"
    options = ("se", "mish", "factorized", "stochastic_depth")
    presets = {
        # The three published TPSNet models (4.87M, 4.97M and 4.96M parameters on CIFAR-10).
        "tpsnet_model1": {"layers": 3, "blocks": [3, 3, 3], "channels": 34, "kernels": [3, 3, 3],
                          "skip_kernels": [1, 1, 1], "pool": 8},
        "tpsnet_model2": {"layers": 3, "blocks": [7, 7, 7], "channels": 22, "kernels": [3, 3, 3],
                          "skip_kernels": [1, 1, 1], "pool": 8},
        "tpsnet": {"layers": 3, "blocks": [13, 13, 13], "channels": 16, "kernels": [3, 3, 3],
                   "skip_kernels": [1, 1, 1], "pool": 8},
        # ResNet-20's depth and widths (16, 32, 64): the classic small CIFAR baseline.
        "resnet20": {"layers": 3, "blocks": [3, 3, 3], "channels": 8, "kernels": [3, 3, 3],
                     "skip_kernels": [1, 1, 1], "pool": 8},
        # A few-thousand-parameter net for 8x8 digits and smoke runs (pool 4 fits both 8x8 and 32x32 inputs).
        "tiny": {"layers": 2, "blocks": [1, 1], "channels": 8, "kernels": [3, 3], "skip_kernels": [1, 1],
                 "pool": 4},
    }

    def dimensions(self) -> list[Dimension]:
        return [
            Dimension("layers", "N", "1..5 on 32x32 (while every layer's input fits a 3x3 kernel)",
                      "residual layers (stages); each after the first halves the map"),
            Dimension("blocks", "B_i", f"1..{MAX_BLOCKS} per layer", "BasicBlocks in layer i"),
            Dimension("channels", "C_1", f"{CHANNELS[0]}..{CHANNELS[1]} in steps of {CHANNEL_STEP} (any if given)",
                      "stem width; layer i is 2^i * C_1 wide"),
            Dimension("kernels", "F_i", "3 | 5 | 7 per layer (no larger than the layer's input map)",
                      "convolution kernel of layer i (the stem uses F_1)"),
            Dimension("skip_kernels", "K_i", "1 | 3 per layer", "kernel of layer i's projection shortcut"),
            Dimension("pool", "P", "divisors of the final map (1..8 for N=3 on 32x32)",
                      "average-pool kernel before the classifier"),
        ]

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        n = trial.suggest_int("layers", 1, max_layers(image_size))
        c1 = _suggest_channels(trial)
        inputs = _layer_inputs(image_size, n)
        blocks, kernels, skips = [], [], []
        for i in range(n):
            blocks.append(trial.suggest_int(f"blocks_{i + 1}", 1, MAX_BLOCKS))
            # Choices are a function of the layer index alone, so each name keeps one distribution across trials.
            kernels.append(trial.suggest_categorical(f"kernel_{i + 1}", [k for k in KERNELS if k <= inputs[i]]))
            skips.append(trial.suggest_categorical(f"skip_kernel_{i + 1}",
                                                   [k for k in SKIP_KERNELS if k <= inputs[i]]))
        final = _final_size(image_size, n)
        pools = [p for p in range(1, final + 1) if final % p == 0]
        pool = trial.suggest_categorical(f"pool_{n}_layers", pools)
        return {"layers": n, "blocks": blocks, "channels": c1, "kernels": kernels, "skip_kernels": skips,
                "pool": pool}

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        params: dict[str, Any] = {"layers": a["layers"], "channels": a["channels"]}
        for i in range(a["layers"]):
            params[f"blocks_{i + 1}"] = a["blocks"][i]
            params[f"kernel_{i + 1}"] = a["kernels"][i]
            params[f"skip_kernel_{i + 1}"] = a["skip_kernels"][i]
        params[f"pool_{a['layers']}_layers"] = a["pool"]
        return params

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # One layer of one 3x3 block at the least width, pooled to 1x1: every other choice only adds weights.
        return {"layers": 1, "blocks": [1], "channels": CHANNELS[0], "kernels": [3], "skip_kernels": [1],
                "pool": image_size}

    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        self.check_keys(arch, _KEYS)
        for key in ("layers", "blocks", "channels"):
            if key not in arch:
                raise ArchError(key, "is required")
        check_shape(in_channels, image_size)
        n = _int(arch, "layers")
        if not 1 <= n <= LIMITS["layers"]:
            raise ArchError("layers", f"must be 1..{LIMITS['layers']}, but got {n}")
        c1 = _int(arch, "channels")
        if c1 < 1:
            raise ArchError("channels", f"must be a positive width, but got {c1}")
        if c1 > LIMITS["channels"]:
            raise ArchError("channels", f"must be at most {LIMITS['channels']}, but got {c1}")
        if c1 * 2 ** n > LIMITS["width"]:
            raise ArchError("channels", f"the last of {n} layers would be {c1 * 2 ** n} wide (2^N * C_1); "
                                        f"at most {LIMITS['width']}")
        blocks = _per_layer(arch, "blocks", n, None)
        if min(blocks) < 1:
            raise ArchError("blocks", f"every layer needs at least 1 block, but got {blocks}")
        if max(blocks) > LIMITS["blocks"]:
            raise ArchError("blocks", f"at most {LIMITS['blocks']} blocks per layer, but got {blocks}")
        kernels = _per_layer(arch, "kernels", n, 3)
        skips = _per_layer(arch, "skip_kernels", n, 1)
        inputs = _layer_inputs(image_size, n)
        for key, values in (("kernels", kernels), ("skip_kernels", skips)):
            for i, (k, side) in enumerate(zip(values, inputs)):
                if k < 1 or k % 2 == 0:
                    raise ArchError(key, f"layer {i + 1}: kernel must be a positive odd size, but got {k}")
                if k > side:
                    raise ArchError(key, f"layer {i + 1}: kernel {k} is larger than its {side}x{side} input map "
                                         f"({image_size}x{image_size} image, {n} layers)")
        final = _final_size(image_size, n)
        pool = arch.get("pool", final)
        if isinstance(pool, bool) or not isinstance(pool, int):
            raise ArchError("pool", f"must be an integer, but got {pool!r}")
        if not 1 <= pool <= final:
            raise ArchError("pool", f"must be 1..{final} (the final {final}x{final} map of {n} layers on a "
                                    f"{image_size}x{image_size} image), but got {pool}")
        return {"layers": n, "blocks": blocks, "channels": c1, "kernels": kernels, "skip_kernels": skips,
                "pool": pool, **_options.normalise(arch, self.options)}

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        """One walk of the network, layer by layer, by thop's rules (`Space.tally`). Beyond them: squeeze-excite
        is its global pool (an addition per input, a division per output) and its two Linears; SE's scaling,
        stochastic depth (the identity at inference) and identity shortcuts are free."""
        c1, kernels, side = a["channels"], a["kernels"], image_size
        se, fact = a.get("se", False), a.get("factorized", False)
        params = kernels[0] ** 2 * in_channels * c1 + 2 * c1  # stem conv + BN
        macs = side * side * c1 * (kernels[0] ** 2 * in_channels + BN_OPS)
        c_in = c1
        for i in range(a["layers"]):
            w, f, k2, b = c1 * 2 ** (i + 1), kernels[i], a["skip_kernels"][i] ** 2, a["blocks"][i]
            stride = 2 if i > 0 else 1  # of the layer's first block; stride 2 with "same" padding: ceil
            first_side, side = side, out_side(side, stride)
            pixels = side * side
            # B blocks of two convs, two BNs over w maps and SE; the first conv takes c_in at the stride, the other
            # 2B - 1 are w->w; the first block always projects (stride 2, or 2x the width) with a conv and a BN.
            params += conv_params(c_in, w, f, factorized=fact) + (2 * b - 1) * conv_params(w, w, f, factorized=fact)
            params += b * (4 * w + (se_params(w) if se else 0)) + k2 * c_in * w + 2 * w
            macs += conv_macs(c_in, w, f, first_side, stride, factorized=fact)
            macs += (2 * b - 1) * conv_macs(w, w, f, side, factorized=fact)
            macs += b * (2 * BN_OPS * pixels * w + (se_macs(w, pixels) if se else 0))
            macs += pixels * w * (k2 * c_in + BN_OPS)
            c_in = w
        out = side // a["pool"]
        pooled = c_in * out * out
        return Counts(params + pooled * num_classes + num_classes,
                      macs + c_in * (out * a["pool"]) ** 2 + pooled + pooled * num_classes)

    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        check_classes(num_classes)
        return TPSNet(a, num_classes, in_channels, image_size)


def _suggest_channels(trial: Any) -> int:
    """C_1 on the grid of multiples of CHANNEL_STEP, or an enqueued architecture's own C_1 as Optuna fixes it."""
    with warnings.catch_warnings():
        # Optuna warns that a fixed value lies off the distribution's grid, then uses it: here that is the point.
        warnings.filterwarnings("ignore", message=r".*\bchannels\b.* (is )?out of (the )?range")
        return trial.suggest_int("channels", *CHANNELS, step=CHANNEL_STEP)
