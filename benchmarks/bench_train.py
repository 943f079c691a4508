"""Training images per second: `trainers.train` against the seed projects' plain loop over a torchvision DataLoader.

The seed recipe: PIL transforms in a DataLoader (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
Normalize; `--workers` workers), SGD with momentum, CrossEntropyLoss, a Python loop over the loader moving each batch
to the device, float32 and NCHW. The trainer: uint8 data on the device, batched augmentation there, and on CUDA bf16
autocast and channels_last; a third column runs the trainer with both off, which tells the data path's gain from
the number formats'. All train the same freshly built model (presets `resnet20` and `tpsnet` of resnet_5m) on the
same synthetic 32x32 images at the same batch size, one after the other in this run. The first epoch of each is a
warm-up (allocator, cuDNN autotuning); the timed epochs after it count. On CUDA they are timed with CUDA events
recorded at each epoch's end (for the trainer that end includes scoring the 10% validation split, about 1% of
an epoch's work, so its figure is if anything low).

    python benchmarks/bench_train.py                       # CPU: a few hundred images, about two minutes
    python benchmarks/bench_train.py --device cuda          # 20,000 images, batch 512, 5 timed epochs

The last line is JSON: images/s of each per model, `ratio` (trainer / seed loop) and `ratio_plain` (trainer with
bf16 and channels_last off / seed loop), each the worse of the models. Exits 1 when `ratio` is below --min-ratio
(default 1 on CUDA, where the trainer is built to win; 0.8 on the CPU, where the model's arithmetic sets the pace
and the claim is only that the trainer costs nothing) or, on CUDA, when `tpsnet`'s trainer column is below the goal
of 25,000 images/s at batch 512 on one H100 (--goal-images-per-s).
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn

from _claims import finish  # this script's folder
from bench_loader import seed_loader  # the same seed input path as the loader benchmark (this script's folder)


class EpochClock:
    """Marks the end of each epoch: CUDA events on a GPU (no host sync inside the timed span), else the wall clock."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def seconds_after_first(self) -> float:
        """From the end of the warm-up epoch to the end of the last."""
        if self.cuda:
            torch.cuda.synchronize()
            return self.marks[0].elapsed_time(self.marks[-1]) / 1000.0
        return self.marks[-1] - self.marks[0]


def seed_loop(model: nn.Module, loader, device: torch.device, epochs: int) -> float:
    """The seed projects' training loop; images/s over the epochs after the first."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    clock, count = EpochClock(device), 0
    for epoch in range(epochs + 1):
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            count += len(labels) if epoch else 0
        clock.mark()
    return count / clock.seconds_after_first()


def trainer_rate(model: nn.Module, data, config, images: int) -> float:
    """`trainers.train`, timed by the clock at each epoch's end (its callback); images/s after the first epoch."""
    from tpsearch.trainers import resolve_device, train

    clock = EpochClock(resolve_device(config.device))
    result = train(model, data, config, callback=lambda report: clock.mark())
    if result.status != "completed":
        raise SystemExit(f"the trainer failed: {result.reason}")
    return images * (config.epochs - 1) / clock.seconds_after_first()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["resnet20", "tpsnet"])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--images", type=int, default=None, help="training images (default: 256 on the CPU, "
                                                                  "20000 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="(default: 64 on the CPU, 512 on CUDA)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="timed epochs of each, after one warm-up epoch (default: 1 on the CPU, 5 on CUDA)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the seed loop")
    parser.add_argument("--compile", action="store_true", help="torch.compile in the trainer")
    parser.add_argument("--min-ratio", type=float, default=None,
                        help="trainer / seed loop, the worse model (default: 1 on CUDA, 0.8 on the CPU)")
    parser.add_argument("--goal-images-per-s", type=float, default=None,
                        help="tpsnet's trainer images/s (default: 25000 on CUDA, none on the CPU)")
    args = parser.parse_args()

    from tpsearch import spaces
    from tpsearch.trainers import TrainConfig, make_synthetic, resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    images = args.images or (20000 if cuda else 256)
    batch = args.batch_size or (512 if cuda else 64)
    args.epochs = args.epochs or (5 if cuda else 1)
    min_ratio = args.min_ratio if args.min_ratio is not None else (1.0 if cuda else 0.8)
    goal = args.goal_images_per_s if args.goal_images_per_s is not None else (25_000.0 if cuda else 0.0)
    data = make_synthetic(images * 10 // 9 + 2)
    x, y = data.train_x[:images], data.train_y[:images]
    space = spaces.get("resnet_5m")
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"{images} synthetic 32x32 images, batch {batch}, {args.epochs} timed epoch(s) after a warm-up, on {name}; "
          f"seed loop: DataLoader with {args.workers} workers, float32" + (", NCHW" if cuda else ""))
    config = TrainConfig(epochs=args.epochs + 1, batch_size=batch, train_images=images, device=str(device),
                         compile=args.compile, crop_padding=4, pad_mode="zero", flip=True)
    plain = TrainConfig(**{**vars(config), "bf16": False, "channels_last": False})
    results: dict[str, dict[str, float]] = {}
    for preset in args.presets:
        arch = space.preset(preset)
        rates = {}
        for column, run in (("trainer", lambda m: trainer_rate(m, data, config, images)),
                            ("trainer_plain", lambda m: trainer_rate(m, data, plain, images)),
                            ("seed_loop", lambda m: seed_loop(m, seed_loader(x, y, batch, args.workers), device,
                                                              args.epochs))):
            torch.manual_seed(0)
            rates[column] = run(space.build(arch))
            if cuda:
                torch.cuda.empty_cache()
        results[preset] = {"params": space.count_params(arch),
                           **{f"{k}_images_per_s": round(v, 1) for k, v in rates.items()},
                           "ratio": round(rates["trainer"] / rates["seed_loop"], 2),
                           "ratio_plain": round(rates["trainer_plain"] / rates["seed_loop"], 2)}
        print(f"  {preset:<9} ({results[preset]['params'] / 1e6:.2f}M params): trainer {rates['trainer']:10,.1f}, "
              f"trainer without bf16/channels_last {rates['trainer_plain']:10,.1f}, seed loop "
              f"{rates['seed_loop']:10,.1f} images/s; ratio {results[preset]['ratio']:.2f}x")
    result = {"device": str(device), "device_name": name, "images": images, "batch_size": batch,
              "timed_epochs": args.epochs, "seed_workers": args.workers, "bf16": cuda,
              "channels_last": cuda, "compile": args.compile, "timing": "cuda events" if cuda else "wall",
              "models": results, "ratio": min(r["ratio"] for r in results.values()),
              "ratio_plain": min(r["ratio_plain"] for r in results.values())}
    claims = [(f"trainer at least {min_ratio:g}x the seed loop, measured {result['ratio']:g}x",
               result["ratio"] >= min_ratio)]
    if goal and "tpsnet" in results:
        rate = results["tpsnet"]["trainer_images_per_s"]
        claims.append((f"tpsnet trains at {goal:,.0f} images/s or more, measured {rate:,.1f}", rate >= goal))
    finish(result, claims)


if __name__ == "__main__":
    main()
