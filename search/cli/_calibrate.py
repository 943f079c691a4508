"""Train K configurations of a space at the search's fidelity (low) and at a higher one (high), and say how far the
two rankings agree: Spearman's rho, Kendall's tau-b, the overlap of the top k, and the time each fidelity took.
Pick the cheapest low fidelity whose agreement you trust, and search with it.

(`tpsearch calibrate`: its flags are `CalibrateOptions`' fields, one to one, with the defaults from there.)
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tpsearch._files import write_or_refuse
from tpsearch.search.cli._flags import (add_data_dir, add_dataset, add_device, add_fidelity, add_json,
                                        add_progress, emit_json, options_from)


def add_calibrate_parser(sub: argparse._SubParsersAction) -> None:
    from tpsearch.search import CalibrateOptions

    d = CalibrateOptions()
    p = sub.add_parser(
        "calibrate", help="does a cheap fidelity rank architectures as a full training does? (rank correlations)",
        description=__doc__.split("\n\n")[0],
        epilog="Example (offline, a few minutes on a CPU): tpsearch calibrate --dataset synthetic-hard --k 8 "
               "--max-params 100000 --low-epochs 2 --low-train-images 1000 --high-epochs 6 "
               "--high-train-images 2000 --html calibration.html")
    g = p.add_argument_group("what to compare")
    g.add_argument("--space", default=d.space, help="search space (see `tpsearch spaces`; default: %(default)s)")
    g.add_argument("--k", type=int, default=None,
                   help="configurations to train at both fidelities (default: 8, or more if --enqueue lists more)")
    g.add_argument("--enqueue", action="append", default=[], metavar="PRESET|FILE.json",
                   help="calibrate a known architecture first (the rest up to --k are sampled); repeatable")
    g.add_argument("--max-params", type=int, default=d.max_params,
                   help="parameter budget of a sampled configuration (default: %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the random sampler, the data split, the initial weights and the batches "
                        "(default: %(default)s)")
    g.add_argument("--top-k", type=int, default=None,
                   help="size of the top sets whose overlap is reported (default: max(1, K // 4))")
    add_dataset(g, d.dataset,
                help="data set (default: %(default)s); synthetic-hard works offline and leaves room between "
                     "architectures; `tpsearch train --help` describes each")
    add_data_dir(g, d.data_dir)
    for level, what in (("low", "the search's fidelity"), ("high", "the fidelity it is judged against")):
        g = p.add_argument_group(f"{level} fidelity: {what}")
        g.add_argument(f"--{level}-epochs", type=int, default=getattr(d, f"{level}_epochs"),
                       help="epochs (default: %(default)s)")
        add_fidelity(g, 1.0, prefix=f"{level}-")
    add_device(p, d.device)
    p.add_argument("--cpus-per-trial", type=float, default=d.cpus_per_trial,
                   help="CPU threads of each training, as `tpsearch run`'s trials have (default: %(default)s)")
    p.add_argument("--html", type=Path, default=None, metavar="PAGE",
                   help="also write a self-contained Plotly page: low- against high-fidelity accuracy")
    add_progress(p)
    add_json(p)
    p.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from tpsearch.search import CalibrateOptions, calibrate

    opts = options_from(CalibrateOptions, args)
    if args.html is not None:  # before hours of training, not after: a page that cannot be written is refused now
        write_or_refuse("page", args.html, lambda: _check_writable(args.html.parent))
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=2 * int(opts.k), desc="calibrate", unit="training", file=sys.stderr, dynamic_ncols=True)

    def on_training(level: str, index: int, row: dict[str, Any]) -> None:
        if bar is not None:
            bar.set_postfix({"fidelity": level, "last": f"{row[f'{level}_accuracy']:.4f}"}, refresh=False)
            bar.update(1)

    try:
        result = calibrate(opts, progress=on_training).to_dict()
    finally:
        if bar is not None:
            bar.close()
    if args.html is not None:
        from tpsearch import dashboards

        result["html"] = str(write_or_refuse("page", args.html,
                                             lambda: dashboards.write_calibration(result, args.html)))
    _print_table(result, sys.stderr if args.json else sys.stdout)
    if args.json:
        emit_json(result)
    return 0


def _check_writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


def _print_table(result: dict[str, Any], stream: TextIO) -> None:
    """The human summary; on stderr when --json claims stdout, as `tpsearch run` does."""
    def r(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.3f}"

    low, high = result["low"], result["high"]
    lines = [f"{result['space']} on {result['dataset']} ({result['device']}): {result['k']} configurations",
             f"  low:  {low['epochs']} epochs on {low['images']:,} images, {result['low_s']:.1f} s",
             f"  high: {high['epochs']} epochs on {high['images']:,} images, {result['high_s']:.1f} s",
             f"  {'#':>3} {'parameters':>11} {'low acc':>8} {'high acc':>8}  source"]
    for row in sorted(result["architectures"], key=lambda row: -row["high_accuracy"]):
        lines.append(f"  {row['index']:>3} {row['params']:>11,} {row['low_accuracy']:>8.2%} "
                     f"{row['high_accuracy']:>8.2%}  {row['source']}")
    lines.append(f"Spearman {r(result['spearman'])}  Kendall {r(result['kendall'])}  "
                 f"top-{result['top_k']} overlap {result['topk_overlap']:.0%}")
    if result.get("html"):
        lines.append(f"wrote {result['html']}")
    print("\n".join(lines), file=stream)
