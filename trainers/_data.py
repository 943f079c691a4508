"""Datasets by name, held as uint8 tensors with a fixed, seeded train/validation split.

A name is a registered one (`DATASETS`) or a folder of class sub-folders, `imagefolder:PATH[@SIDE]`
(`trainers/_imagefolder.py`); `canonical_dataset` gives the one spelling a study and a checkpoint record.

Searches select on the validation split only; the test split is read only by final evaluation. Every data set is
loaded once per process (`load_dataset` is cached), so a worker running many trials reads the files once.
"""
from __future__ import annotations

import functools
import pickle
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tpsearch.exceptions import DataError
from tpsearch.trainers import _imagefolder

DATASETS: dict[str, str] = {
    "cifar10": "CIFAR-10: 32x32 colour photos, 10 classes, 45,000 train / 5,000 validation / 10,000 test "
               "(read from the data directory, downloaded when absent)",
    "cifar100": "CIFAR-100: 32x32 colour photos, 100 classes, 45,000 / 5,000 / 10,000 (like cifar10)",
    "digits": "scikit-learn's 8x8 handwritten digits: 1 channel, 10 classes, 1,295 / 143 / 359 (works offline)",
    "synthetic": "generated class templates plus noise: 32x32 colour, 10 classes, any size (works offline; "
                 "smoke runs and benchmarks)",
    "synthetic-hard": "generated, harder: 16x16 colour, 10 classes of 4 fine-grained templates each, shifted up to "
                      "3 pixels, heavy noise; 9,000 / 1,000 / 2,000 (works offline; small and large networks "
                      "differ clearly, for ranking them: `tpsearch calibrate`)",
    "imagefolder": "any folder of class sub-folders (ROOT/<class>/<images>, Caltech-256's layout), named "
                   "imagefolder:PATH or imagefolder:PATH@SIDE: every image converted to RGB, its shorter side resized "
                   "to SIDE pixels (default 32) and the centre cropped square; classes are the sub-folders sorted "
                   "by name; per class a fifth for test and a tenth of the rest for validation; unreadable images "
                   "skipped and counted; decoded once, cached under the data directory",
}

# What each data set feeds a network (classes, channels, side), known without loading it: `tpsearch describe
# --dataset` counts an architecture for a data set that may not be on this machine. An image folder's shape depends
# on the folder and the side: `dataset_shape` reads it from the folder's listing.
SHAPES: dict[str, dict[str, int]] = {
    "cifar10": dict(num_classes=10, in_channels=3, image_size=32),
    "cifar100": dict(num_classes=100, in_channels=3, image_size=32),
    "digits": dict(num_classes=10, in_channels=1, image_size=8),
    "synthetic": dict(num_classes=10, in_channels=3, image_size=32),
    "synthetic-hard": dict(num_classes=10, in_channels=3, image_size=16),
}

VAL_FRACTION = 0.1  # of the training set: 5,000 of CIFAR's 50,000
DIGITS_TEST_FRACTION = 0.2
SYNTHETIC_SIZE = 5000
# The generated data sets by name: `make_synthetic`'s arguments. "synthetic-hard" leaves room between architectures
# (a class is a mixture of shifted fine patterns under heavy noise), and its larger validation split (1,000 images,
# one image = 0.1%) keeps rankings out of the noise that digits' 143 images put them in.
SYNTHETIC_TASKS: dict[str, dict[str, Any]] = {
    "synthetic": {},
    "synthetic-hard": dict(size=10_000, image_size=16, detail=8, prototypes=4, shift=3, contrast=200.0, noise=60.0),
}
_TEST_SPLIT_SEED = 0  # digits, synthetic and image folders have no official test split: fix one no `seed` moves


@dataclass(frozen=True, eq=False)
class Dataset:
    """One data set: uint8 images [N, C, H, W] and int64 labels, on the CPU (`train` moves them to its device).

    `mean` and `std` are per channel on the 0..1 scale, measured on `train_x`. `default_padding` and `flip` are the
    augmentation that suits the images (8x8 digits take a 1-pixel shift and no mirror: a mirrored 2 is no digit).
    """

    name: str
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    val_x: torch.Tensor = field(repr=False)
    val_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    default_padding: int = 4
    flip: bool = True
    skipped: tuple[str, ...] = ()  # image folders: files that could not be read, relative to the folder

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[2])

    @property
    def shape(self) -> dict[str, int]:
        """What a space's `build`, `count_params` and `count_macs` take beside the architecture."""
        return {"num_classes": self.num_classes, "in_channels": self.in_channels, "image_size": self.image_size}

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


def canonical_dataset(name: str) -> str:
    """`name` as a study, a checkpoint and every command record it: a registered name as it is, an image folder
    as `imagefolder:/absolute/path@SIDE`. An unknown or malformed name is a `DataError` listing the known ones."""
    if isinstance(name, str) and name.startswith(_imagefolder.PREFIX):
        return _imagefolder.parse_spec(name).name
    if name == "imagefolder":
        raise DataError("imagefolder needs its folder: imagefolder:PATH or imagefolder:PATH@SIDE")
    if name not in DATASETS:
        known = [n for n in DATASETS if n != "imagefolder"] + ["imagefolder:PATH[@SIDE]"]
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(known)}")
    return name


def dataset_label(name: str) -> str:
    """A data set's short name for study and file names: a registered name, or an image folder's own name and its
    side (`caltech256-32px`), where the full spelling would put a path inside a folder name."""
    name = canonical_dataset(name)
    return _imagefolder.parse_spec(name).label if name.startswith(_imagefolder.PREFIX) else name


def dataset_shape(name: str) -> dict[str, int]:
    """What data set `name` feeds a network (`num_classes`, `in_channels`, `image_size`) without loading it: from
    `SHAPES`, or an image folder's class sub-folders and side (nothing decoded)."""
    name = canonical_dataset(name)
    if name.startswith(_imagefolder.PREFIX):
        return _imagefolder.shape(_imagefolder.parse_spec(name))
    return dict(SHAPES[name])


def load_dataset(name: str, data_dir: str | Path = "data", *, seed: int = 0, download: bool = True,
                 synthetic_size: int | None = None) -> Dataset:
    """The data set `name` (see `DATASETS`), its validation split drawn with `seed`; cached per process.

    CIFAR is read from `data_dir` (the extracted `cifar-10-batches-py/` or the `cifar-10-python.tar.gz` archive),
    downloaded there first when absent and `download` allows. An image folder's decoded images are cached in
    `data_dir/imagefolder/`. `synthetic_size` is a generated set's training set size (train + validation; default
    5,000 for synthetic, 10,000 for synthetic-hard); its test split holds a fifth as many.
    """
    name = canonical_dataset(name)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"seed must be an integer, but got {seed!r}")
    # Only CIFAR and image folders read the directory, only generated sets the size; normalising the others keeps
    # one cache entry per data set.
    reads_dir = name in _CIFAR or name.startswith(_imagefolder.PREFIX)
    directory = str(Path(data_dir).expanduser().resolve()) if reads_dir else ""
    size = 0
    if name in SYNTHETIC_TASKS:
        size = synthetic_size if synthetic_size is not None else SYNTHETIC_TASKS[name].get("size", SYNTHETIC_SIZE)
    return _load_cached(name, directory, seed, bool(download), size)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, directory: str, seed: int, download: bool, synthetic_size: int) -> Dataset:
    if name.startswith(_imagefolder.PREFIX):
        return _load_image_folder(_imagefolder.parse_spec(name), Path(directory), seed)
    if name in _CIFAR:
        return _load_cifar(_CIFAR[name], Path(directory), seed, download)
    if name == "digits":
        return _load_digits(seed)
    return make_synthetic(**{**SYNTHETIC_TASKS[name], "size": synthetic_size}, seed=seed, name=name)


# ---------------------------------------------------------------------------------------------------------------
# Splits and statistics


def _split(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random split: (rest_x, rest_y, part_x, part_y) with `fraction` of the images in the part."""
    n = len(y)
    part = max(1, int(n * fraction)) if n > 1 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    rest_idx, part_idx = perm[part:], perm[:part]
    return x[rest_idx], y[rest_idx], x[part_idx], y[part_idx]


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (0..1 scale) from a histogram of the uint8 values: no float copy of the set."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        var = float((counts * (values - mean) ** 2).sum() / total)
        means.append(round(mean, 6))
        stds.append(round(max(var, 1e-12) ** 0.5, 6))
    return tuple(means), tuple(stds)


def _assemble(name: str, classes: list[str], x: torch.Tensor, y: torch.Tensor, test_x: torch.Tensor,
              test_y: torch.Tensor, seed: int, **augment: Any) -> Dataset:
    train_x, train_y, val_x, val_y = _split(x, y, VAL_FRACTION, seed)
    mean, std = _channel_stats(train_x)
    return Dataset(name, classes, mean, std, train_x.contiguous(), train_y, val_x.contiguous(), val_y,
                   test_x.contiguous(), test_y, **augment)


# ---------------------------------------------------------------------------------------------------------------
# CIFAR in its python format: pickled dicts of a uint8 [n, 3072] array and a label list


@dataclass(frozen=True)
class _CifarFormat:
    title: str
    archive: str
    folder: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str


_CIFAR = {
    "cifar10": _CifarFormat("CIFAR-10", "cifar-10-python.tar.gz", "cifar-10-batches-py",
                            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                            "c58f30108f718f92721af3b95e74349a", tuple(f"data_batch_{i}" for i in range(1, 6)),
                            ("test_batch",), "batches.meta", "labels", "label_names"),
    "cifar100": _CifarFormat("CIFAR-100", "cifar-100-python.tar.gz", "cifar-100-python",
                             "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                             "eb9058c3a382ffc7106e4002c42a8d85", ("train",), ("test",), "meta", "fine_labels",
                             "fine_label_names"),
}


def _numpy_global(module: str, name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), name)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, and refuses every other global: a data file never runs code."""

    _ALLOWED = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        # numpy 1 pickles name numpy.core, numpy 2 numpy._core; the function is the same either way.
        ("numpy.core.multiarray", "_reconstruct"): lambda: np.empty(0).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): lambda: np.empty(0).__reduce__()[0],
        ("numpy.core.numeric", "_frombuffer"): lambda: _numpy_global(_numpy_core() + ".numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): lambda: _numpy_global(_numpy_core() + ".numeric", "_frombuffer"),
        # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): lambda: _numpy_global("codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        make = self._ALLOWED.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"refusing the global {module}.{name} (only numpy arrays are allowed)")
        return make()


def _numpy_core() -> str:
    return "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"


def _missing_message(fmt: _CifarFormat, data_dir: Path, why: str) -> str:
    return (f"{fmt.title} is not in {data_dir} ({why}): place {fmt.archive} (from {fmt.url}) or the extracted "
            f"{fmt.folder}/ there, or choose --data-dir; offline alternatives: --dataset digits "
            f"or --dataset synthetic")


def _corrupt(fmt: _CifarFormat, data_dir: Path, path: Path, why: str) -> DataError:
    why = " ".join(why.split())  # pickle's own messages may span lines; the error is one
    return DataError(f"{fmt.title} data {path} is corrupt ({why}): delete the damaged copy and place a fresh "
                     f"{fmt.archive} or extracted {fmt.folder}/ in {data_dir}; offline alternatives: "
                     f"--dataset digits or --dataset synthetic")


def _locate(fmt: _CifarFormat, data_dir: Path, download: bool) -> Path:
    folder = data_dir / fmt.folder
    if folder.is_dir():
        return folder
    archive = data_dir / fmt.archive
    if not archive.is_file():
        if not download:
            raise DataError(_missing_message(fmt, data_dir, "downloading is off"))
        from torchvision.datasets.utils import download_url

        created = [d for d in (data_dir, *data_dir.parents) if not d.exists()]  # innermost first
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            download_url(fmt.url, str(data_dir), fmt.archive, md5=fmt.md5)
        except Exception as e:  # urllib, socket and torchvision's checksum raise many types; all mean "no file"
            # Leave the disk as it was: no partial archive, no empty folder that looks like a data directory.
            archive.unlink(missing_ok=True)
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:  # not empty: something else was written there meanwhile
                    break
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(_missing_message(fmt, data_dir, f"download failed: {reason}")) from None
    # Extract beside the target and move into place, so an interrupted extraction never looks like a data set.
    try:
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".extract-") as tmp:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmp, filter="data")
            extracted = Path(tmp) / fmt.folder
            if not extracted.is_dir():
                raise _corrupt(fmt, data_dir, archive, f"it holds no {fmt.folder}/")
            try:
                extracted.rename(folder)
            except OSError:
                if not folder.is_dir():  # else another worker extracted the same archive first: use its copy
                    raise
    except (tarfile.TarError, EOFError, OSError) as e:
        # gzip and zlib errors derive from OSError; a full disk does too, and its message says so.
        raise _corrupt(fmt, data_dir, archive, f"cannot extract it: {e}") from None
    return folder


def _read_pickle(fmt: _CifarFormat, data_dir: Path, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _corrupt(fmt, data_dir, path.parent, f"{path.name} is missing")
    try:
        with open(path, "rb") as f:
            # latin1 is how Python 3 reads the Python 2 strings of the original files, numpy's raw bytes included.
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as e:  # a damaged pickle fails in many ways (EOFError, UnpicklingError, ValueError, ...)
        raise _corrupt(fmt, data_dir, path, f"not a readable pickle: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise _corrupt(fmt, data_dir, path, f"holds a {type(obj).__name__}, not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(fmt: _CifarFormat, data_dir: Path, path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _read_pickle(fmt, data_dir, path)
    data, labels = d.get("data"), d.get(fmt.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _corrupt(fmt, data_dir, path, f"'data' must be a uint8 array of shape [n, 3072], but is {got}")
    if labels is None:
        raise _corrupt(fmt, data_dir, path, f"it has no {fmt.label_key!r}")
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(data),):
        raise _corrupt(fmt, data_dir, path, f"{len(data)} images but {y.size} labels")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise _corrupt(fmt, data_dir, path, f"labels must lie in 0..{num_classes - 1}, but span {y.min()}..{y.max()}")
    return data.reshape(-1, 3, 32, 32), y


def _read_split(fmt: _CifarFormat, data_dir: Path, folder: Path, files: tuple[str, ...], num_classes: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [_read_batch(fmt, data_dir, folder / f, num_classes) for f in files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(x), torch.from_numpy(y)


def _load_cifar(fmt: _CifarFormat, data_dir: Path, seed: int, download: bool) -> Dataset:
    folder = _locate(fmt, data_dir, download)
    meta = _read_pickle(fmt, data_dir, folder / fmt.meta_file)
    names = meta.get(fmt.names_key)
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise _corrupt(fmt, data_dir, folder / fmt.meta_file, f"{fmt.names_key!r} must be a list of class names")
    classes = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
    x, y = _read_split(fmt, data_dir, folder, fmt.train_files, len(classes))
    test_x, test_y = _read_split(fmt, data_dir, folder, fmt.test_files, len(classes))
    name = "cifar10" if fmt is _CIFAR["cifar10"] else "cifar100"
    return _assemble(name, classes, x, y, test_x, test_y, seed, default_padding=4, flip=True)


# ---------------------------------------------------------------------------------------------------------------
# Image folders (the reading and the cache are in _imagefolder.py)


def _load_image_folder(spec: _imagefolder.FolderSpec, data_dir: Path, seed: int) -> Dataset:
    classes, x, y, skipped = _imagefolder.read_folder(spec, data_dir)
    rest, test = _imagefolder.stratified_split(y, _imagefolder.TEST_FRACTION, _TEST_SPLIT_SEED)
    train, val = _imagefolder.stratified_split(y[rest], VAL_FRACTION, seed)
    train, val = rest[train], rest[val]
    mean, std = _channel_stats(x[train])
    return Dataset(spec.name, classes, mean, std, x[train].contiguous(), y[train], x[val].contiguous(), y[val],
                   x[test].contiguous(), y[test], default_padding=max(1, spec.side // 8), flip=True,
                   skipped=skipped)


# ---------------------------------------------------------------------------------------------------------------
# Digits and synthetic: offline


def _load_digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # The scans hold 0..16 ink levels; stretching them to 0..255 lets every data set share the uint8 path.
    x = torch.from_numpy(np.rint(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    rest_x, rest_y, test_x, test_y = _split(x, y, DIGITS_TEST_FRACTION, _TEST_SPLIT_SEED)
    return _assemble("digits", [str(d) for d in range(10)], rest_x, rest_y, test_x, test_y, seed,
                     default_padding=1, flip=False)


def make_synthetic(size: int = SYNTHETIC_SIZE, *, num_classes: int = 10, image_size: int = 32, channels: int = 3,
                   seed: int = 0, detail: int = 4, prototypes: int = 1, shift: int = 0, contrast: float = 160.0,
                   noise: float = 40.0, name: str = "synthetic") -> Dataset:
    """A deterministic, learnable data set: smooth random templates per class plus per-image noise.

    Each template is a random `detail` x `detail` pattern upsampled to the image (more detail: finer structure to
    tell apart); a class has `prototypes` of them (more than one: a mixture, which a linear read-out cannot
    separate); each image is one of its class's templates rolled by up to `shift` pixels each way (so only
    translation-invariant features help), spanning `contrast` uint8 levels around mid-grey, plus Gaussian noise of
    std `noise` levels. The images depend only on these arguments; `seed` draws the validation split, as for the
    other data sets. `size` is the training set (train + validation); the test split holds `size // 5` more images.
    """
    for key, value, low in (("size", size, 2), ("num_classes", num_classes, 2), ("image_size", image_size, 1),
                            ("channels", channels, 1), ("detail", detail, 1), ("prototypes", prototypes, 1),
                            ("shift", shift, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DataError(f"synthetic {key} must be an integer of at least {low}, but got {value!r}")
    for key, value in (("contrast", contrast), ("noise", noise)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 255:
            raise DataError(f"synthetic {key} must be a number of uint8 levels in 0..255, but got {value!r}")
    g = torch.Generator().manual_seed(_TEST_SPLIT_SEED)
    # Templates are upsampled patterns: smooth, so a few pixels of crop shift keep the class recognisable.
    coarse = torch.rand(num_classes * prototypes, channels, detail, detail, generator=g)
    templates = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)
    if shift:  # every template under every roll, drawn from by index below: (2 shift + 1)^2 copies, all small
        offsets = [(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)]
        templates = torch.cat([torch.roll(templates, o, dims=(2, 3)) for o in offsets])
    total = size + max(1, size // 5)
    y = torch.randint(num_classes, (total,), generator=g)
    # Extra draws only where asked for: with the defaults the generator's stream, and so the images, stay as they were.
    which = y * prototypes + (torch.randint(prototypes, (total,), generator=g) if prototypes > 1 else 0)
    if shift:
        which = which + num_classes * prototypes * torch.randint((2 * shift + 1) ** 2, (total,), generator=g)
    x = torch.empty(total, channels, image_size, image_size, dtype=torch.uint8)
    for start in range(0, total, 4096):  # in chunks: a float copy of a large set would not fit beside it
        wc = which[start:start + 4096]
        noise_c = torch.randn(len(wc), channels, image_size, image_size, generator=g)
        x[start:start + len(wc)] = ((128 - contrast / 2) + contrast * templates[wc] + noise * noise_c
                                    ).clamp_(0, 255).round_().to(torch.uint8)
    return _assemble(name, [f"class_{c}" for c in range(num_classes)], x[:size], y[:size], x[size:],
                     y[size:], seed, default_padding=max(1, image_size // 8), flip=True)
