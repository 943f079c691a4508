"""Write a CIFAR-10 stand-in: the generated 32x32 set at CIFAR-10's size, in CIFAR-10's own file format.

    python benchmarks/cifar_standin.py DIR        # DIR/cifar-10-batches-py/: 50,000 training images, 10,000 test
    tpsearch run --dataset cifar10 --data-dir DIR ...

Where CIFAR-10 itself is absent (nothing is downloaded on a lent GPU machine), a search on this trains exactly the
work a CIFAR-10 search does (45,000 training and 5,000 validation images of 32x32x3, 10 classes, read through the
same loader), so its time is the time of the real search; its accuracies rank nothing real. `--size` shrinks it
for a smoke run. The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np

from tpsearch.trainers import make_synthetic

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write(root: Path, size: int = 50_000) -> Path:
    """`root`/cifar-10-batches-py with five training batches of `size` / 5 images, a test batch and the meta."""
    data = make_synthetic(size, name="synthetic")
    # The generated set comes split (train, validation, test); CIFAR's files hold train+validation as one set.
    train_x = np.concatenate([data.train_x.numpy(), data.val_x.numpy()]).reshape(-1, 3072)
    train_y = np.concatenate([data.train_y.numpy(), data.val_y.numpy()])
    test_x, test_y = data.test_x.numpy().reshape(-1, 3072), data.test_y.numpy()
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(train_y)), 5)
    batches = [(f"data_batch_{i + 1}", train_x[p], train_y[p]) for i, p in enumerate(parts)]
    for name, x, y in [*batches, ("test_batch", test_x, test_y)]:
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": [int(v) for v in y], "data": np.ascontiguousarray(x),
                         "filenames": [f"{name}_{k}.png" for k in range(len(y))]}, f, protocol=4)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": len(parts[0]), "label_names": CLASSES, "num_vis": 3072}, f)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the --data-dir to write cifar-10-batches-py/ under")
    parser.add_argument("--size", type=int, default=50_000, help="training images (default: CIFAR-10's 50,000)")
    args = parser.parse_args()
    folder = write(args.root, args.size)
    print(json.dumps({"folder": str(folder), "train_and_val": args.size, "test": args.size // 5}))


if __name__ == "__main__":
    main()
