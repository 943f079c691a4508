"""Image folders as a data set: decoding, the crop, the cache, stratified splits, skipped files, one-line errors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tpsearch.cli import main
from tpsearch.trainers import DataError, _data, canonical_dataset, dataset_label, dataset_shape, load_dataset
from tpsearch.testing.trainers import write_image_folder


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "pics"
    return root, write_image_folder(root, classes=12, per_class=10)


def _fresh(name: str, data_dir: Path, **kw) -> _data.Dataset:
    """A load that the per-process cache does not answer: only the disk cache may."""
    _data._load_cached.cache_clear()
    return load_dataset(name, data_dir, **kw)


def test_a_folder_loads_as_a_stratified_data_set_with_its_unreadable_files_counted(folder, tmp_path, capsys,
                                                                                    monkeypatch):
    root, cut = folder
    monkeypatch.chdir(tmp_path)
    data = _fresh("imagefolder:pics@16", tmp_path / "data")
    assert data.name == f"imagefolder:{root}@16"  # absolute: a worker elsewhere finds the same folder
    assert data.classes == [f"class_{c:02d}" for c in range(12)]
    assert (data.in_channels, data.image_size, data.num_classes) == (3, 16, 12)
    assert data.train_x.dtype == torch.uint8 and data.default_padding == 2 and data.flip
    assert data.skipped == tuple(cut) and len(cut) == 1  # the truncated file; the text file is no image at all
    assert sum(data.sizes().values()) == 12 * 10 - 1
    for split in (data.train_y, data.val_y, data.test_y):  # stratified: every class in every split
        assert set(split.tolist()) == set(range(12))
    # 2 of each class's 10 images to test (class 00 has 9: round(1.8) = 2), 1 of the rest to validation.
    assert torch.bincount(data.test_y).tolist() == [2] * 12 and data.sizes()["val"] == 12
    err = capsys.readouterr().err
    assert err.count("skipped 1 of 120 images") == 1 and cut[0] in err

    again = _fresh(f"imagefolder:{root}@16", tmp_path / "data", seed=0)  # from the disk cache: decoded once
    assert torch.equal(again.train_x, data.train_x) and again.skipped == data.skipped
    assert capsys.readouterr().err == ""
    other = _fresh(f"imagefolder:{root}@16", tmp_path / "data", seed=1)
    assert torch.equal(other.test_x, data.test_x)  # the test split moves with no seed
    assert not torch.equal(other.val_x, data.val_x)
    assert len(list((tmp_path / "data" / "imagefolder").iterdir())) == 1

    # A changed folder is decoded again, and the stale cache goes.
    write = root / "class_03" / "extra.png"
    Image.fromarray(np.zeros((5, 9, 3), np.uint8)).save(write)
    grown = _fresh(f"imagefolder:{root}@16", tmp_path / "data")
    assert sum(grown.sizes().values()) == 12 * 10
    assert len(list((tmp_path / "data" / "imagefolder").iterdir())) == 1


def test_the_shorter_side_is_resized_then_the_centre_cropped(tmp_path):
    root = tmp_path / "shapes"
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)
    wide[:, 20:40] = (0, 200, 0)  # the middle third: all that a centre crop of a 3:1 image keeps
    wide[:, 40:] = (0, 0, 255)
    for name, image in (("a", Image.fromarray(wide)), ("b", Image.new("L", (7, 30), 90))):
        (root / name).mkdir(parents=True)
        for i in range(3):
            image.save(root / name / f"{i}.png")
    data = _fresh(f"imagefolder:{root}@8", tmp_path / "data")
    images = torch.cat([data.train_x, data.val_x, data.test_x])
    labels = torch.cat([data.train_y, data.val_y, data.test_y])
    green = images[labels == 0][:, :, 1:-1, 1:-1]  # inside the edge, where bicubic blends in no neighbour
    assert (green[:, 1] >= 195).all() and (green[:, 0] <= 5).all() and (green[:, 2] <= 5).all()
    assert (images[labels == 1] == 90).all()  # grayscale becomes three equal channels


def test_the_shape_is_known_from_the_listing_alone(folder, tmp_path):
    root, _ = folder
    assert dataset_shape(f"imagefolder:{root}") == {"num_classes": 12, "in_channels": 3, "image_size": 32}
    assert dataset_shape(f"imagefolder:{root}@64")["image_size"] == 64
    assert not (tmp_path / "data").exists()  # nothing decoded, nothing cached
    assert dataset_shape("digits") == {"num_classes": 10, "in_channels": 1, "image_size": 8}
    assert canonical_dataset(f"imagefolder:{root}/@24") == f"imagefolder:{root}@24"
    assert dataset_label(f"imagefolder:{root}@24") == "pics-24px" and dataset_label("cifar100") == "cifar100"
    assert canonical_dataset("imagefolder:/data/a@b") == "imagefolder:/data/a@b@32"  # '@' then no digits: a path


@pytest.mark.parametrize("make, message", [
    (lambda r: r.mkdir(), "has no class sub-folders"),
    (lambda r: (r / "only").mkdir(parents=True), "has only the class 'only'"),
    (lambda r: ((r / "a").mkdir(parents=True), (r / "b").mkdir(), (r / "a" / "x.png").write_bytes(b"")),
     "class folder 'b' holds no images"),
    (lambda r: ((r / "a").mkdir(parents=True), (r / "b").mkdir(), (r / "a" / "x.png").write_bytes(b"x"),
                (r / "b" / "y.jpg").write_bytes(b"y")), "no image of class 'a' can be read (2 images skipped"),
    (lambda r: None, "is not a folder"),
])
def test_a_folder_that_is_no_data_set_is_one_clear_error(tmp_path, make, message):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(DataError) as info:
        _fresh(f"imagefolder:{root}", tmp_path / "data")
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("spec, message", [("imagefolder", "needs its folder"), ("imagefolder:", "names no folder"),
                                           ("imagefolder:x@0", "must be 1..4096"), ("cifar11", "imagefolder:PATH")])
def test_a_malformed_name_is_refused(spec, message):
    with pytest.raises(DataError, match=message):
        canonical_dataset(spec)


def test_describe_and_train_take_a_folder_and_refuse_a_side_the_space_cannot_take(folder, tmp_path, capsys):
    root, _ = folder
    assert main(["describe", "--preset", "tiny", "--dataset", f"imagefolder:{root}@16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["num_classes"], out["image_size"]) == (12, 16)
    # tpsnet's three layers do not fit a 4x4 image: the space's own one-line error, exit 2
    assert main(["describe", "--preset", "tpsnet", "--dataset", f"imagefolder:{root}@4"]) == 2
    assert "kernel 3 is larger than" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["describe", "--preset", "tiny", "--dataset", "imagefolder:"])
    assert info.value.code == 2 and "names no folder" in capsys.readouterr().err
    assert main(["describe", "--preset", "tiny", "--dataset", f"imagefolder:{tmp_path}/none"]) == 2
    assert capsys.readouterr().err.count("\n") == 1

    code = main(["train", "--preset", "tiny", "--dataset", f"imagefolder:{root}@16", "--data-dir",
                 str(tmp_path / "data"), "--epochs", "1", "--batch-size", "32", "--no-progress", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= out["val_accuracy"] <= 1.0


def _write_cifar100(root: Path, per_split: int = 40) -> None:
    """cifar-100-python/ as the Toronto archive holds it: pickled dicts with fine and coarse labels."""
    import pickle

    rng = np.random.default_rng(0)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        batch = {"data": rng.integers(0, 256, (per_split, 3072), dtype=np.uint8),
                 "fine_labels": [int(v) for v in rng.integers(0, 100, per_split)],
                 "coarse_labels": [int(v) for v in rng.integers(0, 20, per_split)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"fine_{i}" for i in range(100)],
                     "coarse_label_names": [f"coarse_{i}" for i in range(20)]}, f, protocol=2)


def test_cifar100_loads_and_trains(tmp_path, capsys):
    _write_cifar100(tmp_path)
    data = _fresh("cifar100", tmp_path, download=False)
    assert data.shape == dataset_shape("cifar100") == {"num_classes": 100, "in_channels": 3, "image_size": 32}
    assert data.classes[7] == "fine_7" and data.sizes() == {"train": 36, "val": 4, "test": 40}
    assert main(["train", "--preset", "tiny", "--dataset", "cifar100", "--data-dir", str(tmp_path), "--no-download",
                 "--epochs", "1", "--batch-size", "32", "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["params"] > 0


def test_a_cache_that_cannot_be_written_is_only_slower(folder, tmp_path, capsys):
    root, _ = folder
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data directory should be")
    data = _fresh(f"imagefolder:{root}@8", blocked)
    assert data.num_classes == 12 and "cannot cache" in capsys.readouterr().err
    assert os.path.isfile(blocked)
