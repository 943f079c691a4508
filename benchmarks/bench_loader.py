"""Images per second of the trainer's augmentation-and-batching path against the seed projects' DataLoader.

Both produce the same thing from the same uint8 images: shuffled batches randomly cropped (padding 4, zeros, as
torchvision's RandomCrop pads), randomly mirrored and normalised. The seed recipe is a map-style Dataset handing
PIL images to RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize inside a torchvision DataLoader
(num_workers 0 and 2, persistent workers, one thread each); the trainer's path is `trainers.DeviceLoader` on the
same device (here the CPU, one thread unless --threads says otherwise). Each is warmed up one epoch, then timed
over full epochs; the best epoch counts. Side by side, in one run.

    python benchmarks/bench_loader.py [--images 10000] [--batch-size 128] [--epochs 3] [--workers 0 2] [--threads 1]
                                      [--min-ratio 20]

The last line is JSON: images/s of each, `ratios` (trainer / DataLoader per worker count) and `ratio`, the worse.
Exits 1 when `ratio` is below the goal, --min-ratio.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.utils.data

from _claims import finish  # this script's folder

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's, as the seed projects hard-code them


class SeedDataset(torch.utils.data.Dataset):
    """The seed projects' input path: one PIL image per item from a uint8 array, transformed image by image."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, train: bool = True) -> None:
        import torchvision.transforms as T

        self.images = x.permute(0, 2, 3, 1).contiguous().numpy()  # HWC, as PIL wants it
        self.labels = y.numpy()
        steps = [T.RandomCrop(x.shape[-1], padding=4), T.RandomHorizontalFlip()] if train else []
        self.transform = T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def seed_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(SeedDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True,
                                       num_workers=workers, persistent_workers=workers > 0)


def images_per_s(loader, epochs: int) -> float:
    """Best of `epochs` timed epochs, after one warm-up epoch (worker start-up, allocator, caches)."""
    best = float("inf")
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        count = 0
        for images, _ in loader:
            count += len(images)
        if images.is_cuda:
            torch.cuda.synchronize()
        if epoch:
            best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of each, after one warm-up")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers to measure")
    parser.add_argument("--device", default="cpu", help="device of the trainer's path (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of this process (default: %(default)s: the trainer's path gets the one "
                             "core the DataLoader's main process uses, and a shared machine disturbs it least)")
    parser.add_argument("--min-ratio", type=float, default=20.0,
                        help="the goal: trainer / DataLoader at the worse worker count (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from tpsearch.trainers import DeviceLoader, make_synthetic

    data = make_synthetic(args.images * 10 // 9 + 2)
    x, y = data.train_x[:args.images], data.train_y[:args.images]
    device = torch.device(args.device)
    print(f"{len(x)} uint8 images {tuple(x.shape[1:])}, batch {args.batch_size}, crop padding 4 (zeros) + flip + "
          f"normalise; torch threads {torch.get_num_threads()}; best of {args.epochs} epochs after a warm-up")

    ours = DeviceLoader(x.to(device), y.to(device), batch_size=args.batch_size, mean=MEAN, std=STD, padding=4,
                        pad_mode="zero", flip=True)
    trainer = images_per_s(ours, args.epochs)
    print(f"  trainer DeviceLoader on {device}: {trainer:12,.0f} images/s")
    seed: dict[str, float] = {}
    for workers in args.workers:
        seed[str(workers)] = images_per_s(seed_loader(x, y, args.batch_size, workers), args.epochs)
        print(f"  torchvision DataLoader, PIL transforms, num_workers={workers}: {seed[str(workers)]:12,.0f} images/s"
              f"   (trainer is {trainer / seed[str(workers)]:.1f}x)")
    ratios = {k: round(trainer / v, 2) for k, v in seed.items()}
    finish({"images": len(x), "batch_size": args.batch_size, "device": str(device),
            "threads": torch.get_num_threads(), "trainer_images_per_s": round(trainer),
            "dataloader_images_per_s": {k: round(v) for k, v in seed.items()}, "ratios": ratios,
            "ratio": min(ratios.values())},
           [(f"the trainer's path at least {args.min_ratio:g}x the DataLoader's, measured {min(ratios.values()):g}x",
             min(ratios.values()) >= args.min_ratio)])


if __name__ == "__main__":
    np.random.seed(0)
    torch.manual_seed(0)
    main()
