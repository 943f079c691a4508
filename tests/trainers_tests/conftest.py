"""Small files in the real CIFAR python format (pickled dicts, as the Toronto archives hold them), written here."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 20


def write_cifar10(root: Path, per_batch: int = PER_BATCH, seed: int = 0) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/ under `root` with five training batches, a test batch and the meta file.

    Returns the images [n, 3, 32, 32] and labels of the training and test sets, to compare what was loaded.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written: dict[str, list[np.ndarray]] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        label = "testing batch 1 of 1" if name == "test_batch" else f"training batch {i + 1} of 5"
        batch = {"batch_label": label, "labels": labels, "data": data,
                 "filenames": [f"image_{i}_{k}.png" for k in range(per_batch)]}
        if i == 0:
            # The Python 2 originals read with encoding="bytes" give bytes keys: cover that spelling too.
            batch = {k.encode(): v for k, v in batch.items()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        split = "test" if name == "test_batch" else "train"
        written[f"{split}_x"].append(data.reshape(-1, 3, 32, 32))
        written[f"{split}_y"].append(np.array(labels))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": per_batch, "label_names": CLASSES, "num_vis": 3072}, f, protocol=2)
    return {k: np.concatenate(v) for k, v in written.items()}


def write_cifar10_archive(root: Path, per_batch: int = PER_BATCH) -> dict[str, np.ndarray]:
    """cifar-10-python.tar.gz under `root` (and nothing extracted), as the download leaves it."""
    staging = root / ".staging"
    written = write_cifar10(staging, per_batch)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for path in sorted((staging / "cifar-10-batches-py").iterdir()):
        path.unlink()
    (staging / "cifar-10-batches-py").rmdir()
    staging.rmdir()
    return written


@pytest.fixture
def cifar_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, write_cifar10(tmp_path)


@pytest.fixture
def cifar_archive(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, write_cifar10_archive(tmp_path)
