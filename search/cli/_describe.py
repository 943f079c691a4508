"""`tpsearch spaces` and `tpsearch describe`: what a space searches and what one architecture costs."""
from __future__ import annotations

import argparse
from typing import Any

from tpsearch import spaces
from tpsearch.search.cli._flags import add_arch_arguments, add_json, emit_json, resolve_arch


def add_spaces_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spaces", help="list the search spaces with their dimensions and presets",
                       description="List the registered search spaces, their dimensions, the training "
                                   "hyperparameters every space shares, and each space's presets.")
    add_json(p)
    p.set_defaults(func=run_spaces)


def run_spaces(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {}
    for name in spaces.names():
        space = spaces.get(name)
        out[name] = {
            "description": space.description,
            "dimensions": [vars(d) for d in space.dimensions()],
            "training": [vars(d) for d in space.training_dimensions()],
            "presets": {k: {"arch": v, "params": space.count_params(v)} for k, v in space.presets.items()},
        }
        if not args.json:
            print(f"{name}: {space.description}")
            for d in space.dimensions() + space.training_dimensions():
                print(f"  {d.symbol:>5}  {d.name:<16} {d.values:<58} {d.meaning}")
            print("  presets: " + ", ".join(f"{k} ({p['params'] / 1e6:.2f}M)" for k, p in out[name]["presets"].items()))
    if args.json:
        emit_json({"spaces": out})
    return 0


def add_describe_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="parameters and MACs of one architecture",
                       description="Validate one architecture of a space and print its exact parameter count "
                                   "(analytic) and its multiply-accumulates per image (`Space.count_macs`).")
    add_arch_arguments(p)
    p.add_argument("--num-classes", type=int, default=10, help="classifier outputs (default: %(default)s)")
    p.add_argument("--in-channels", type=int, default=3, help="input channels (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=32, help="input side in pixels (default: %(default)s)")
    add_json(p)
    p.set_defaults(func=run_describe)


def run_describe(args: argparse.Namespace) -> int:
    space, arch = resolve_arch(args)
    shape = dict(num_classes=args.num_classes, in_channels=args.in_channels, image_size=args.image_size)
    arch = space.validate(arch, in_channels=args.in_channels, image_size=args.image_size)
    result = {"space": space.name, "arch": arch, "params": space.count_params(arch, **shape),
              "macs": space.count_macs(arch, **shape), **shape}
    if args.json:
        emit_json(result)
    else:
        print(f"space   {space.name}\narch    {arch}\nparams  {result['params']:,}\nmacs    {result['macs']:,}")
    return 0
