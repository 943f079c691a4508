"""`--space` with `--preset NAME` or `--arch FILE.json`: how every command names one architecture."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import spaces
from search._errors import UsageError


def add_arch_arguments(parser: argparse.ArgumentParser, *, default_preset: str | None = None) -> None:
    parser.add_argument("--space", default="resnet_5m", help="search space name (default: %(default)s; see `tpsearch spaces`)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", default=default_preset,
                       help="a preset architecture of the space" + (" (default: %(default)s)" if default_preset else ""))
    group.add_argument("--arch", type=Path, metavar="FILE.json", help="an architecture dict in a JSON file")


def read_json_file(path: Path, what: str) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} file {str(path)!r}: {e.strerror or e}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UsageError(f"{what} file {str(path)!r} is not valid JSON: {e}") from None


def resolve_arch(args: argparse.Namespace) -> tuple[spaces.Space, dict[str, Any]]:
    space = spaces.get(args.space)
    if args.arch is not None:
        arch = read_json_file(args.arch, "architecture")
        if not isinstance(arch, dict):
            raise UsageError(f"architecture file {str(args.arch)!r} must hold a JSON object, "
                             f"but holds {type(arch).__name__}")
        return space, arch
    if args.preset is None:
        raise UsageError(f"give --preset (one of: {', '.join(sorted(space.presets))}) or --arch FILE.json")
    return space, space.preset(args.preset)
