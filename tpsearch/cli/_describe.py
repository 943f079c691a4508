"""`tpsearch spaces`, `describe` and `latency`: what a space searches and what one architecture costs."""
from __future__ import annotations

import argparse
from typing import Any

from tpsearch import spaces
from tpsearch.spaces import option_dimensions
from tpsearch.cli._flags import (add_arch_arguments, add_dataset, add_device, add_json, answer, emit_json,
                                        resolve_arch)
from tpsearch.cli._registry import command


def _spaces_flags(p: argparse.ArgumentParser) -> None:
    add_json(p)


@command(10, "spaces", _spaces_flags)
def run_spaces(args: argparse.Namespace) -> int:
    """list the search spaces with their dimensions and presets

    List the registered search spaces, their dimensions, the training hyperparameters every space shares, and each
    space's presets.
    """
    out: dict[str, Any] = {}
    for name in spaces.names():
        space = spaces.get(name)
        out[name] = {
            "description": space.description,
            "dimensions": [vars(d) for d in space.dimensions()],
            "training": [vars(d) for d in space.training_dimensions()],
            "options": [vars(d) for d in option_dimensions(space.options)],
            "presets": {k: {"arch": v, "params": space.count_params(v)} for k, v in space.presets.items()},
        }
        if not args.json:
            print(f"{name}: {space.description}")
            # The options (run --options) are searched only when named: listed after the rest.
            dimensions = space.dimensions() + space.training_dimensions() + option_dimensions(space.options)
            # Per-family names (convnets' bottleneck_chunks_resnet) outgrow the usual column: widen it to fit.
            width = max(16, *(len(d.name) for d in dimensions))
            for d in dimensions:
                print(f"  {d.symbol:>5}  {d.name:<{width}} {d.values:<58} {d.meaning}")
            print("  presets: " + ", ".join(f"{k} ({p['params'] / 1e6:.2f}M)" for k, p in out[name]["presets"].items()))
    if args.json:
        emit_json({"spaces": out})
    return 0


def _describe_flags(p: argparse.ArgumentParser) -> None:
    _add_shape(p)
    add_json(p)


def _add_shape(p: argparse.ArgumentParser) -> None:
    """The architecture and the shape of the data it takes: a data set's, adjusted by the flags given."""
    add_arch_arguments(p)
    add_dataset(p, None, help="take the shape of this data set's images and classes (default: 32x32 colour, "
                              "10 classes, as CIFAR-10); the flags below override it")
    p.add_argument("--num-classes", type=int, default=None, help="classifier outputs")
    p.add_argument("--in-channels", type=int, default=None, help="input channels")
    p.add_argument("--image-size", type=int, default=None, help="input side in pixels")


def _resolve_shape(args: argparse.Namespace) -> tuple[spaces.Space, dict[str, Any], dict[str, int]]:
    from tpsearch.trainers import dataset_shape

    space, arch = resolve_arch(args)
    shape = dataset_shape(args.dataset or "cifar10")
    shape.update({k: getattr(args, k) for k in shape if getattr(args, k) is not None})
    arch = space.validate(arch, in_channels=shape["in_channels"], image_size=shape["image_size"])
    return space, arch, shape


@command(20, "describe", _describe_flags)
def run_describe(args: argparse.Namespace) -> int:
    """parameters and MACs of one architecture

    Validate one architecture of a space and print its exact parameter count (analytic) and its multiply-accumulates per
    image (`Space.count_macs`).
    """
    space, arch, shape = _resolve_shape(args)
    result = {"space": space.name, "arch": arch, "params": space.count_params(arch, **shape),
              "macs": space.count_macs(arch, **shape), **shape}
    return answer(args, result,
                  f"space   {space.name}\narch    {arch}\nparams  {result['params']:,}\nmacs    {result['macs']:,}")


def _latency_flags(p: argparse.ArgumentParser) -> None:
    _add_shape(p)
    add_device(p)
    add_json(p)


@command(30, "latency", _latency_flags)
def run_latency(args: argparse.Namespace) -> int:
    """inference latency of one architecture on a device

    Time one architecture's inference on a device as a search's worker does before training (what --max-latency-ms
    compares): the median of 20 passes of one image after a warm-up, with their coefficient of variation, and the images
    per second of a larger batch (256 on a GPU, 32 on the CPU). CUDA events on a GPU.

    Example: tpsearch latency --preset tpsnet --device cuda
    """
    from tpsearch.trainers import usable_device
    from tpsearch.search import trial_latency

    space, arch, shape = _resolve_shape(args)
    device = str(usable_device(args.device))
    result = {"space": space.name, "arch": arch, "device": device, **trial_latency(space, arch, shape, device)}
    return answer(args, result, f"space       {space.name}\ndevice      {device}\nlatency     "
                                f"{result['latency_ms']:.3f} ms per image at batch 1 (coefficient of variation "
                                f"{result['latency_cv']:.2f})\nthroughput  {result['throughput']:,.0f} images/s at "
                                f"batch {result['throughput_batch']}")
