"""`tpsearch train`: train one architecture outside a search, with a progress bar and an optional JSON summary."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from tpsearch.exceptions import UsageError
from tpsearch.cli._flags import (add_arch_arguments, add_data_dir, add_dataset, add_device, add_fidelity,
                                        add_json, add_progress, emit_json, options_from, resolve_arch)
from tpsearch.cli._registry import command


def _train_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.spaces import HPARAMS
    from tpsearch.trainers import DATASETS, TrainConfig

    defaults = TrainConfig()
    p.description = ("Train one architecture of a space and report its validation accuracy. Data sets: "
                     + "; ".join(f"{k}: {v}" for k, v in DATASETS.items()) + ".")
    add_arch_arguments(p)
    add_dataset(p, "cifar10")
    add_data_dir(p)
    p.add_argument("--no-download", action="store_true", help="never download CIFAR; fail if it is absent")
    p.add_argument("--synthetic-size", type=int, default=None, metavar="N",
                   help="training + validation images of --dataset synthetic or synthetic-hard (default: 5000, 10000)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="(default: %(default)s)")
    for h in HPARAMS.values():  # the training hyperparameters' own flags, as `spaces.HPARAMS` defines them
        if h.help is not None:
            p.add_argument(f"--{h.field.replace('_', '-')}", **h.flag())
    add_fidelity(p, defaults.train_fraction)
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="seeds the validation split, the initial weights and the batches (default: %(default)s)")
    add_device(p, defaults.device)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--tta-flip", action="store_true",
                   help="score each validation image as the mean of it and its mirror image (CIFAR-like data)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false",
                   help="train in float32 on CUDA (bf16 autocast is the default)")
    add_progress(p)
    add_json(p)


def _config(args: argparse.Namespace) -> Any:
    from tpsearch.trainers import TrainConfig, resolve_device

    try:
        config = options_from(TrainConfig, args)  # each flag is the TrainConfig field of its name
        resolve_device(config.device)
    except ValueError as e:
        # TrainConfig names its field ("train_images must be ..."); the user typed the flag of that name.
        field, _, rest = str(e).partition(" ")
        flag = f"--{field.replace('_', '-')}"
        raise UsageError(f"{flag} {rest}" if rest and hasattr(args, field) else str(e)) from None
    return config


@command(40, "train", _train_flags)
def run_train(args: argparse.Namespace) -> int:
    """train one architecture on a data set (outside a search)

    Example: tpsearch train --space resnet_5m --preset tpsnet --dataset cifar10 --epochs 300
    """
    import torch
    from tqdm import tqdm

    from tpsearch.trainers import EpochReport, load_dataset, train

    space, arch = resolve_arch(args)
    config = _config(args)
    extra = {} if args.synthetic_size is None else {"synthetic_size": args.synthetic_size}
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed, download=not args.no_download, **extra)
    if config.train_images is not None and config.train_images > len(data.train_y):
        raise UsageError(f"--train-images must be at most the {len(data.train_y)} training images of "
                         f"{data.name}, but got {config.train_images}")
    shape = data.shape
    arch = space.validate(arch, in_channels=data.in_channels, image_size=data.image_size)
    params = space.count_params(arch, **shape)
    torch.manual_seed(args.seed)
    model = space.build(arch, **shape)

    bar = tqdm(total=config.epochs, desc=f"train {data.name}", unit="epoch", file=sys.stderr, dynamic_ncols=True,
               disable=not args.progress)

    def on_epoch(report: EpochReport) -> None:
        bar.set_postfix({"loss": f"{report.train_loss:.4f}", "acc": f"{report.val_accuracy:.4f}",
                         "img/s": f"{report.images_per_s:,.0f}"}, refresh=False)
        bar.update(1)

    try:
        result = train(model, data, config, callback=on_epoch)
    finally:
        bar.close()
    summary = {
        "status": result.status, "reason": result.reason, "space": space.name, "arch": arch, "params": params,
        "dataset": data.name, "val_accuracy": result.val_accuracy, "val_loss": result.val_loss,
        "train_loss": result.train_loss, "epochs": result.epochs, "seconds": round(result.seconds, 3),
        "images_per_s": result.images_per_s, "device": result.device, "config": dataclasses.asdict(config),
        "history": [dataclasses.asdict(r) for r in result.history],
    }
    if args.json:
        emit_json(summary)
    elif result.history:
        print(f"{space.name} {args.preset or args.arch} on {data.name}: {params:,} parameters, {result.epochs} "
              f"epochs in {result.seconds:.1f} s on {result.device}")
        print(f"val accuracy {result.val_accuracy:.4f}  val loss {result.val_loss:.4f}  "
              f"train loss {result.train_loss:.4f}  {result.images_per_s:,.0f} images/s")
    if result.status == "failed":
        print(f"tpsearch train: error: training failed: {result.reason}", file=sys.stderr)
        return 1
    return 0
