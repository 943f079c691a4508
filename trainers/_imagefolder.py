"""Image folders as a data set: ROOT/<class>/<images> (Caltech-256's layout), named `imagefolder:PATH[@SIDE]`.

Every image is decoded once with PIL, converted to RGB, its shorter side resized to SIDE and the centre cropped
square (the aspect ratio kept, as ImageNet evaluation crops), and the whole set cached as one uint8 tensor under the
data directory. The cache is keyed by the folder's file list (paths, sizes, modification times), the side and the
resize method, so a changed folder is decoded again and the second load of an unchanged one reads one file.
From there on it is a data set like CIFAR: device-resident uint8, batched augmentation.

Splits are stratified: each class gives a fifth of its images to the test split (fixed by a constant seed) and a
tenth of the rest to validation (drawn with the run's seed), so every class is in every split while it has a few
images, and a class of 80 images (Caltech-256's smallest) is not left out of validation by chance.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tpsearch.exceptions import DataError

PREFIX = "imagefolder:"
DEFAULT_SIDE = 32  # CIFAR's side: every space's presets and budgets were drawn for it
MAX_SIDE = 4096    # the spaces' own limit (`spaces._types.MAX_IMAGE_SIZE`)
TEST_FRACTION = 0.2  # of each class
# torchvision's ImageFolder list; other files (a README, Thumbs.db) are not images of the set and are ignored.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
# Part of the cache key: a change to how images are turned into pixels must not read an old cache.
_CACHE_FORMAT = "imagefolder-v1 rgb shorter-side-bicubic centre-crop"
_SPEC_HELP = "imagefolder:PATH or imagefolder:PATH@SIDE"


@dataclass(frozen=True)
class FolderSpec:
    """A parsed `imagefolder:PATH[@SIDE]`: the folder made absolute (workers and later commands may run from
    another directory) and the side, always explicit in `name`, so one folder at one side has one name."""

    root: Path
    side: int

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.root}@{self.side}"

    @property
    def label(self) -> str:
        """A short name fit for study and file names: the folder's own name and the side (`caltech256-32px`)."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.root.name).strip("._") or "images"
        return f"{stem}-{self.side}px"


def parse_spec(spec: str) -> FolderSpec:
    """`imagefolder:PATH` or `imagefolder:PATH@SIDE` (a path may hold '@': only digits after the last one are a
    side). The folder need not exist yet: loading it says so."""
    if not spec.startswith(PREFIX):
        raise DataError(f"an image folder is named {_SPEC_HELP}, but got {spec!r}")
    body, side = spec[len(PREFIX):], DEFAULT_SIDE
    path, at, tail = body.rpartition("@")
    if at and tail.isdigit():
        body, side = path, int(tail)
        if not 1 <= side <= MAX_SIDE:
            raise DataError(f"the side of {spec!r} must be 1..{MAX_SIDE} pixels, but got {side}")
    if not body:
        raise DataError(f"{spec!r} names no folder: give {_SPEC_HELP}")
    return FolderSpec(Path(body).expanduser().resolve(), side)


# ---------------------------------------------------------------------------------------------------------------
# The folder's files


@dataclass(frozen=True)
class _Listing:
    classes: list[str]
    files: list[tuple[str, int]]  # (path relative to the root, class index), in class then path order
    key: str                      # hash of the paths, sizes, modification times, the side and the resize method


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def scan(spec: FolderSpec) -> _Listing:
    """The classes (sub-folders, sorted by name) and their image files (any depth below the class folder)."""
    root = spec.root
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} is not a folder: give {_SPEC_HELP} with ROOT/<class>/<image> "
                        f"inside")
    try:
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not _is_hidden(e.name))
    except OSError as e:
        raise DataError(f"cannot read image folder {str(root)!r}: {e.strerror or e}") from None
    if len(classes) < 2:
        found = f"only the class {classes[0]!r}" if classes else "no class sub-folders"
        raise DataError(f"image folder {str(root)!r} has {found}: a classifier needs at least two, laid out as "
                        f"ROOT/<class>/<image>")
    files: list[tuple[str, int]] = []
    stats: list[tuple[str, int, int]] = []
    empty = []
    for label, name in enumerate(classes):
        found = 0
        for folder, dirs, names in os.walk(root / name, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
            for file in sorted(names):
                if _is_hidden(file) or not file.lower().endswith(IMAGE_SUFFIXES):
                    continue
                path = Path(folder) / file
                rel = path.relative_to(root).as_posix()
                try:
                    st = path.stat()
                except OSError:  # a dangling link: unreadable, counted with the images that fail to decode
                    st = None
                files.append((rel, label))
                stats.append((rel, st.st_size if st else -1, st.st_mtime_ns if st else -1))
                found += 1
        if not found:
            empty.append(name)
    if empty:
        shown = ", ".join(repr(n) for n in empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise DataError(f"image folder {str(root)!r}: class folder{'s' if len(empty) > 1 else ''} {shown} "
                        f"hold{'' if len(empty) > 1 else 's'} no images ({', '.join(IMAGE_SUFFIXES)})")
    digest = hashlib.sha256(json.dumps([_CACHE_FORMAT, spec.side, classes, stats]).encode()).hexdigest()
    return _Listing(classes, files, digest)


def shape(spec: FolderSpec) -> dict[str, int]:
    """What the folder feeds a network, from its file list alone: nothing is decoded."""
    return dict(num_classes=len(scan(spec).classes), in_channels=3, image_size=spec.side)


# ---------------------------------------------------------------------------------------------------------------
# Decoding, once


def _decode(path: Path, side: int) -> np.ndarray | str:
    """One image as uint8 [3, side, side], or why it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale when that still covers the side: a large photo costs far less.
            img.draft("RGB", (side, side))
            img = ImageOps.fit(img.convert("RGB"), (side, side), method=Image.Resampling.BICUBIC)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except Exception as e:  # truncated, not an image, a decompression bomb, a codec's own error: each is one skip
        return f"{type(e).__name__}: {' '.join(str(e).split())}"


def _decode_all(spec: FolderSpec, listing: _Listing) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    n = len(listing.files)
    x = np.empty((n, 3, spec.side, spec.side), dtype=np.uint8)
    keep = np.zeros(n, dtype=bool)
    skipped, reasons = [], []
    # PIL releases the GIL while it decodes and resizes: threads use every core without copying the pixels.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded = pool.map(lambda f: _decode(spec.root / f[0], spec.side), listing.files, chunksize=64)
        for i, ((rel, _), image) in enumerate(zip(listing.files, decoded)):
            if isinstance(image, str):
                skipped.append(rel)
                reasons.append(image)
            else:
                x[i] = image
                keep[i] = True
    y = np.array([label for _, label in listing.files], dtype=np.int64)
    if skipped:
        print(f"tpsearch: image folder {str(spec.root)!r}: skipped {len(skipped)} of {n} images that cannot be "
              f"read (first: {skipped[0]}: {reasons[0]})", file=sys.stderr)
    return torch.from_numpy(x[keep]), torch.from_numpy(y[keep]), skipped, reasons


def _cache_path(spec: FolderSpec, data_dir: Path, key: str) -> Path:
    where = hashlib.sha256(str(spec.root).encode()).hexdigest()[:8]  # two folders both named train/ stay apart
    return data_dir / "imagefolder" / f"{spec.label}-{where}-{key[:16]}.pt"


def _read_cache(path: Path, key: str) -> dict | None:
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception:  # a damaged cache is only a slower load: decode again and write it anew
        return None
    return cached if isinstance(cached, dict) and cached.get("key") == key else None


def _write_cache(path: Path, spec: FolderSpec, content: dict) -> None:
    from tpsearch._files import atomic_path

    try:
        with atomic_path(path) as tmp:  # workers reading it meanwhile see the whole file or none
            torch.save(content, tmp)
    except OSError as e:
        print(f"tpsearch: cannot cache the decoded images of {str(spec.root)!r} in {str(path.parent)!r} "
              f"({e.strerror or e}); the next load decodes them again", file=sys.stderr)
        return
    # The same folder at the same side, listed before a change: nothing will read those again.
    for old in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.pt"):
        if old != path:
            old.unlink(missing_ok=True)


def read_folder(spec: FolderSpec, data_dir: Path) -> tuple[list[str], torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(classes, images uint8 [N, 3, side, side], labels, skipped files), from the cache when it is current."""
    listing = scan(spec)
    path = _cache_path(spec, data_dir, listing.key)
    cached = _read_cache(path, listing.key)
    if cached is None:
        x, y, skipped, _ = _decode_all(spec, listing)
        cached = {"key": listing.key, "x": x, "y": y, "classes": listing.classes, "skipped": skipped}
        _write_cache(path, spec, cached)
    classes, x, y = list(cached["classes"]), cached["x"], cached["y"]
    lost = [c for i, c in enumerate(classes) if not bool((y == i).any())]
    if lost:
        raise DataError(f"image folder {str(spec.root)!r}: no image of class {lost[0]!r} can be read "
                        f"({len(cached['skipped'])} images skipped in all)")
    return classes, x, y, tuple(cached["skipped"])


# ---------------------------------------------------------------------------------------------------------------
# Stratified splits


def stratified_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rest, part) indices into `y`: each class gives round(fraction x its images) to the part, at least one while
    it keeps one for the rest. Both are shuffled, so the first N training images (`--train-images`) mix classes."""
    g = torch.Generator().manual_seed(seed)
    rest, part = [], []
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(max(1, round(len(idx) * fraction)), len(idx) - 1)
        part.append(idx[:k])
        rest.append(idx[k:])
    rest_idx, part_idx = torch.cat(rest), torch.cat(part)
    return (rest_idx[torch.randperm(len(rest_idx), generator=g)],
            part_idx[torch.randperm(len(part_idx), generator=g)])
