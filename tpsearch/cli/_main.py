"""The `tpsearch` command: its parser, made of the sub-commands this package's modules register, and `main`."""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from tpsearch.cli._registry import add_commands
from tpsearch.exceptions import UsageError


class _HelpFormatter(argparse.HelpFormatter):
    """Each flag's default once: appended where the help does not already say it, and left out where there is
    nothing to show (None, a switch, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text.lower() or action.default is argparse.SUPPRESS
                or action.default is None or isinstance(action.default, (bool, list))):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse with the house's error format: one line and exit 2, not the usage block above it, and the house's
    help format. Sub-command parsers are made of the same class, so every command gets both."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _version() -> str:
    """The installed distribution's version: what a bug report needs (a source tree run uninstalled has none)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tpsearch")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tpsearch",
        description="Search CIFAR-10 classifiers under a parameter budget: Optuna samples, Ray Tune trains, "
                    "an SQL study keeps everything.",
        epilog="Start with `tpsearch run --space resnet_5m --trials 200`; `tpsearch COMMAND --help` for each.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_commands(sub)  # each command registers itself where it is defined (`_registry.command`)
    return parser


def _name(args: argparse.Namespace | None) -> str:
    return "tpsearch" if args is None else f"tpsearch {args.command}"


def main(argv: list[str] | None = None) -> int:
    args = None
    try:  # building the parser takes a moment too: Ctrl-C there ends as it ends anywhere else
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as e:  # every error a user can cause (tpsearch.exceptions): one line, exit 2
        print(f"{_name(args)}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C at any moment the command itself does not handle: one line, no traceback
        print(f"{_name(args)}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
