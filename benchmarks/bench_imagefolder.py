"""What an image folder costs: tpsearch's one decoding and its cached reload, against torchvision's two pipelines.

A folder of JPEG photos at Caltech-256's typical size (about 300x250, varied) is written to a temporary folder.
tpsearch's side: `load_dataset("imagefolder:...@SIDE")` in a fresh process cache, first with an empty data
directory (list, decode with PIL, resize and crop, write the cache) then again (list, read the cache). The baselines
are what a user would otherwise write: torchvision's `ImageFolder` with Resize(SIDE) + CenterCrop(SIDE) + ToTensor
in a DataLoader (0 workers, batch 128), either
- decoded every epoch: one full pass, which is what every epoch costs there; or
- decoded once: one full pass kept as one tensor in memory, the fair rival of tpsearch's first load (its later
  epochs in the same process are free too; only a new process, such as each trial's worker, decodes again).
Side by side, in one run.

    python benchmarks/bench_imagefolder.py [--classes 20] [--per-class 100] [--side 32] [--min-first-ratio 1]
                                           [--min-ratio 5]

The last line is JSON: seconds of each, `first_ratio` (the decoded-once baseline over tpsearch's first load) and
`ratio` (one epoch decoded over tpsearch's cached load). Exits 1 when either is below its --min-... bound or the
two sides hold different numbers of images.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _claims import finish  # this script's folder


def write_photos(root: Path, classes: int, per_class: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"{c:03d}.class"
        folder.mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(200, 300)), int(rng.integers(250, 350))
            # Smooth colour fields plus noise: JPEG sizes near real photos', not a flat image that decodes for free.
            coarse = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
            image = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.clip(np.asarray(image, np.int16) + rng.integers(-20, 21, (h, w, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--min-first-ratio", type=float, default=1.0,
                        help="decoded-once baseline / tpsearch's first load, at least (default: %(default)s)")
    parser.add_argument("--min-ratio", type=float, default=5.0,
                        help="a decoded epoch / tpsearch's cached load, at least (default: %(default)s)")
    args = parser.parse_args()

    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    from tpsearch.trainers import _data, load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root, data_dir = Path(tmp) / "photos", Path(tmp) / "data"
        write_photos(root, args.classes, args.per_class)
        spec = f"imagefolder:{root}@{args.side}"
        timings = {}
        for what in ("first_load_s", "cached_load_s"):
            _data._load_cached.cache_clear()
            start = time.perf_counter()
            data = load_dataset(spec, data_dir)
            timings[what] = round(time.perf_counter() - start, 3)
        baseline = ImageFolder(str(root), transform=T.Compose([T.Resize(args.side), T.CenterCrop(args.side),
                                                               T.ToTensor()]))
        loader = torch.utils.data.DataLoader(baseline, batch_size=128, num_workers=0)
        start = time.perf_counter()
        held = torch.cat([images for images, _ in loader])
        timings["torchvision_decode_once_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        count = sum(len(images) for images, _ in loader)
        timings["torchvision_epoch_s"] = round(time.perf_counter() - start, 3)
        images = sum(data.sizes().values())
    first_ratio = timings["torchvision_decode_once_s"] / timings["first_load_s"]
    ratio = timings["torchvision_epoch_s"] / timings["cached_load_s"]
    result = {"images": images, "side": args.side, **timings, "first_ratio": round(first_ratio, 2),
              "ratio": round(ratio, 1)}
    print(f"{images:,} JPEGs to {args.side}x{args.side}")
    print(f"  first load:  tpsearch decodes and caches in {timings['first_load_s']:.2f} s; torchvision decoded once "
          f"into memory {timings['torchvision_decode_once_s']:.2f} s ({first_ratio:.1f}x)")
    print(f"  later loads: tpsearch reads its cache in {timings['cached_load_s']:.3f} s in any process; torchvision "
          f"decoding every epoch {timings['torchvision_epoch_s']:.2f} s ({ratio:.0f}x); decoded once, later epochs "
          f"of the same process cost nothing, a new process decodes again")
    finish(result, [(f"both sides hold the same images, {len(held)} and {count} against {images}",
                     len(held) == count == images),
                    (f"tpsearch's first load at least {args.min_first_ratio:g}x the decoded-once pipeline, "
                     f"measured {first_ratio:.2f}x", first_ratio >= args.min_first_ratio),
                    (f"tpsearch's cached load at least {args.min_ratio:g}x a decoded epoch, measured {ratio:.1f}x",
                     ratio >= args.min_ratio)])

if __name__ == "__main__":
    main()
