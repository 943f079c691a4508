"""Train K configurations exactly as `tpsearch run` with the same flags trains its trials (the low fidelity), then
longer (the high fidelity), then longer again under another seed (the noise ceiling), and say how far the rankings
agree at each ASHA rung and at the search's end: Spearman's rho and Kendall's tau-b with 95% intervals, the overlap
of the top k, and the time each fidelity took. Pick the cheapest search whose agreement you trust.

(`tpsearch calibrate`: the search's flags are `RunOptions`' fields, as `tpsearch run` has them; the rest are
`CalibrateOptions`' fields, one to one, with the defaults from there.)
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import (add_data_dir, add_dataset, add_device, add_fidelity, add_json, max_macs_arg,
                                        add_progress, emit_json, names_list, options_from)
from tpsearch.cli._registry import command

EXAMPLE = ("tpsearch calibrate --dataset synthetic-hard --k 16 --seed 1 --max-params 1000000 --max-macs 40000000 "
           "--epochs 4 --train-images 1000 --high-epochs 8 --high-train-images 2000 --cpus-per-trial 1 "
           "--html calibration.html")


def _calibrate_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.planned import CalibrateOptions
    from tpsearch.search import SCHEDULERS, RunOptions
    from tpsearch.spaces import OPTIONS as OPTION_NAMES
    from tpsearch.spaces import SEARCHED_TRICKS

    d, s = CalibrateOptions(), RunOptions()
    g = p.add_argument_group("what to compare")
    g.add_argument("--k", type=int, default=None,
                   help="configurations to train at every fidelity (default: 8, or more if --enqueue lists more)")
    g.add_argument("--top-k", type=int, default=None,
                   help="size of the top sets whose overlap is reported (default: max(1, K // 4))")
    g.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                   help="skip the noise ceiling (the high fidelity again under another seed: its cost again)")
    g = p.add_argument_group("the search being calibrated (the low fidelity): `tpsearch run`'s flags")
    g.add_argument("--space", default=s.space, help="search space (see `tpsearch spaces`; default: %(default)s)")
    g.add_argument("--enqueue", action="append", default=[], metavar="PRESET|FILE.json",
                   help="calibrate a known architecture first (the rest up to --k are sampled); repeatable")
    g.add_argument("--max-params", type=int, default=s.max_params,
                   help="parameter budget of a sampled configuration (default: %(default)s)")
    g.add_argument("--max-macs", type=max_macs_arg, default=s.max_macs, metavar="N|auto|none",
                   help="MACs per image of a sampled configuration, as `tpsearch run` takes it (default: auto, 2 "
                        "GMAC per 32x32 image scaled by the image's area)")
    g.add_argument("--options", type=names_list(OPTION_NAMES, "option"), default=[], metavar="O1,O2",
                   help="architecture options the search also samples, comma-separated")
    g.add_argument("--tricks", type=names_list(SEARCHED_TRICKS), default=[], metavar="T1,T2",
                   help="training tricks the search also samples, comma-separated")
    g.add_argument("--seed", type=int, default=s.seed,
                   help="seed of the random sampler, the data split, the initial weights and the batches "
                        "(default: %(default)s)")
    add_dataset(g, s.dataset,
                help="data set (default: %(default)s); synthetic-hard works offline and leaves room between "
                     "architectures; `tpsearch train --help` describes each")
    add_data_dir(g, s.data_dir)
    g.add_argument("--epochs", type=int, default=s.epochs, help="epochs of a trial (default: %(default)s)")
    add_fidelity(g, s.train_fraction)
    g.add_argument("--warmup-epochs", type=float, default=s.warmup_epochs,
                   help="learning-rate warm-up of each trial (default: %(default)s)")
    g.add_argument("--scheduler", default=s.scheduler, choices=SCHEDULERS,
                   help="asha: the cosine restarts and the trial is scored at every rung (default: %(default)s)")
    g.add_argument("--grace-epochs", type=int, default=s.grace_epochs,
                   help="ASHA's first rung (default: %(default)s)")
    g.add_argument("--reduction-factor", type=int, default=s.reduction_factor,
                   help="ASHA's rungs are --grace-epochs times its powers (default: %(default)s)")
    g.add_argument("--tta-flip", action="store_true", help="score each image as the mean of it and its mirror")
    add_device(g, s.device)
    g.add_argument("--cpus-per-trial", type=float, default=s.cpus_per_trial,
                   help="CPU threads of each training, as `tpsearch run`'s trials have (default: %(default)s)")
    g = p.add_argument_group("the high fidelity: the same search's training without ASHA, longer")
    g.add_argument("--high-epochs", type=int, default=None, help="epochs (default: 4 times --epochs)")
    add_fidelity(g, d.high_train_fraction, prefix="high-")
    p.add_argument("--html", type=Path, default=None, metavar="PAGE",
                   help="also write a self-contained Plotly page: agreement by rung, low- against high-fidelity "
                        "accuracy")
    add_progress(p)
    add_json(p)


def calibrate_options(args: argparse.Namespace) -> Any:
    """The `CalibrateOptions` of parsed flags: the search's `RunOptions` from its flags by field name, as
    `tpsearch run` builds them (one path from the flags to the trainer), and the rest by field name too."""
    from tpsearch.planned import CalibrateOptions
    from tpsearch.search import RunOptions

    return options_from(CalibrateOptions, args, search=options_from(RunOptions, args, progress=False))


@command(60, "calibrate", _calibrate_flags,
         description=__doc__.split("\n\n")[0],
         epilog=f"Example (offline, about 17 minutes on one CPU core): {EXAMPLE}")
def run_calibrate(args: argparse.Namespace) -> int:
    """does the search's fidelity rank architectures as a longer training does? (rank correlations at every rung and
    at the end, with the noise ceiling)
    """
    from tpsearch.planned import calibrate

    opts = calibrate_options(args)
    if args.html is not None:  # before hours of training, not after: a page that cannot be written is refused now
        write_or_refuse("page", args.html, lambda: _check_writable(args.html.parent))
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(opts.runs()) * int(opts.k), desc="calibrate", unit="training", file=sys.stderr,
                   dynamic_ncols=True)

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
    low, high, rungs = result["low"], result["high"], result["rungs"]
    lines = [f"{result['space']} on {result['dataset']} ({result['device']}): {result['k']} configurations",
             f"  low:  the search, {low['epochs']} epochs on {low['images']:,} images, warm-up "
             f"{low['warmup_epochs']:g} epochs, {low['scheduler']}"
             + (f" rungs at epochs {', '.join(map(str, low['rung_epochs']))}" if low["rung_epochs"] else "")
             + f", {result['low_s']:.1f} s",
             f"  high: {high['epochs']} epochs on {high['images']:,} images, {result['high_s']:.1f} s"
             + (f"; again under seed {result['ceiling']['seed']}, {result['ceiling']['seconds']:.1f} s"
                if result["ceiling"] else ""),
             f"  {'#':>3} {'parameters':>11} {'layers':>6} "
             + "".join(f"{'rung ' + str(e):>8} " for e in low["rung_epochs"])
             + f"{'low acc':>8} {'high acc':>8}" + (f" {'again':>8}" if result["ceiling"] else "") + "  source"]
    for row in sorted(result["architectures"], key=lambda row: -row["high_accuracy"]):
        lines.append(f"  {row['index']:>3} {row['params']:>11,} {row['arch'].get('layers', ''):>6} "
                     + "".join(f"{a:>8.2%} " for a in row["low_rungs"])
                     + f"{row['low_accuracy']:>8.2%} {row['high_accuracy']:>8.2%}"
                     + (f" {row['ceiling_accuracy']:>8.2%}" if result["ceiling"] else "") + f"  {row['source']}")
    lines.append(f"agreement with the high fidelity (95% intervals), top {result['top_k']}:")
    for rung in rungs:
        lines.append(f"  rung at epoch {rung['epochs']} ({rung['images']:,} images): {agreement_line(rung)}")
    lines.append(f"  the search's end ({low['epochs']} epochs): {agreement_line(result)}")
    if result["ceiling"]:
        lines.append(f"  noise ceiling (high against itself): {agreement_line(result['ceiling'])}")
    if result.get("html"):
        lines.append(f"wrote {result['html']}")
    print("\n".join(lines), file=stream)


def agreement_line(a: dict[str, Any]) -> str:
    """Spearman and Kendall with their intervals, and the top-k overlap, on one line."""
    def r(name: str) -> str:
        value, ci = a[name], a[f"{name}_ci"]
        if value is None:
            return "n/a"
        return f"{value:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")

    return f"Spearman {r('spearman')}  Kendall {r('kendall')}  top-k overlap {a['topk_overlap']:.0%}"
