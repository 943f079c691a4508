"""`tpsearch dashboard`, `tpsearch compare` and `tpsearch trials`: a study as a page, several side by side, a table."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any
from pathlib import Path

import optuna

from tpsearch._files import write_or_refuse
from tpsearch.study import objectives_of
from tpsearch.exceptions import UsageError
from tpsearch.cli._flags import add_json, add_runs_dir, add_storage, add_study, answer, dashboard_path
from tpsearch.cli._registry import command
from tpsearch.dashboards import X_AXES
from tpsearch.storages import load_study, open_storage

FORMATS = ("csv", "json", "parquet")


def _file_stem(name: str) -> str:
    """A study name as a file name: study names may hold slashes, spaces or markup."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "study"


def _ours(study: optuna.Study) -> optuna.Study:
    """The study, once its directions are known to be tpsearch's (accuracy, then costs: `--objectives`)."""
    objectives_of(study)
    return study


def _dashboard_flags(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_storage(p)
    p.add_argument("--out", type=Path, help="page to write (default: RUNS_DIR/STUDY/dashboard.html)")
    add_runs_dir(p)
    p.add_argument("--max-params", type=int, metavar="N",
                   help="parameter budget drawn as a line (default: the study's max_params attribute)")
    p.add_argument("--max-macs", type=int, metavar="N",
                   help="MACs budget drawn as a line (default: the study's max_macs attribute, if any)")
    add_json(p)


@command(110, "dashboard", _dashboard_flags)
def run_dashboard(args: argparse.Namespace) -> int:
    """write a study's dashboard: one self-contained HTML page

    Write one HTML page (plotly.js inlined, opens with no network) with the optimization history, accuracy against
    parameters and MACs with the Pareto front, architectures, importances, learning curves, states, the timeline of the
    run and the ten best trials; a study searched with several --objectives gets its own front over all of them as a
    table, marked on each cost.
    """
    from tpsearch import dashboards
    study = _ours(load_study(open_storage(args.storage, create=False), args.study))
    out = args.out or dashboard_path(args.runs_dir, study.study_name)
    trials = study.get_trials(deepcopy=False)
    return _write_page(args, out, lambda: dashboards.write_dashboard(study, out, max_params=args.max_params,
                                                                     max_macs=args.max_macs, trials=trials),
                       {"study": study.study_name, "trials": len(trials)}, f"{len(trials):,} trials")


def _write_page(args: argparse.Namespace, out: Path, write: Any, about: dict[str, Any], what: str) -> int:
    """Write a page, then say so: one JSON object with --json, else one line."""
    start = time.perf_counter()
    path = write_or_refuse("page", out, write)
    seconds = round(time.perf_counter() - start, 3)
    result = {"path": str(path), **about, "bytes": path.stat().st_size, "seconds": seconds}
    return answer(args, result, f"wrote {path} ({what}, {result['bytes'] / 1e6:.1f} MB, {result['seconds']:.1f} s)")


def _compare_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("studies", nargs="+", metavar="STUDY", help="two or more study names")
    add_storage(p)
    p.add_argument("--group-by", metavar="ATTR", default=None,
                   help="group studies by this study attribute (sampler, seed, space, ...): a mean and a band per "
                        "group; default: a line per study")
    p.add_argument("--x", default="trained", choices=list(X_AXES),
                   help="what the curves are drawn against: trained trials, the trained trials' training seconds, "
                        "or Optuna's trial number")
    p.add_argument("--at", type=int, default=None, metavar="N",
                   help="the table's best after N trained trials (default: the fewest any study trained)")
    p.add_argument("--out", type=Path, help="page to write (default: RUNS_DIR/compare_STUDY_STUDY....html)")
    add_runs_dir(p)
    add_json(p)


@command(120, "compare", _compare_flags)
def run_compare(args: argparse.Namespace) -> int:
    """several studies side by side on one page, grouped over seeds

    Write one HTML page comparing studies of one storage: their best-so-far validation accuracy against what each spent
    (trained trials by default: Optuna's trial numbers also count infeasible draws, which cost milliseconds), grouped by
    a study attribute into a mean with a band of one standard deviation, a table of the best after N trained trials, and
    accuracy against parameters of each. Studies searched with several --objectives (the same ones) add their
    hypervolume so far, drawn the same way, and their Pareto fronts overlaid on accuracy against each cost.

    Example: tpsearch run --sampler tpe --repeat 3 ...; tpsearch run --sampler random --repeat 3 ...; tpsearch compare
    --group-by sampler STUDY-seed0 ...
    """
    from tpsearch import dashboards
    names = list(args.studies)
    if len(names) < 2:
        raise UsageError(f"compare needs at least two studies, but got {len(names)}: {names[0]!r}")
    if len(set(names)) != len(names):
        raise UsageError(f"each study once, please: {' '.join(names)}")
    storage = open_storage(args.storage, create=False)
    studies = [_ours(load_study(storage, n)) for n in names]
    if args.at is not None and args.at < 1:
        raise UsageError(f"--at must be at least 1, but got {args.at}")
    if args.group_by is not None:
        missing = [s.study_name for s in studies if args.group_by not in s.user_attrs]
        if len(missing) == len(studies):
            known = sorted({k for s in studies for k, v in s.user_attrs.items() if isinstance(v, (str, int, float))})
            raise UsageError(f"--group-by {args.group_by!r} is no attribute of these studies; they have: "
                             f"{', '.join(known)}")
    out = args.out or Path(args.runs_dir) / ("compare_" + "_".join(_file_stem(n) for n in names) + ".html")
    write = lambda: dashboards.write_comparison(studies, out, group_by=args.group_by, x=args.x, at=args.at)  # noqa
    return _write_page(args, out, write, {"studies": names}, f"{len(names)} studies")


def _trials_flags(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_storage(p)
    p.add_argument("--format", metavar="{csv,json,parquet}",
                   help="output format (default: from the --out suffix, else csv); parquet needs --out")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")


def _format(args: argparse.Namespace) -> str:
    fmt = args.format
    if fmt is None:
        suffix = args.out.suffix.lstrip(".").lower() if args.out else ""
        fmt = suffix if suffix in FORMATS else "csv"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, but got {fmt!r}")
    if fmt == "parquet" and args.out is None:
        raise UsageError("--format parquet writes a binary file: give --out FILE.parquet")
    return fmt


@command(130, "trials", _trials_flags)
def run_trials(args: argparse.Namespace) -> int:
    """every trial as CSV, JSON or Parquet

    Export every trial of a study, one row each: number, state, value, datetimes, params_<name>, user_attrs_<name>, the
    architecture flattened (arch_<key>, arch_<key>_<layer>) and the per-epoch intermediate values.
    """
    from tpsearch import dashboards
    fmt = _format(args)  # before opening storage: a bad option fails at once
    study = load_study(open_storage(args.storage, create=False), args.study)
    frame = dashboards.trials_frame(study) if len(study.directions) == 1 else study.trials_dataframe()
    if "intermediate_values" in frame and fmt != "json":
        # Flat formats get the per-epoch values as one JSON text cell: {"epoch": accuracy, ...}.
        frame["intermediate_values"] = frame["intermediate_values"].map(json.dumps)
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", date_format="iso", double_precision=15) + "\n"
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError("--format parquet needs pyarrow: pip install pyarrow") from None
        for col in frame.columns[frame.dtypes == object]:
            kinds = {type(v) for v in frame[col].dropna()}
            if len(kinds) > 1:  # Parquet columns have one type; a categorical of mixed choices becomes text
                frame[col] = frame[col].map(lambda v: v if v is None or v != v else str(v))
        write_or_refuse("file", args.out, lambda: frame.to_parquet(args.out, index=False))
        print(f"wrote {args.out} ({len(frame):,} trials)")
        return 0
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_or_refuse("file", args.out, lambda: args.out.write_text(text))
        print(f"wrote {args.out} ({len(frame):,} trials)")
    return 0
