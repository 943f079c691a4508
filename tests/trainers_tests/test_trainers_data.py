"""Data sets: the CIFAR reader on files in the real format, the splits, the offline sets, the one-line errors."""
from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tpsearch.trainers import DATASETS, SHAPES, DataError, Dataset, _data, load_dataset, make_synthetic


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in x}


def _check_cifar(data: Dataset, written: dict[str, np.ndarray]) -> None:
    n = len(written["train_y"])
    assert data.name == "cifar10" and data.num_classes == 10 and data.classes[0] == "airplane"
    assert (data.in_channels, data.image_size) == (3, 32)
    assert data.train_x.dtype == torch.uint8 and data.train_y.dtype == torch.int64
    assert len(data.val_y) == n // 10 and len(data.train_y) + len(data.val_y) == n
    # Train and validation partition the training batches, pixels and labels intact.
    got = {img.numpy().tobytes(): int(lab) for img, lab in zip(torch.cat([data.train_x, data.val_x]),
                                                                torch.cat([data.train_y, data.val_y]))}
    want = {img.tobytes(): int(lab) for img, lab in zip(written["train_x"], written["train_y"])}
    assert got == want
    assert np.array_equal(data.test_x.numpy(), written["test_x"])
    assert np.array_equal(data.test_y.numpy(), written["test_y"])
    assert data.default_padding == 4 and data.flip is True
    # Statistics are measured on the training split, per channel, on the 0..1 scale.
    want_mean = (data.train_x.double() / 255).mean(dim=(0, 2, 3))
    assert torch.allclose(torch.tensor(data.mean, dtype=torch.float64), want_mean, atol=1e-5)


def test_cifar10_from_extracted_folder(cifar_dir):
    root, written = cifar_dir
    _check_cifar(load_dataset("cifar10", root, download=False), written)


def test_cifar10_from_archive_extracts_it(cifar_archive):
    root, written = cifar_archive
    data = load_dataset("cifar10", root, seed=1, download=False)
    _check_cifar(data, written)
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".extract-")]


def test_split_is_seeded_and_loading_is_cached(cifar_dir):
    root, _ = cifar_dir
    a = load_dataset("cifar10", root, seed=0, download=False)
    assert load_dataset("cifar10", str(root), seed=0, download=False) is a  # one load per process
    b = load_dataset("cifar10", root, seed=1, download=False)
    assert _rows(a.val_x) != _rows(b.val_x)
    assert _rows(a.test_x) == _rows(b.test_x)


def test_missing_cifar_names_the_directory_and_the_files(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert "cifar-10-python.tar.gz" in message and "cifar-10-batches-py/" in message
    assert "--dataset digits" in message and "\n" not in message


def test_a_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    # A URL that fails at once and offline; the folders the download would have created are not left empty.
    missing = dataclasses.replace(_data._CIFAR["cifar10"], url=(tmp_path / "absent.tar.gz").as_uri())
    monkeypatch.setitem(_data._CIFAR, "cifar10", missing)
    with pytest.raises(DataError, match="download failed"):
        load_dataset("cifar10", tmp_path / "data" / "cifar")
    assert list(tmp_path.iterdir()) == []


def test_each_data_set_has_the_shape_known_without_loading_it(cifar_dir):
    assert set(SHAPES) == set(DATASETS) - {"imagefolder"}  # an image folder's shape is its folder's
    assert load_dataset("cifar10", cifar_dir[0], download=False).shape == SHAPES["cifar10"]
    assert load_dataset("digits").shape == SHAPES["digits"]
    for name in ("synthetic", "synthetic-hard"):
        assert load_dataset(name, synthetic_size=100).shape == SHAPES[name]


def test_corrupt_archive_is_one_clear_error(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(gzip.compress(b"not a tar archive at all" * 100)[:200])
    with pytest.raises(DataError, match="corrupt") as info:
        load_dataset("cifar10", tmp_path, download=False)
    assert "cifar-10-python.tar.gz" in str(info.value) and str(tmp_path) in str(info.value)
    assert not (tmp_path / "cifar-10-batches-py").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "persistent_id", "wrong_shape", "missing_file"])
def test_corrupt_batch_file_is_one_clear_error(cifar_dir, damage):
    root, _ = cifar_dir
    path = root / "cifar-10-batches-py" / "data_batch_3"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
    elif damage == "persistent_id":  # pickle's message for this opcode spans two lines
        path.write_bytes(b"P" + np.random.default_rng(0).bytes(2999))
    elif damage == "wrong_shape":
        with open(path, "wb") as f:
            pickle.dump({"data": np.zeros((4, 100), np.uint8), "labels": [0, 1, 2, 3]}, f, protocol=2)
    else:
        path.unlink()
    with pytest.raises(DataError, match="corrupt") as info:
        load_dataset("cifar10", root, download=False)
    assert "data_batch_3" in str(info.value) and "\n" not in str(info.value)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickle_reader_refuses_code(cifar_dir):
    root, _ = cifar_dir
    marker = root / "pwned"
    with open(root / "cifar-10-batches-py" / "data_batch_2", "wb") as f:
        pickle.dump({"data": _Payload(marker), "labels": []}, f, protocol=2)
    with pytest.raises(DataError, match="refusing the global"):
        load_dataset("cifar10", root, download=False)
    assert not marker.exists()


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError) as info:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(info.value)
    assert "imagefolder:PATH[@SIDE]" in str(info.value)


def test_digits_offline():
    data = load_dataset("digits")
    assert (data.in_channels, data.image_size, data.num_classes) == (1, 8, 10)
    assert data.sizes() == {"train": 1295, "val": 143, "test": 359}
    assert int(data.train_x.max()) == 255 and data.train_x.dtype == torch.uint8
    assert data.default_padding == 1 and data.flip is False  # a mirrored digit is no digit
    other = load_dataset("digits", seed=3)
    assert torch.equal(other.test_x, data.test_x) and not torch.equal(other.val_x, data.val_x)


def test_synthetic_is_deterministic_and_sized():
    a = make_synthetic(200, num_classes=4, image_size=12, channels=2)
    b = make_synthetic(200, num_classes=4, image_size=12, channels=2)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert (a.in_channels, a.image_size, a.num_classes) == (2, 12, 4)
    assert a.sizes() == {"train": 180, "val": 20, "test": 40}
    assert len(load_dataset("synthetic", synthetic_size=300).train_y) == 270
    with pytest.raises(DataError, match="size must be an integer of at least 2"):
        make_synthetic(1)


def test_synthetic_hard_is_registered_offline_and_sized():
    data = load_dataset("synthetic-hard")
    assert "synthetic-hard" in DATASETS and data.name == "synthetic-hard"
    assert (data.in_channels, data.image_size, data.num_classes) == (3, 16, 10)
    assert data.sizes() == {"train": 9000, "val": 1000, "test": 2000}  # one validation image is 0.1%
    assert load_dataset("synthetic-hard", synthetic_size=500).sizes() == {"train": 450, "val": 50, "test": 100}
    assert torch.equal(make_synthetic(300, image_size=16, detail=8, prototypes=4, shift=3, contrast=200.0,
                                      noise=60.0, name="synthetic-hard").train_x,
                       make_synthetic(300, image_size=16, detail=8, prototypes=4, shift=3, contrast=200.0,
                                      noise=60.0, name="synthetic-hard").train_x)
    with pytest.raises(DataError, match="synthetic noise must be a number of uint8 levels in 0..255, but got -1"):
        make_synthetic(100, noise=-1)


def test_synthetic_hard_leaves_room_between_architectures():
    """The reason it exists: a small and a larger network, trained alike, end far apart (on digits most networks
    reach 98-100%). Seeded and bit-reproducible on the CPU, so the margin is no matter of luck."""
    from tpsearch import spaces
    from tpsearch.trainers import TrainConfig, train

    data = load_dataset("synthetic-hard")
    space = spaces.get("resnet_5m")
    accuracy = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a search's trial has: on a shared CPU, more threads were measured slower
    try:
        for layers, channels in ((1, 8), (2, 16)):
            torch.manual_seed(0)
            model = space.build({"layers": layers, "blocks": [1] * layers, "channels": channels}, **data.shape)
            result = train(model, data, TrainConfig(epochs=3, train_images=1000, device="cpu"))
            accuracy[layers] = result.val_accuracy
    finally:
        torch.set_num_threads(threads)
    assert accuracy[2] > accuracy[1] + 0.08, accuracy  # measured: 0.074 and 0.215
