"""Which pixels does an exported model's answer depend on? SmoothGrad sensitivity maps (Smilkov et al. 2017).

    >>> from tpsearch.search import ExplainOptions, explain
    >>> result = explain(ExplainOptions("best.pt", test_images=4))  # doctest: +SKIP
    >>> [(e.source, e.predicted, round(e.probability, 3), e.map.shape) for e in result.explanations]  # doctest: +SKIP

The plain input gradient of a class logit is a noisy map: a ReLU network's gradient jumps from pixel to pixel.
SmoothGrad averages it over `samples` copies of the input with Gaussian noise added, sigma a fraction (`noise`) of
that input's range (its max - min, taken on the normalised input the model sees), which keeps the structure that
survives small perturbations. The map shown is the mean gradient's absolute value, clipped at its 99th percentile
(one extreme pixel would otherwise wash out the rest), summed over the channels and scaled to 0..1. `vanilla` is
the plain gradient through the same post-processing.

Images are image files (read with PIL, converted to the checkpoint's channels, resized to its image size) or
images of the test split of its data set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tpsearch.exceptions import UsageError

METHODS = ("smoothgrad", "vanilla")
CLIP_PERCENTILE = 0.99
_CHUNK = 64  # noisy copies per forward/backward pass: the memory of one pass stays that of a small batch


# -- the maps -----------------------------------------------------------------------------------------------------
def input_gradient(model: torch.nn.Module, x: torch.Tensor, target: int, *, samples: int = 1, noise: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The mean over `samples` noisy copies of `x` of the gradient of logit `target` with respect to the input.

    `x` is one normalised input [C, H, W] on the model's device; the noise is Gaussian with sigma `noise` times
    (max - min) of `x`, drawn on the CPU from `generator` (so a seed gives the same copies on every device). With
    `noise` 0 every copy is `x` itself: the plain gradient. The model should be in eval mode (batch norm then
    treats each copy on its own). Returns [C, H, W].
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, but got {samples}")
    sigma = noise * float(x.max() - x.min())
    total = torch.zeros_like(x, dtype=torch.float32)
    done = 0
    while done < samples:
        n = min(_CHUNK, samples - done)
        batch = x.unsqueeze(0).expand(n, *x.shape).float()
        if sigma > 0:
            eps = torch.randn((n, *x.shape), generator=generator)
            batch = batch + sigma * eps.to(x.device)
        batch = batch.detach().requires_grad_(True)
        # autograd.grad rather than backward: the parameters' .grad stay untouched.
        (grad,) = torch.autograd.grad(model(batch)[:, target].sum(), batch)
        total += grad.sum(0)
        done += n
    return total / samples


def saliency_map(gradient: torch.Tensor, *, percentile: float = CLIP_PERCENTILE) -> torch.Tensor:
    """A gradient [C, H, W] as a map [H, W] in 0..1: absolute value, clipped at its `percentile` (over all channels
    and pixels), summed over the channels, min-max normalised (all zeros where the map is flat)."""
    magnitude = gradient.detach().abs().float()
    cap = torch.quantile(magnitude.flatten().cpu(), percentile).item()
    summed = magnitude.clamp(max=cap).sum(0)
    low, high = summed.min(), summed.max()
    if high <= low:
        return torch.zeros_like(summed)
    return (summed - low) / (high - low)


def smoothgrad(model: torch.nn.Module, x: torch.Tensor, target: int, samples: int = 50, noise: float = 0.15,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The SmoothGrad map [H, W] in 0..1 of logit `target` at the normalised input `x` [C, H, W]."""
    return saliency_map(input_gradient(model, x, target, samples=samples, noise=noise, generator=generator))


# -- the command ----------------------------------------------------------------------------------------------------
@dataclass
class ExplainOptions:
    """Everything `tpsearch explain` takes; each field is the flag of the same name. Invalid values raise
    `UsageError` when the options are made. The images are `images` (files), or `index` (positions in the test
    split), or the first `test_images` of the test split: exactly one of the three."""

    checkpoint: str
    images: list[str] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    test_images: int | None = None
    dataset: str | None = None            # whose test split --index and --test-images read; None: the checkpoint's
    method: str = "smoothgrad"
    samples: int = 50                     # noisy copies per image (SmoothGrad only)
    noise: float = 0.15                   # sigma as a fraction of each input's range, max - min (SmoothGrad only)
    target: str | None = None             # a class name or index; None: each image's predicted class
    seed: int = 0                         # of the noise
    space: str | None = None              # the space of your own the checkpoint was made with (its consent)
    data_dir: str = "data"
    device: str = "auto"

    def __post_init__(self) -> None:
        sources = [bool(self.images), bool(self.index), self.test_images is not None]
        if sum(sources) != 1:
            raise UsageError("give image files, or --index I [I ...], or --test-images N (one of them)"
                             if not any(sources) else "give image files, --index or --test-images, not several")
        if self.dataset is not None and self.images:
            raise UsageError("--dataset chooses the test split that --index and --test-images read; image files "
                             "need none")
        if self.method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}, but got {self.method!r}")
        for flag, value in (("--samples", self.samples), ("--test-images", self.test_images)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{flag} must be an integer of at least 1, but got {value!r}")
        if not (isinstance(self.noise, (int, float)) and math.isfinite(self.noise) and self.noise >= 0):
            raise UsageError(f"--noise must be a finite fraction of at least 0, but got {self.noise!r}")
        negative = [i for i in self.index if i < 0]
        if negative:
            raise UsageError(f"--index must be positions in the test split (0 or more), but got {negative[0]}")


@dataclass
class Explanation:
    """One image's map and the model's answer on it."""

    source: str                 # the image file, or "test[I]" for image I of the test split
    image: np.ndarray           # uint8 [H, W, C]: what the model saw, before normalisation
    map: np.ndarray             # float32 [H, W] in 0..1
    predicted: int
    probability: float          # of the predicted class
    target: int                 # the class whose logit was explained
    target_probability: float
    label: int | None = None    # the true class, known for images of a data set


@dataclass
class ExplainResult:
    checkpoint: str
    dataset: str
    classes: list[str]
    method: str
    samples: int
    noise: float
    seed: int
    device: str
    explanations: list[Explanation]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of the result: everything but the pixels."""
        names = self.classes
        return {
            "checkpoint": self.checkpoint, "dataset": self.dataset, "method": self.method,
            "samples": self.samples if self.method == "smoothgrad" else 1,
            "noise": self.noise if self.method == "smoothgrad" else 0.0, "seed": self.seed, "device": self.device,
            "images": [{"source": e.source, "label": None if e.label is None else names[e.label],
                        "predicted": names[e.predicted], "probability": e.probability, "target": names[e.target],
                        "target_probability": e.target_probability,
                        "peak": [int(v) for v in np.unravel_index(int(np.argmax(e.map)), e.map.shape)]}
                       for e in self.explanations]}


def explain(opts: ExplainOptions) -> ExplainResult:
    """The maps of `opts`' images under the checkpoint's model: one `Explanation` per image, in the order given."""
    from tpsearch import trainers
    from tpsearch.trainers import usable_device
    from tpsearch.checkpoints._checkpoint import load_checkpoint
    from tpsearch.checkpoints._evaluate import checkpoint_data, is_int8, logits_of, normalisation

    device = usable_device(opts.device)
    model, meta = load_checkpoint(opts.checkpoint, space=opts.space)
    if is_int8(meta):
        raise UsageError(f"{str(opts.checkpoint)!r} is an int8 model, and PyTorch's int8 kernels give no input "
                         f"gradient: explain the full-precision checkpoint (export without --quantize int8)")
    shape = meta["shape"]
    recorded = meta.get("dataset") or {}
    labels: list[int | None]
    if opts.images:
        images = torch.stack([read_image(p, shape["in_channels"], shape["image_size"]) for p in opts.images])
        sources, labels = [str(p) for p in opts.images], [None] * len(opts.images)
        mean, std = normalisation(opts.checkpoint, meta)
        name, classes = str(recorded.get("name") or "?"), recorded.get("classes")
    else:
        data, mean, std = checkpoint_data(opts.checkpoint, meta, dataset=opts.dataset, data_dir=opts.data_dir)
        n = len(data.test_y)
        chosen = opts.index or list(range(min(opts.test_images or 0, n)))
        beyond = [i for i in chosen if i >= n]
        if beyond:
            raise UsageError(f"--index must be below the {n:,} images of {data.name}'s test split, but got {beyond[0]}")
        images = data.test_x[chosen]
        sources, labels = [f"test[{i}]" for i in chosen], [int(data.test_y[i]) for i in chosen]
        name = data.name
        classes = recorded.get("classes") if data.name == recorded.get("name") else None
        classes = classes or data.classes
    classes = [str(c) for c in (classes or range(shape["num_classes"]))]
    target = None if opts.target is None else class_index(opts.target, classes)

    probabilities = torch.softmax(logits_of(model, images, mean, std, device=device), dim=1)
    generator = torch.Generator().manual_seed(opts.seed)
    explanations = []
    for i in range(len(images)):
        x = trainers.normalize(images[i:i + 1].to(device), mean, std)[0]
        predicted = int(probabilities[i].argmax())
        aim = predicted if target is None else target
        if opts.method == "smoothgrad":
            heat = smoothgrad(model, x, aim, samples=opts.samples, noise=opts.noise, generator=generator)
        else:
            heat = saliency_map(input_gradient(model, x, aim))
        explanations.append(Explanation(
            source=sources[i], image=images[i].permute(1, 2, 0).numpy().copy(), map=heat.cpu().numpy(),
            predicted=predicted, probability=float(probabilities[i, predicted]), target=aim,
            target_probability=float(probabilities[i, aim]), label=labels[i]))
    return ExplainResult(checkpoint=str(opts.checkpoint), dataset=name, classes=classes, method=opts.method,
                         samples=opts.samples, noise=opts.noise, seed=opts.seed, device=str(device),
                         explanations=explanations)


def class_index(target: str, classes: list[str]) -> int:
    """A class given by name, else by index; one line naming the classes when it is neither."""
    if target in classes:
        return classes.index(target)
    try:
        index = int(target)
    except ValueError:
        index = -1
    if 0 <= index < len(classes):
        return index
    shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
    raise UsageError(f"--target must be a class name or an index 0..{len(classes) - 1}, but got {target!r}; "
                     f"classes: {shown}")


def read_image(path: str | Path, channels: int, size: int) -> torch.Tensor:
    """An image file as uint8 [channels, size, size]: grey for one channel, RGB for three, resized (with PIL's
    antialiasing) to the square the model takes, whatever its aspect."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UsageError(f"no image file at {str(path)!r}")
    if channels not in (1, 3):
        raise UsageError(f"the checkpoint's model takes {channels}-channel images; an image file gives 1 (grey) "
                         f"or 3 (RGB): use --index or --test-images")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as e:
        why = "not an image PIL can read" if isinstance(e, UnidentifiedImageError) else str(e).splitlines()[0]
        raise UsageError(f"cannot read image {str(path)!r}: {why}") from None
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1).contiguous()
