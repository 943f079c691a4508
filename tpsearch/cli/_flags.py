"""Flags that several commands share, declared once; the JSON line; options built from flags by field name."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from tpsearch import spaces
from tpsearch._files import read_json, write_or_refuse
from tpsearch.exceptions import UsageError
from tpsearch.storages import DEFAULT_STORAGE

T = TypeVar("T")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def add_study(p: argparse.ArgumentParser, help: str = "study name (default: the only study in the storage)") -> None:
    p.add_argument("--study", default=None, help=help)


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"SQLAlchemy URL of the study storage: SQLite or PostgreSQL (default: {DEFAULT_STORAGE})")


def add_dataset(p: argparse.ArgumentParser, default: str | None, help: str = "data set") -> None:
    """`--dataset`, with the same choices everywhere (`tpsearch train --help` describes each): a registered name or
    `imagefolder:PATH[@SIDE]`, made canonical as it is parsed (an image folder's path absolute, its side explicit)."""
    from tpsearch.trainers import DATASETS

    names = [n for n in DATASETS if n != "imagefolder"] + ["imagefolder:PATH[@SIDE]"]
    p.add_argument("--dataset", default=default, type=_dataset, metavar="{" + ",".join(names) + "}", help=help)


def _dataset(value: str) -> str:
    from tpsearch.trainers import canonical_dataset

    try:
        return canonical_dataset(value)
    except UsageError as e:  # argparse's own one-line error, as for a bad choice
        raise argparse.ArgumentTypeError(str(e)) from None


def add_fidelity(p: argparse.ArgumentParser | argparse._ArgumentGroup, default_fraction: float = 1.0,
                 prefix: str = "") -> None:
    """`--train-fraction F` or `--train-images N` (one of them): how much of the training split a training sees.
    `prefix` makes calibrate's `--low-...` and `--high-...` pairs."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(f"--{prefix}train-fraction", type=float, default=default_fraction, metavar="F",
                       help="train on this share of the training split")
    group.add_argument(f"--{prefix}train-images", type=int, default=None, metavar="N",
                       help="train on the first N images of the (shuffled) training split, the same ones every run")


def add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", default=default, help=f"auto, cpu, cuda or cuda:N (default: {default})")


def add_data_dir(p: argparse.ArgumentParser, default: str = "data") -> None:
    p.add_argument("--data-dir", default=default,
                   help=f"where data sets are read from and CIFAR is downloaded to (default: {default})")


def add_checkpoint_space(p: argparse.ArgumentParser) -> None:
    """`--space` of the commands that read checkpoints: the user's consent to load a space of their own."""
    p.add_argument("--space", default=None, metavar="FILE.py:CLASS",
                   help="the space of your own (FILE.py:CLASS or MODULE:CLASS) that the checkpoint was made with: "
                        "a checkpoint never makes tpsearch import or run code by itself, so one that names a space "
                        "of your own loads only when you name that space here (registered and installed spaces "
                        "need no flag)")


def add_checkpoint_reading(p: argparse.ArgumentParser) -> None:
    """What the commands that score a checkpoint on images take (evaluate, explain, delegate): the space it may
    need, where the data are, and the device."""
    add_checkpoint_space(p)
    add_data_dir(p)
    add_device(p)


def add_runs_dir(p: argparse.ArgumentParser, default: str = "runs") -> None:
    p.add_argument("--runs-dir", default=default,
                   help=f"the search's folder: kept weights and Ray's logs are under RUNS_DIR/STUDY/, and the study "
                        f"records kept weights relative to it (default: {default})")


def add_trial_resources(g: argparse.ArgumentParser | argparse._ArgumentGroup, cpus_default: float) -> None:
    """What each training of a small study of fixed trials takes from Ray (ablate, rerank)."""
    g.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per training, fractions allowed; default 1 where there are GPUs, else 0")
    g.add_argument("--cpus-per-trial", type=float, default=cpus_default, help="(default: %(default)s)")
    g.add_argument("--concurrency", type=int, default=None, help="at most this many trainings at once")


def add_seeds(g: argparse.ArgumentParser | argparse._ArgumentGroup, d: Any, each: str, seed_help: str) -> None:
    """--seeds and --seed of a small study of fixed trials (`PlannedOptions`): `each` is what one seed trains."""
    g.add_argument("--seeds", type=int, default=d.seeds,
                   help=f"trainings per {each}, with seeds --seed, --seed + 1, ... (default: %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed, help=f"{seed_help} (default: %(default)s)")


def add_planned_training(g: argparse.ArgumentParser | argparse._ArgumentGroup, d: Any,
                         epochs_help: str = "(default: %(default)s)") -> None:
    """How each training of a small study of fixed trials runs (`PlannedOptions`' fields, defaults from `d`)."""
    g.add_argument("--epochs", type=int, default=d.epochs, help=epochs_help)
    add_fidelity(g, d.train_fraction)
    g.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs,
                   help="learning-rate warm-up, in epochs' worth of images (default: %(default)s)")
    add_data_dir(g, d.data_dir)
    add_device(g, d.device)
    add_trial_resources(g, d.cpus_per_trial)


def add_planned_tail(p: argparse.ArgumentParser) -> None:
    """The last flags of a small study of fixed trials (ablate, rerank)."""
    add_progress(p)
    add_json(p)


def run_planned(args: argparse.Namespace, command: str, options: type, run: Callable[[Any], dict[str, Any]],
                study_key: str, page_name: str, write: Any, table: Callable[[dict[str, Any]], list[str]]) -> int:
    """A small study of fixed trials (ablate, rerank) from its flags: its options and its run; then its page written
    to RUNS_DIR/STUDY/PAGE_NAME (STUDY being `result[study_key]`), its `table` (on stderr when --json claims
    stdout) with what is missing and the page's path, the JSON line, and exit 1 with one line if the study's run
    ended in error."""
    opts = options_from(options, args)
    result = run(opts)
    page = Path(opts.runs_dir) / result[study_key] / page_name
    result["html"] = str(write_or_refuse("page", page, lambda: write(result, page)))
    lines = table(result)
    if result["missing"]:
        lines.append(f"  {result['missing']} training(s) failed or were not run: run the same command to train them")
    lines.append(f"wrote {result['html']}")
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        emit_json(result)
    if result["error"]:
        print(f"tpsearch {command}: error: {result['error']}", file=sys.stderr)
        return 1
    return 0


def dashboard_path(runs_dir: str | Path, study: str) -> Path:
    """Where a study's page goes unless --out says otherwise: beside its kept weights, in the user's runs folder."""
    return Path(runs_dir) / study / "dashboard.html"


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def names_list(choices: Iterable[str], what: str = "trick") -> Callable[[str], list[str]]:
    """An argparse `type` for a comma-separated list of names from `choices` (order kept, repeats refused): an
    unknown name is one line and exit 2, naming the choices."""
    known = list(choices)

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        for name in names:
            if name not in known:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r}; choose from: {', '.join(known)}")
        if len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"each {what} once, but got {text!r}")
        return names

    return parse


def emit_json(obj: Any) -> None:
    """Machine-readable output: one JSON object on the last line of stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def options_from(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """`cls` (an options dataclass) from the flags whose destination is one of its fields, plus `extra`."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
             if hasattr(args, f.name)}
    return cls(**{**given, **extra})


DEFAULT_SPACE = "resnet_5m"


def _space_of(args: argparse.Namespace) -> spaces.Space:
    """--space, else the default space, else the one space whose presets hold --preset (`describe --preset
    densenet121` means the backbones'); a preset of several spaces, none the default, asks for --space."""
    if args.space is not None:
        return spaces.get(args.space)
    default = spaces.get(DEFAULT_SPACE)
    if args.arch is not None or args.preset is None or args.preset in default.presets:
        return default
    from tpsearch.planned import space_with_preset

    return space_with_preset(args.preset)


def add_arch_arguments(parser: argparse.ArgumentParser, *, default_preset: str | None = None) -> None:
    """`--space` with `--preset NAME` or `--arch FILE.json`: how every command names one architecture."""
    parser.add_argument("--space", default=None,
                        help="search space: a name (see `tpsearch spaces`), or FILE.py:CLASS or MODULE:CLASS of "
                             f"your own (default: {DEFAULT_SPACE}, or the one space that has --preset)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", default=default_preset, help="a preset architecture of the space"
                       + (" (default: %(default)s)" if default_preset else ""))
    group.add_argument("--arch", type=Path, metavar="FILE.json", help="an architecture dict in a JSON file")


def resolve_arch(args: argparse.Namespace) -> tuple[spaces.Space, dict[str, Any]]:
    space = _space_of(args)
    if args.arch is not None:
        arch = read_json(args.arch, "architecture")
        if not isinstance(arch, dict):
            raise UsageError(f"architecture file {str(args.arch)!r} must hold a JSON object, "
                             f"but holds {type(arch).__name__}")
        return space, arch
    if args.preset is None:
        raise UsageError(f"give --preset (one of: {', '.join(sorted(space.presets))}) or --arch FILE.json")
    return space, space.preset(args.preset)


def max_macs_arg(text: str) -> int | str | None:
    """--max-macs as `RunOptions` takes it: N, "auto" (the default cap, `tpsearch.search._auto`) or "none"."""
    from tpsearch.search import AUTO, MAX_MACS_NONE as NONE

    if text in (AUTO, NONE):
        return None if text == NONE else AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, auto or none, but got {text!r}") from None


def answer(args: argparse.Namespace, result: dict[str, Any], text: str) -> int:
    """A command's last word: `result` as the JSON line with --json, else `text` for a person; exit 0."""
    if args.json:
        emit_json(result)
    else:
        print(text)
    return 0
