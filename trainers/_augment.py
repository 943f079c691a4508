"""Batched augmentation on the training device: random crop with padding, horizontal flip, normalisation, mixup.

The data set stays on the device as uint8, padded once (and mirrored once when flips are on). Each epoch draws a
crop offset and a mirror bit per image, groups the images by that choice and copies each group's windows with one
slicing gather, so an epoch costs at most (2 * padding + 1)^2 * 2 tensor operations whatever its size. A batch is
then a row gather from that augmented copy and one scale-and-shift: no per-image Python and no PIL, so the model,
not the data, sets the pace. (A per-pixel gather with precomputed index grids measured 2.5x slower on the CPU.)
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

PAD_MODES = ("reflect", "zero")
LAST_BATCH = ("drop", "keep", "fill")  # what `DeviceLoader` does with the images left after the full batches


def pad_images(x: torch.Tensor, padding: int, mode: str = "reflect") -> torch.Tensor:
    """`x` [N, C, H, W] padded by `padding` pixels on every side, with zeros or by reflection (any dtype)."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, but got {mode!r}")
    if padding < 0:
        raise ValueError(f"padding must be at least 0, but got {padding}")
    if padding == 0:
        return x
    if mode == "zero":
        return F.pad(x, (padding,) * 4)
    h, w = x.shape[-2:]
    if padding >= min(h, w):
        raise ValueError(f"reflect padding must be smaller than the image side ({min(h, w)}), but got {padding}")
    # Reflection as an index map works on uint8 and needs no float copy of the data set.
    rows = _reflect_index(h, padding, x.device)
    cols = _reflect_index(w, padding, x.device)
    return x.index_select(2, rows).index_select(3, cols)


def _reflect_index(n: int, padding: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(-padding, n + padding, device=device).abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def normalizer(mean: Sequence[float], std: Sequence[float], device: torch.device | str
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) such that `uint8 * scale + shift` is `(uint8 / 255 - mean) / std`, shaped [1, C, 1, 1]."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1 / (255 * std_t), -mean_t / std_t


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 [N, C, H, W] to float32, normalised per channel, without augmentation (evaluation)."""
    scale, shift = normalizer(mean, std, x.device)
    # In place on the fresh float copy: measured several times faster on the CPU than a broadcasting addcmul.
    return x.float().mul_(scale).add_(shift)


class DeviceLoader:
    """Shuffled, augmented, normalised batches from a uint8 data set on its device; one epoch per iteration.

    The permutation, crop offsets (0..2*padding in each direction) and mirror bits come from a CPU generator seeded
    with `seed`, so the batches are the same on every device. Iterating yields (float32 images [B, C, H, W], int64
    labels [B]), in channels_last memory format when asked.

    `last` says what becomes of the images left after the full batches of an epoch: "drop" them, "keep" them as a
    smaller last batch, or "fill" that last batch up to full size with the first images of the same epoch's order
    (the trainer's choice: every image of the epoch is still seen in it, and every step has one shape, which cuDNN
    autotunes once and torch.compile compiles once; the price is fewer than a batch of images seen twice).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], padding: int = 0, pad_mode: str = "reflect", flip: bool = False,
                 last: str = "drop", seed: int = 0, channels_last: bool = False) -> None:
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor [N, C, H, W], but got {x.dtype} {tuple(x.shape)}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"need one label per image and at least one image, but got {len(x)} images and "
                             f"{len(y)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, but got {batch_size}")
        if last not in LAST_BATCH:
            raise ValueError(f"last must be one of {', '.join(LAST_BATCH)}, but got {last!r}")
        self.y = y
        self.batch_size, self.padding, self.flip, self.channels_last = batch_size, padding, flip, channels_last
        self.size = len(x)
        self.image_shape = tuple(x.shape[1:])
        # A set smaller than one batch is one batch of its size, whatever `last` says: it must still train, and
        # repeating images to fill a batch would show some several times an epoch.
        self.last = last if len(x) >= batch_size else "keep"
        self.padded = pad_images(x, padding, pad_mode).contiguous()
        # The mirrored set turns a mirrored crop into a plain window of it: no flip op per epoch.
        self.mirrored = self.padded.flip(-1).contiguous() if flip else None
        self._scale, self._shift = normalizer(mean, std, x.device)
        self._generator = torch.Generator().manual_seed(seed)
        self._buffer = torch.empty_like(x)

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        if self.last == "drop":
            return full
        if self.last == "fill":
            return full + (rest > 0)
        # A lone leftover image joins the last full batch rather than make a batch of one, which breaks batch norm.
        return full + (rest > 1 or full == 0)

    def get_rng_state(self) -> torch.Tensor:
        """The generator's state: with `set_rng_state` a resumed run draws the epochs an uninterrupted one would."""
        return self._generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self._generator.set_state(state)

    def mixup(self, images: torch.Tensor, labels: torch.Tensor, alpha: float
              ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Mixup (Zhang et al. 2018) of one batch on its device: every image blended with the image a random
        permutation of the batch pairs it with, `weight * own + (1 - weight) * partner`, one weight per batch drawn
        from Beta(alpha, alpha). Returns the mixed images, each partner's label and the weight.

        Both draws come from this loader's seeded generator (torch has no seeded Beta sampler, so the Beta draw
        takes a seed from it), so the saved generator state makes a resumed run mix exactly as an unbroken one.
        """
        seed = int(torch.randint(2**62, (1,), generator=self._generator))
        weight = random.Random(seed).betavariate(alpha, alpha)
        order = torch.randperm(len(labels), generator=self._generator).to(images.device, non_blocking=True)
        # In place on the fresh product: the batch's memory format (channels_last on CUDA) is kept.
        mixed = images.mul(weight).add_(images.index_select(0, order), alpha=1 - weight)
        return mixed, labels.index_select(0, order.to(labels.device)), weight

    @property
    def images_per_epoch(self) -> int:
        """Distinct images an epoch shows (a filled last batch's repeats are not counted)."""
        return len(self) * self.batch_size if self.last == "drop" else self.size

    def _augment_epoch(self) -> torch.Tensor:
        """Every image cropped and maybe mirrored once, grouped by (mirror, dy, dx): row i is image `source[i]`."""
        n, g, p = self.size, self._generator, self.padding
        h, w = self.image_shape[1:]
        span = 2 * p + 1
        dy = torch.randint(span, (n,), generator=g)
        dx = torch.randint(span, (n,), generator=g)
        mirror = torch.randint(2, (n,), generator=g) if self.flip else torch.zeros(n, dtype=torch.long)
        key = (mirror * span + dy) * span + dx
        source = torch.argsort(key)
        counts = torch.bincount(key, minlength=2 * span * span).tolist()
        source_dev = source.to(self.padded.device, non_blocking=True)
        start = 0
        for k, count in enumerate(counts):
            if count == 0:
                continue
            flipped, rest = divmod(k, span * span)
            oy, ox = divmod(rest, span)
            images = self.padded
            if flipped:
                # Columns ox..ox+w of an image, read right to left, are columns 2p-ox.. of its mirror.
                images, ox = self.mirrored, 2 * p - ox
            torch.index_select(images[:, :, oy:oy + h, ox:ox + w], 0, source_dev[start:start + count],
                               out=self._buffer[start:start + count])
            start += count
        return source

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        source = self._augment_epoch()
        # Groups are contiguous, so a random order over the augmented rows is what shuffles the epoch.
        order = torch.randperm(self.size, generator=self._generator)
        rows = order.to(self._buffer.device, non_blocking=True)
        labels = self.y[source[order].to(self.y.device, non_blocking=True)]
        bs, n = self.batch_size, len(self)
        if self.last == "fill" and self.size % bs:
            # The last batch's rows wrap around to the start of this epoch's order: a full batch, no new draw.
            short = bs - self.size % bs
            rows = torch.cat([rows, rows[:short]])
            labels = torch.cat([labels, labels[:short]])
        for b in range(n):
            end = self.size if b == n - 1 and self.last == "keep" else (b + 1) * bs
            # index_select, not buffer[rows]: measured 20x faster for whole-row gathers on the CPU.
            images = self._buffer.index_select(0, rows[b * bs:end])
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)  # uint8: the cheap place to relayout
            yield images.float().mul_(self._scale).add_(self._shift), labels[b * bs:end]
