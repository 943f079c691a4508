"""Quantized weights for an exported model: ternary (TTQ), binary, and PyTorch's int8.

- ternary: trained ternary quantization (Zhu et al. 2017). Per quantized layer a threshold
  delta = t x max|w| over its latent full-precision weights w; weights above delta become +Wp, below -delta become
  -Wn, the rest 0. Wp and Wn are learned per layer (initialised to the mean magnitude of the weights on each side,
  the least-squares fit, so fine-tuning starts near the full-precision model). The gradient reaches the latent
  weights straight through, scaled as in the paper: by Wp above the threshold, by Wn below, by 1 between. Wp's and
  Wn's gradients are the paper's sums over their side's weights divided by the number of those weights (see
  `_TernaryFn.backward`). Stored in 2 bits a weight.
- binary: BinaryConnect/XNOR-style weights alpha x sign(w), alpha = mean|w| of the layer (recomputed from the
  latent weights at every step, not learned); the gradient passes straight through to the latent weights where
  |w| <= 1 (the hard-tanh estimator). Stored in 1 bit a weight.
- int8: post-training static quantization with torch.ao (FX graph mode, the x86/fbgemm backend): batch norm
  folded into the convolutions, weights int8 per output channel, activations uint8 with ranges calibrated on a few
  hundred training images. No fine-tuning. It runs on the CPU only (PyTorch's quantized kernels are CPU kernels),
  and a model that torch.fx cannot trace is refused. torch.ao.quantization is deprecated in favour of torchao
  (not a dependency here); it still ships with the torch this project pins.

Ternary and binary quantize every convolution and linear weight except, as TTQ does, the first convolution the
image meets and the last linear layer (the classifier): those two, the biases and batch norm stay in float32.
A fine-tune of E epochs (the caller's training function) then adapts the network to its quantized weights, training
the latent weights and the scales through parametrizations (`torch.nn.utils.parametrize`), so the trainer runs
unchanged. After it the quantized weights are baked into the model: it is the space's own module whose weights take
exactly two or three values per layer. Last, the batch-norm running statistics are measured again over training
images (`recalibrate_batch_norm`): the fine-tune's running averages mix statistics of weights that kept moving.

The record a checkpoint keeps (`quantization`, tensors and plain containers only):

    method, bits          "ternary" 2, "binary" 1, "int8" 8
    layers                {name: {kind, weights, scales (list), zero_fraction (ternary)}} of the quantized layers
    full_precision_layers names of the conv and linear layers kept in float32 (ternary, binary)
    codes                 {name: uint8 tensor}: the packed codes, 4 (ternary: 0 zero, 1 +Wp, 2 -Wn) or 8 (binary:
                          1 +alpha, 0 -alpha) weights a byte, first weight in the low bits
    scales                {name: float32 tensor}: [Wp, Wn] or [alpha]
    observers             int8: the calibrated observers' state, from which `load_checkpoint` converts again
    engine                int8: the quantized backend ("x86", "fbgemm", ...)
    zero_fraction         ternary: the share of zeros among the quantized weights
    packed_bytes          bytes of the deployed model: the codes, the scales, and every other tensor at its dtype
    full_precision_bytes  bytes of the same tensors in the full-precision model (its state_dict)
    ratio                 full_precision_bytes / packed_bytes
    full_precision        {test_accuracy, val_accuracy}: the full-precision model's, measured at export
    threshold, finetune   ternary: t; ternary and binary: {epochs, hparams, history} of the fine-tune
    batch_norm_images     ternary, binary: the training images the batch-norm statistics were measured on
    sha256                digest of the codes, scales and observers (the weights have their own)

The checkpoint's state_dict holds the dequantized weights (code x scale, exactly), so any reader of the format gets
a model that computes with the quantized weights; `load_checkpoint` also checks them against the codes. The file is
therefore not smaller than a full-precision one: `packed_bytes` is the size a deployment storing the codes needs.
"""
from __future__ import annotations

import contextlib
import copy
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from tpsearch.exceptions import CheckpointError, UsageError

METHODS = ("ternary", "binary", "int8")
BITS = {"ternary": 2, "binary": 1, "int8": 8}
DEFAULT_THRESHOLD = 0.05      # TTQ's t: the share of the layer's largest weight magnitude below which a weight is 0
DEFAULT_EPOCHS = 5            # of the fine-tune; TTQ fine-tunes far longer on ImageNet, a few epochs suit small data
CALIBRATION_IMAGES = 256      # training images whose activations set int8's ranges
BATCH_NORM_IMAGES = 2048      # training images whose batch-norm statistics ternary and binary models keep; a few
                              # thousand estimate a channel's mean and variance well, and cost a fraction of an epoch
_QUANTIZED_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class QuantizeConfig:
    """How to quantize a trained model."""

    method: str                          # one of METHODS
    epochs: int = DEFAULT_EPOCHS         # fine-tune epochs (ternary, binary); int8 is not fine-tuned
    threshold: float = DEFAULT_THRESHOLD  # ternary: delta = threshold x max|w| per layer
    first_last: bool = False             # also quantize the first conv and the last linear layer (not TTQ's way)
    calibration_images: int = CALIBRATION_IMAGES  # int8

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"--quantize must be one of {', '.join(METHODS)}, but got {self.method!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise UsageError(f"--quantize-epochs must be an integer of at least 1, but got {self.epochs!r}")
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise UsageError(f"--ternary-threshold must be in (0, 1), but got {self.threshold!r}")
        if isinstance(self.calibration_images, bool) or not isinstance(self.calibration_images, int) \
                or self.calibration_images < 1:
            raise UsageError(f"calibration_images must be a positive integer, but got {self.calibration_images!r}")


@dataclass
class Quantized:
    """A quantized model and the record its checkpoint keeps (see the module docstring)."""

    model: nn.Module            # ternary, binary: the space's module with baked weights; int8: the converted module
    float_model: nn.Module      # what the checkpoint's state_dict holds: the baked module, or int8's float input
    record: dict[str, Any]


# -- which layers ------------------------------------------------------------------------------------------------
def weight_layers(model: nn.Module, shape: Mapping[str, int]) -> list[str]:
    """The conv and linear layers in the order one image meets them (a forward pass on a blank image): the order
    of registration need not be the order of computation."""
    order: list[str] = []
    names = {m: n for n, m in model.named_modules() if isinstance(m, _QUANTIZED_TYPES)}
    hooks = [m.register_forward_hook(lambda mod, _in, _out: order.append(names[mod]) if names[mod] not in order
                                     else None) for m in names]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, shape["in_channels"], shape["image_size"], shape["image_size"], device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return order + sorted(n for n in names.values() if n not in order)  # never called: quantized all the same


def split_layers(model: nn.Module, shape: Mapping[str, int], first_last: bool) -> tuple[list[str], list[str]]:
    """(quantized, kept in full precision): TTQ keeps the first conv and the last linear layer."""
    layers = weight_layers(model, shape)
    if first_last:
        return layers, []
    modules = dict(model.named_modules())
    convs = [n for n in layers if not isinstance(modules[n], nn.Linear)]
    linears = [n for n in layers if isinstance(modules[n], nn.Linear)]
    kept = ([convs[0]] if convs else []) + ([linears[-1]] if linears else [])
    return [n for n in layers if n not in kept], kept


# -- ternary and binary weights ----------------------------------------------------------------------------------
class _TernaryFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor, t: float) -> torch.Tensor:
        delta = t * w.detach().abs().max()
        pos, neg = w > delta, w < -delta
        ctx.save_for_backward(pos, neg, wp, wn)
        return ternary_weights(torch.where(pos, 1, torch.where(neg, -1, 0)).to(torch.int8), wp, wn)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        pos, neg, wp, wn = ctx.saved_tensors
        # TTQ's scaled straight-through estimator: each side's gradient scaled by its own scale.
        grad_w = torch.where(pos, wp * g, torch.where(neg, wn * g, g))
        # The paper's scale gradients are sums over the side's weights. TTQ trained with Adam, whose step does not
        # depend on a gradient's size; under SGD (the trainer's default and half of what a search draws) a sum over
        # thousands of weights moves a scalar thousands of times further than any one weight. On a 9-layer ResNet
        # at lr 0.1 the scales crossed zero within an epoch, flipping their layers' signs, and the network fell to
        # chance (issue 26, item 3). The mean keeps the step of a scale that of one weight; Adam's is unchanged.
        grad_wp = (g * pos).sum() / pos.sum().clamp_min(1)
        grad_wn = -(g * neg).sum() / neg.sum().clamp_min(1)
        return grad_w, grad_wp.reshape(wp.shape), grad_wn.reshape(wn.shape), None


class _BinaryFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return binary_weights((w >= 0).to(torch.int8), w.detach().abs().mean())

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        return g * (w.abs() <= 1)  # hard-tanh straight-through: a latent weight far out no longer moves


class Ternary(nn.Module):
    """A parametrization: the latent weight in, its TTQ ternary weight out; holds the learned Wp and Wn."""

    def __init__(self, weight: torch.Tensor, threshold: float) -> None:
        super().__init__()
        self.threshold = float(threshold)
        w = weight.detach()
        delta = self.threshold * w.abs().max()
        self.wp = nn.Parameter(_mean_or(w[w > delta], 1.0, w))
        self.wn = nn.Parameter(_mean_or(-w[w < -delta], 1.0, w))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return _TernaryFn.apply(w, self.wp, self.wn, self.threshold)

    def codes_and_scales(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = w.detach()
        delta = self.threshold * w.abs().max()
        codes = torch.where(w > delta, 1, torch.where(w < -delta, -1, 0)).to(torch.int8)
        return codes, torch.stack([self.wp.detach(), self.wn.detach()]).float().cpu()


class Binary(nn.Module):
    """A parametrization: the latent weight in, mean|w| x sign(w) out."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return _BinaryFn.apply(w)

    def codes_and_scales(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = w.detach()
        return (w >= 0).to(torch.int8), w.abs().mean().reshape(1).float().cpu()


def _mean_or(values: torch.Tensor, default: float, like: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else torch.tensor(default, dtype=like.dtype, device=like.device)


def ternary_weights(codes: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor) -> torch.Tensor:
    """Codes -1/0/+1 to -Wn/0/+Wp; the one dequantization, so training, baking and loading agree to the bit."""
    zero = torch.zeros((), dtype=wp.dtype, device=wp.device)
    return torch.where(codes > 0, wp, torch.where(codes < 0, -wn, zero))


def binary_weights(codes: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Codes 1/0 to +alpha/-alpha."""
    return torch.where(codes > 0, alpha, -alpha)


def attach(model: nn.Module, method: str, names: list[str], threshold: float = DEFAULT_THRESHOLD) -> None:
    """Make the layers `names` of `model` compute with ternary or binary weights from now on (trainable)."""
    modules = dict(model.named_modules())
    for name in names:
        module = modules[name]
        p = Ternary(module.weight, threshold) if method == "ternary" else Binary()
        # unsafe: the parametrization returns what it is given in shape and dtype; skips a trial forward per layer
        parametrize.register_parametrization(module, "weight", p, unsafe=True)


def bake(model: nn.Module, names: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Remove the parametrizations, leaving each layer's weight the dequantized codes; returns (codes, scales)."""
    modules = dict(model.named_modules())
    codes, scales = {}, {}
    for name in names:
        module = modules[name]
        p = module.parametrizations.weight[0]
        c, s = p.codes_and_scales(module.parametrizations.weight.original)
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        with torch.no_grad():
            module.weight.copy_(dequantize(c, s.to(module.weight.device)))
        codes[name], scales[name] = c.cpu(), s
    return codes, scales


def recalibrate_batch_norm(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> None:
    """Measure every batch norm's running mean and variance again over `images` (normalised), as the network now
    computes: the statistics a model was trained with belong to its full-precision weights, and those of a fine-tune
    are running averages over weights that kept changing. Only the batch norms run in training mode, so dropout
    stays off as it is at evaluation."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    was_training = model.training
    device = next(model.parameters()).device
    momenta = [m.momentum for m in norms]
    model.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every image counts alike
            m.train()
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                model(images[start:start + batch_size].to(device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)


def dequantize(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    if len(scales) == 2:
        return ternary_weights(codes, scales[0], scales[1])
    return binary_weights(codes, scales[0])


# -- packing -----------------------------------------------------------------------------------------------------
def pack(codes: torch.Tensor, method: str) -> torch.Tensor:
    """Codes as a flat uint8 tensor: 4 ternary (0: 0, 1: +, 2: -) or 8 binary codes a byte, low bits first."""
    flat = codes.reshape(-1).to(torch.int16)
    per, bits = (4, 2) if method == "ternary" else (8, 1)
    values = torch.where(flat < 0, 2, flat) if method == "ternary" else flat
    values = torch.cat([values, values.new_zeros(-len(values) % per)]).reshape(-1, per)
    shifts = torch.arange(per, dtype=torch.int16) * bits
    return (values << shifts).sum(1).to(torch.uint8)


def unpack(packed: torch.Tensor, method: str, shape: tuple[int, ...]) -> torch.Tensor:
    per, bits = (4, 2) if method == "ternary" else (8, 1)
    shifts = torch.arange(per, dtype=torch.int16) * bits
    values = ((packed.to(torch.int16).unsqueeze(1) >> shifts) & ((1 << bits) - 1)).reshape(-1)[:math.prod(shape)]
    if method == "ternary":
        values = torch.where(values == 2, -1, values)
    return values.to(torch.int8).reshape(shape)


# -- sizes -------------------------------------------------------------------------------------------------------
def state_bytes(state: Mapping[str, Any]) -> int:
    """Bytes of a state_dict's tensors at their dtypes (quantized tensors: one byte a value plus their scales and
    zero points, 4 bytes each per channel or per tensor; packed parameters: what they hold)."""
    total = 0
    for value in state.values():
        total += _bytes(value)
    return total


def _bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        if value.is_quantized:
            channels = (len(value.q_per_channel_scales()) if value.qscheme() in
                        (torch.per_channel_affine, torch.per_channel_symmetric) else 1)
            return value.numel() * value.element_size() + 8 * channels
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_bytes(v) for v in value)
    if hasattr(value, "__getstate__") and type(value).__name__.endswith("PackedParamsBase"):
        return _bytes(value.__getstate__())
    return 0


# -- the whole step ----------------------------------------------------------------------------------------------
def quantize_model(model: nn.Module, config: QuantizeConfig, shape: Mapping[str, int], *,
                   finetune: Callable[[nn.Module], Mapping[str, Any]] | None = None,
                   calibration: torch.Tensor | None = None) -> Quantized:
    """Quantize a trained `model` (changed in place for ternary and binary).

    `finetune(model)` trains the parametrized model (ternary, binary) and returns what the record keeps of it
    (epochs, hparams, history); `calibration` holds normalised float training images: int8's ranges come from them,
    and ternary and binary models' batch-norm statistics (`recalibrate_batch_norm`).
    """
    full_bytes = state_bytes(model.state_dict())
    if calibration is None:
        raise ValueError(f"{config.method} needs calibration images")
    if config.method == "int8":
        return _int8(model, calibration, shape, full_bytes)
    if finetune is None:
        raise ValueError(f"{config.method} needs a fine-tune")
    names, kept = split_layers(model, shape, config.first_last)
    if not names:
        raise UsageError(f"the model has no conv or linear layer left to quantize once the first conv and the "
                         f"last linear layer are kept in full precision (layers: {', '.join(kept) or 'none'})")
    attach(model, config.method, names, config.threshold)
    tuned = dict(finetune(model))
    codes, scales = bake(model, names)
    recalibrate_batch_norm(model, calibration)
    model.eval()
    state = model.state_dict()
    modules = dict(model.named_modules())
    layers, packed = {}, {}
    for name in names:
        packed[name] = pack(codes[name], config.method)
        layers[name] = {"kind": "linear" if isinstance(modules[name], nn.Linear) else "conv",
                        "weights": codes[name].numel(), "shape": list(codes[name].shape),
                        "scales": [float(s) for s in scales[name]]}
        if config.method == "ternary":
            layers[name]["zero_fraction"] = float((codes[name] == 0).float().mean())
    quantized_bytes = sum(int(p.numel()) for p in packed.values()) + sum(4 * len(s) for s in scales.values())
    rest = state_bytes({k: v for k, v in state.items() if k not in {f"{n}.weight" for n in names}})
    record: dict[str, Any] = {
        "method": config.method, "bits": BITS[config.method], "layers": layers, "full_precision_layers": kept,
        "codes": packed, "scales": scales, "packed_bytes": quantized_bytes + rest, "full_precision_bytes": full_bytes,
        "finetune": tuned, "batch_norm_images": len(calibration)}
    if config.method == "ternary":
        zeros = sum(int((c == 0).sum()) for c in codes.values())
        record["zero_fraction"] = zeros / sum(c.numel() for c in codes.values())
        record["threshold"] = float(config.threshold)
    record["ratio"] = full_bytes / record["packed_bytes"]
    return Quantized(model, model, record)


# -- int8 --------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_ao() -> Iterator[None]:
    # torch.ao.quantization warns on import and on every observer that it is deprecated: said once, in the docstring
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\.ao\..*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*reduce_range.*")
        yield


def int8_engine() -> str:
    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm", "qnnpack"):
        if name in engines:
            return name
    raise UsageError(f"this PyTorch has no quantized backend for int8 (supported engines: {engines})")


def _prepare(model: nn.Module, shape: Mapping[str, int], engine: str) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = engine
    example = (torch.zeros(1, shape["in_channels"], shape["image_size"], shape["image_size"]),)
    try:
        return prepare_fx(model.to("cpu").eval(), get_default_qconfig_mapping(engine), example)
    except Exception as e:  # torch.fx raises many types for a model it cannot trace
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"int8: torch.fx cannot trace this model ({type(e).__name__}: {first}); ternary and "
                         f"binary quantize any model") from None


def _int8(model: nn.Module, calibration: torch.Tensor, shape: Mapping[str, int], full_bytes: int) -> Quantized:
    from torch.ao.quantization.quantize_fx import convert_fx

    engine = int8_engine()
    with _quiet_ao():
        prepared = _prepare(copy.deepcopy(model), shape, engine)  # prepare_fx fuses batch norm into its copy
        with torch.no_grad():
            prepared(calibration.to("cpu"))
        observers = {k: v.detach().clone() for k, v in prepared.state_dict().items() if ".activation_post" in k
                     or k.startswith("activation_post")}
        converted = convert_fx(prepared).eval()
    packed = state_bytes(converted.state_dict())
    # torch.ao's quantized conv and linear modules, fused ones (ConvReLU2d) included, hold their weight behind a
    # method
    quantized = [n for n, m in converted.named_modules() if ".quantized" in type(m).__module__
                 and callable(getattr(m, "weight", None))]
    record = {"method": "int8", "bits": 8, "engine": engine, "observers": observers,
              "layers": {n: {"kind": "linear" if "Linear" in type(m).__name__ else "conv",
                             "weights": m.weight().numel()}
                         for n, m in converted.named_modules() if n in quantized},
              "calibration_images": len(calibration), "packed_bytes": packed, "full_precision_bytes": full_bytes,
              "ratio": full_bytes / packed}
    return Quantized(converted, model, record)


# -- reading a checkpoint's record -------------------------------------------------------------------------------
def apply_quantization(model: nn.Module, record: Mapping[str, Any], shape: Mapping[str, int], where: str
                       ) -> nn.Module:
    """The model a quantized checkpoint computes with: `model` (its state_dict loaded) checked against the codes
    (ternary, binary), or converted to int8 from the recorded observers."""
    method = record.get("method") if isinstance(record, Mapping) else None
    if method not in METHODS:
        raise CheckpointError(f"{where}: quantization method {method!r} is not one of {', '.join(METHODS)}")
    tensors = _record_tensors(record)
    if record.get("sha256") != _digest(tensors):
        raise CheckpointError(f"{where}: its quantization codes are damaged or were altered (SHA-256 mismatch)")
    if method == "int8":
        return _rebuild_int8(model, record, shape, where)
    modules = dict(model.named_modules())
    for name, packed in record["codes"].items():
        module = modules.get(name)
        if module is None or not isinstance(module, _QUANTIZED_TYPES):
            raise CheckpointError(f"{where}: quantized layer {name!r} is not a conv or linear layer of the model")
        weight = module.weight.detach()
        codes = unpack(packed, method, tuple(weight.shape))
        if not torch.equal(dequantize(codes, record["scales"][name].to(weight.dtype)), weight):
            raise CheckpointError(f"{where}: the weights of {name!r} are not its {method} codes times its scales")
    return model


def _rebuild_int8(model: nn.Module, record: Mapping[str, Any], shape: Mapping[str, int], where: str) -> nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx

    engine = record.get("engine")
    if engine not in torch.backends.quantized.supported_engines:
        raise CheckpointError(f"{where}: its int8 model needs the quantized backend {engine!r}, which this PyTorch "
                              f"lacks (it has {', '.join(torch.backends.quantized.supported_engines)})")
    with _quiet_ao():
        prepared = _prepare(model, shape, engine)
        result = prepared.load_state_dict(record["observers"], strict=False)
        if result.unexpected_keys:
            raise CheckpointError(f"{where}: its int8 observers do not fit the model (first "
                                  f"{result.unexpected_keys[0]!r}); was it written by another torch?")
        return convert_fx(prepared).eval()


def _record_tensors(record: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for group in ("codes", "scales", "observers"):
        for name, t in (record.get(group) or {}).items():
            out[f"{group}/{name}"] = t
    return out


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    from tpsearch.checkpoints._digest import weights_sha256

    return weights_sha256(tensors)


def sealed(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its digest, ready for a checkpoint."""
    return {**record, "sha256": _digest(_record_tensors(record))}


def summary(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The record's figures without its tensors: what `export` and `evaluate` report."""
    if not record:
        return None
    keep = ("method", "bits", "threshold", "zero_fraction", "packed_bytes", "full_precision_bytes", "ratio",
            "full_precision", "full_precision_layers", "engine", "calibration_images")
    out = {k: record[k] for k in keep if k in record}
    out["quantized_layers"] = len(record.get("layers") or {})
    out["quantized_weights"] = sum(int(v.get("weights", 0)) for v in (record.get("layers") or {}).values())
    if "finetune" in record:
        out["finetune_epochs"] = record["finetune"].get("epochs")
    return out
