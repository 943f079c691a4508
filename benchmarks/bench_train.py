"""Training images per second: `trainers.train` against the seed projects' plain loop over a torchvision DataLoader.

The seed recipe: PIL transforms in a DataLoader (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
Normalize; `--workers` workers), SGD with momentum, CrossEntropyLoss, a Python loop over the loader moving each batch
to the device, float32 and NCHW. The trainer: uint8 data on the device, batched augmentation there, and on CUDA bf16
autocast and channels_last. Both train the same freshly built model (presets `resnet20` and `tpsnet` of resnet_5m)
on the same synthetic 32x32 images at the same batch size, one after the other in this run. The first epoch of
each is a warm-up (allocator, cuDNN autotuning); the mean of the remaining epochs counts, training time only.

    python benchmarks/bench_train.py                       # CPU: a few hundred images, about two minutes
    python benchmarks/bench_train.py --images 20000 --epochs 3 --batch-size 256 --device cuda

The last line is JSON: images/s of each per model, and `ratio` (trainer / seed loop), the worse of the models.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn

from bench_loader import seed_loader  # the same seed input path as the loader benchmark (this script's folder)


def seed_loop(model: nn.Module, loader, device: torch.device, epochs: int) -> float:
    """The seed projects' training loop; mean images/s of the epochs after the first."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    rates = []
    for epoch in range(epochs + 1):
        start, count = time.perf_counter(), 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            count += len(labels)
        loss.item()  # waits for the device
        if epoch:
            rates.append(count / (time.perf_counter() - start))
    return sum(rates) / len(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["resnet20", "tpsnet"])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--images", type=int, default=None, help="training images (default: 256 on the CPU, "
                                                                  "20000 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="(default: 64 on the CPU, 256 on CUDA)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs of each, after one warm-up epoch")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the seed loop")
    parser.add_argument("--compile", action="store_true", help="torch.compile in the trainer")
    args = parser.parse_args()

    from tpsearch import spaces
    from tpsearch.trainers import TrainConfig, make_synthetic, resolve_device, train

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    images = args.images or (20000 if cuda else 256)
    batch = args.batch_size or (256 if cuda else 64)
    data = make_synthetic(images * 10 // 9 + 2)
    x, y = data.train_x[:images], data.train_y[:images]
    space = spaces.get("resnet_5m")
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"{images} synthetic 32x32 images, batch {batch}, {args.epochs} timed epoch(s) after a warm-up, on {name}; "
          f"seed loop: DataLoader with {args.workers} workers, float32" + (", NCHW" if cuda else ""))
    config = TrainConfig(epochs=args.epochs + 1, batch_size=batch, train_images=images, device=str(device),
                         compile=args.compile, crop_padding=4, pad_mode="zero", flip=True)
    results: dict[str, dict[str, float]] = {}
    for preset in args.presets:
        arch = space.preset(preset)
        torch.manual_seed(0)
        model = space.build(arch)
        result = train(model, data, config)
        if result.status != "completed":
            raise SystemExit(f"trainer failed on {preset}: {result.reason}")
        ours = sum(r.images_per_s for r in result.history[1:]) / (len(result.history) - 1)
        torch.manual_seed(0)
        theirs = seed_loop(space.build(arch), seed_loader(x, y, batch, args.workers), device, args.epochs)
        results[preset] = {"params": space.count_params(arch), "trainer_images_per_s": round(ours, 1),
                           "seed_loop_images_per_s": round(theirs, 1), "ratio": round(ours / theirs, 2)}
        print(f"  {preset:<9} ({results[preset]['params'] / 1e6:.2f}M params): trainer {ours:10,.1f} images/s, "
              f"seed loop {theirs:10,.1f} images/s, ratio {ours / theirs:.2f}x")
        if cuda:
            torch.cuda.empty_cache()
    print(json.dumps({"device": str(device), "device_name": name, "images": images, "batch_size": batch,
                      "timed_epochs": args.epochs, "seed_workers": args.workers, "bf16": cuda,
                      "channels_last": cuda, "compile": args.compile, "models": results,
                      "ratio": min(r["ratio"] for r in results.values())}))


if __name__ == "__main__":
    main()
