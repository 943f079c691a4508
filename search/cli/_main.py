"""The `tpsearch` command line: one sub-command per verb of the design card, each with --help."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

import spaces
from search._errors import UsageError


def _parsers() -> list[Callable[[argparse._SubParsersAction], None]]:
    from search import _dashboard_cmd, _describe, _export_cmd, _run_cmd, _train_cmd

    adders = [_describe.add_spaces_parser, _describe.add_describe_parser, _run_cmd.add_run_parser,
              _run_cmd.add_status_parser]
    adders.append(_train_cmd.add_train_parser)
    adders += [_dashboard_cmd.add_dashboard_parser, _dashboard_cmd.add_compare_parser,
               _dashboard_cmd.add_trials_parser]
    adders += [_export_cmd.add_export_parser, _export_cmd.add_evaluate_parser]
    return adders


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [UsageError, spaces.ArchError, spaces.UnknownSpaceError]
    try:
        from trainers import DataError
        errors.append(DataError)
    except ImportError:  # the trainer package is optional for the space commands
        pass
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tpsearch",
        description="Search CIFAR-10 classifiers under a parameter budget: Optuna samples, Ray Tune trains, "
                    "an SQL study keeps everything.",
        epilog="Start with `tpsearch run --space resnet_5m --trials 200`; `tpsearch COMMAND --help` for each.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _parsers():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as e:
        print(f"tpsearch {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
