"""Batched augmentation: every crop is a real window of the padded image, flips are exact mirrors, values normalised."""
from __future__ import annotations

import pytest
import torch

from tpsearch.trainers import DeviceLoader, normalize, pad_images

# mean 0 and std 1/255 make the normalisation the identity on the 0..255 scale: outputs are the raw pixels.
RAW = {"mean": (0.0, 0.0, 0.0), "std": (1 / 255,) * 3}


def _images(n: int = 60, size: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.arange(n)


def _windows(padded: torch.Tensor, size: int) -> list[tuple[int, int, torch.Tensor]]:
    span = padded.shape[-1] - size + 1
    return [(dy, dx, padded[:, dy:dy + size, dx:dx + size]) for dy in range(span) for dx in range(span)]


@pytest.mark.parametrize("pad_mode", ["reflect", "zero"])
def test_crops_are_windows_of_the_padded_image_and_flips_are_mirrors(pad_mode):
    x, y = _images()
    padded = pad_images(x, 3, pad_mode)
    loader = DeviceLoader(x, y, batch_size=16, padding=3, pad_mode=pad_mode, flip=True, seed=1, **RAW)
    offsets, mirrored, seen = set(), 0, []
    for _ in range(3):
        for images, labels in loader:
            assert images.dtype == torch.float32 and images.shape[1:] == (3, 10, 10)
            for image, label in zip(images, labels):
                seen.append(int(label))
                matches = [(dy, dx, m) for dy, dx, w in _windows(padded[label].float(), 10)
                           for m, candidate in ((False, w), (True, w.flip(-1))) if torch.equal(candidate, image)]
                assert matches, f"image {int(label)} is no window of its padded image"
                offsets.add(matches[0][:2])
                mirrored += matches[0][2]
    assert len(offsets) > 20  # offsets spread over the 7x7 choices
    assert 0.3 < mirrored / len(seen) < 0.7
    assert len(seen) == 3 * 48  # 60 images: three full batches of 16 an epoch, the ragged rest dropped


def test_every_epoch_is_a_permutation_without_a_ragged_batch():
    x, y = _images(64)
    loader = DeviceLoader(x, y, batch_size=16, padding=2, flip=True, **RAW)
    assert len(loader) == 4 and loader.images_per_epoch == 64
    epochs = [torch.cat([labels for _, labels in loader]) for _ in range(2)]
    for labels in epochs:
        assert sorted(labels.tolist()) == list(range(64))
    assert not torch.equal(epochs[0], epochs[1])


def test_padding_values():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    zero = pad_images(x, 1, "zero")[0, 0]
    assert zero[0].tolist() == [0] * 6 and zero[1].tolist() == [0, 0, 1, 2, 3, 0]
    reflect = pad_images(x, 1, "reflect")[0, 0]
    assert reflect[0].tolist() == [5, 4, 5, 6, 7, 6] and reflect[1].tolist() == [1, 0, 1, 2, 3, 2]
    with pytest.raises(ValueError, match="smaller than the image side"):
        pad_images(x, 4, "reflect")


def test_no_flip_never_mirrors():
    x, y = _images(32, 8)
    padded = pad_images(x, 1)
    loader = DeviceLoader(x, y, batch_size=32, padding=1, flip=False, **RAW)
    images, labels = next(iter(loader))
    for image, label in zip(images, labels):
        assert any(torch.equal(w, image) for _, _, w in _windows(padded[label].float(), 8))


def test_output_is_normalised_per_channel():
    x, y = _images(40, 6)
    mean, std = (0.2, 0.5, 0.7), (0.1, 0.3, 0.25)
    loader = DeviceLoader(x, y, batch_size=40, mean=mean, std=std)  # no padding, no flip: only normalisation
    images, labels = next(iter(loader))
    want = (x[labels].double() / 255 - torch.tensor(mean).double().view(1, 3, 1, 1)) \
        / torch.tensor(std).double().view(1, 3, 1, 1)
    assert torch.allclose(images.double(), want, atol=1e-5)
    assert torch.allclose(normalize(x, mean, std).double(), (x.double() / 255 - torch.tensor(mean).double()
                          .view(1, 3, 1, 1)) / torch.tensor(std).double().view(1, 3, 1, 1), atol=1e-5)


def test_same_seed_same_batches():
    x, y = _images()
    a = [b[0] for b in DeviceLoader(x, y, batch_size=16, padding=2, flip=True, seed=5, **RAW)]
    b = [b[0] for b in DeviceLoader(x, y, batch_size=16, padding=2, flip=True, seed=5, **RAW)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_a_set_smaller_than_a_batch_still_trains():
    x, y = _images(5)
    loader = DeviceLoader(x, y, batch_size=16, padding=1, **RAW)
    assert len(loader) == 1 and next(iter(loader))[0].shape[0] == 5


def test_channels_last_batches_hold_the_same_values():
    # The CUDA path asks for channels_last; the layout must change, never the pixels.
    x, y = _images(32)
    plain = DeviceLoader(x, y, batch_size=16, padding=2, flip=True, seed=2, **RAW)
    last = DeviceLoader(x, y, batch_size=16, padding=2, flip=True, seed=2, channels_last=True, **RAW)
    for (a, la), (b, lb) in zip(plain, last):
        assert b.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b) and torch.equal(la, lb)
