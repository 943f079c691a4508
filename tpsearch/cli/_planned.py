"""The commands of the studies of planned trainings: `tpsearch calibrate` (a search's fidelity against a
longer training), `tpsearch ablate` (a preset with training tricks switched on in turn) and `tpsearch rerank`
(a search's best trials retrained over seeds).

Each command's flags are its options' fields, one to one, with the defaults from there: `AblateOptions`',
`RerankOptions`' (the trainings' fields are `PlannedOptions`'), and for calibrate the search's `RunOptions`
as `tpsearch run` has them beside `CalibrateOptions`'.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import (add_data_dir, add_dataset, add_device, add_fidelity, add_json, add_planned_tail,
                                 add_planned_training, add_progress, add_runs_dir, add_seeds, add_storage, add_study,
                                 emit_json, max_macs_arg, names_list, options_from, run_planned)
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
         epilog=f"Example (offline, about 17 minutes on one CPU core): {EXAMPLE}")
def run_calibrate(args: argparse.Namespace) -> int:
    """does the search's fidelity rank architectures as a longer training does? (rank correlations at every rung and at
    the end, with the noise ceiling)

    Train K configurations exactly as `tpsearch run` with the same flags trains its trials (the low fidelity), then
    longer (the high fidelity), then longer again under another seed (the noise ceiling), and say how far the rankings
    agree at each ASHA rung and at the search's end: Spearman's rho and Kendall's tau-b with 95% intervals, the overlap
    of the top k, and the time each fidelity took. Pick the cheapest search whose agreement you trust.
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
    _print_calibration(result, sys.stderr if args.json else sys.stdout)
    if args.json:
        emit_json(result)
    return 0


def _check_writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


def _print_calibration(result: dict[str, Any], stream: TextIO) -> None:
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


def _ablate_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.planned import AblateOptions
    from tpsearch.spaces import BATCH_SIZES, TRICKS

    d = AblateOptions()
    tricks = "; ".join(f"{t.name}: {t.field} {t.off} -> {t.on}" for t in TRICKS.values())
    p.description += f" Tricks (the baseline has every one off): {tricks}."
    g = p.add_argument_group("what to compare")
    g.add_argument("--preset", default=d.preset, help="the architecture, a preset (default: %(default)s)")
    g.add_argument("--space", default=None, help="the preset's space (default: the space that has it)")
    g.add_argument("--tricks", type=names_list(TRICKS), default=d.tricks, metavar="T1,T2",
                   help=f"tricks switched on in this order, one row each (default: {','.join(d.tricks)})")
    add_seeds(g, d, "row", "the first seed (initial weights and batches), and the data split's")
    g = p.add_argument_group("training of each row")
    add_dataset(g, d.dataset)
    g.add_argument("--batch-size", type=int, default=d.batch_size, choices=BATCH_SIZES,
                   help="(default: %(default)s)")
    add_planned_training(g, d)
    g = p.add_argument_group("where it is recorded")
    g.add_argument("--study", default=None, help="study name (default: ablate-PRESET-DATASET)")
    add_storage(g)
    add_runs_dir(g, d.runs_dir)
    add_planned_tail(p)


@command(70, "ablate", _ablate_flags)
def run_ablate(args: argparse.Namespace) -> int:
    """what each training trick adds: a preset bare, then tricks added in turn, several seeds

    Train one preset bare, then with each named training trick switched on in turn (cumulatively), several seeds per
    row, and print each row's accuracy and error with the spread over the seeds. It runs as a small study
    (ablate-PRESET-DATASET): running it again trains only what the study lacks, and optuna-dashboard reads it.

    Example: tpsearch ablate --preset se_mxresnet20 --tricks cosine,label_smoothing,mixup,reflect --epochs 30
    """
    from tpsearch import dashboards
    from tpsearch.planned import AblateOptions, ablate

    return run_planned(args, "ablate", AblateOptions, ablate, "study", "ablation.html", dashboards.write_ablation,
                       _ablate_table)


def _ablate_table(result: dict[str, Any]) -> list[str]:
    """The human table's lines (`run_planned` prints them, with what is missing and the page's path)."""
    lines = [f"{result['preset']} ({result['params']:,} parameters) on {result['dataset']}: {result['epochs']} "
             f"epochs of {result['train_images']:,} images, batch {result['batch_size']}, {result['seeds']} seeds "
             f"per row; study {result['study']!r} ({result['trained_now']} trained now, {result['seconds']:.0f} s)"]
    names = [" + ".join(row["tricks"]) or "baseline" for row in result["rows"]]
    width = max(len("tricks"), *map(len, names))
    lines.append(f"  {'row':>3}  {'tricks':<{width}}  {'seeds':>5}  {'accuracy':>17}  {'error':>7}")
    for row, tricks in zip(result["rows"], names):
        if row["seeds"]:
            accuracy = f"{row['accuracy_mean']:.2%} ± {row['accuracy_std']:.2%}"
            error = f"{row['error_mean']:.2%}"
        else:
            accuracy, error = "not trained", ""
        lines.append(f"  {row['row']:>3}  {tricks:<{width}}  {row['seeds']:>5}  {accuracy:>17}  {error:>7}")
    for row in result["rows"]:
        if row["diverged"]:  # scored at chance accuracy, as a search scores a diverged trial
            lines.append(f"  row {row['row']}: {row['diverged']} of its {row['seeds']} trainings diverged "
                         f"(scored at chance accuracy)")
    return lines


def _rerank_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.planned import DEFAULT_TOP, RerankOptions

    d = RerankOptions()
    g = p.add_argument_group("what to retrain")
    add_study(g, "the search's study (default: the only study in the storage)")
    add_storage(g)
    g.add_argument("--top", type=int, default=None, metavar="K",
                   help=f"the K best completed trials (default: {DEFAULT_TOP}; with --pareto, the whole front)")
    g.add_argument("--pareto", action="store_true",
                   help="the Pareto front of parameters and accuracy instead (its K best with --top)")
    add_seeds(g, d, "architecture", "the first seed of the trainings (the data split stays the search's)")
    add_planned_training(p.add_argument_group("the fidelity of each training"), d, "(default: the search's)")
    add_runs_dir(p, d.runs_dir)
    add_planned_tail(p)


@command(80, "rerank", _rerank_flags)
def run_rerank(args: argparse.Namespace) -> int:
    """retrain a search's best trials over several seeds at a higher fidelity, and re-rank them

    Retrain the K best trials of a search (or its Pareto front) several times each at a higher fidelity, and rank them
    by the mean over the seeds, beside the search's own order. It runs as a linked study (STUDY-rerank, each trial
    recording its source trial): running it again trains only what that study lacks, and `tpsearch export` without
    --trial then takes the re-ranked winner.

    Example: tpsearch rerank --study resnet_5m-cifar10 --top 5 --seeds 3 --epochs 30
    """
    from tpsearch import dashboards
    from tpsearch.planned import RerankOptions, rerank

    return run_planned(args, "rerank", RerankOptions, rerank, "rerank_study", "rerank.html", dashboards.write_rerank,
                       _rerank_table)


def _rerank_table(result: dict[str, Any]) -> list[str]:
    """The human table's lines, in the re-ranked order (`run_planned` prints them, with what is missing and the
    page's path)."""
    from tpsearch.study import trial_label

    lines = [f"rerank of {result['study']!r} on {result['dataset']}: {result['seeds']} seeds each of {result['epochs']}"
             f" epochs on {result['train_images']:,} images (the search: {result['search_epochs']} epochs on "
             f"{result['search_train_images']:,}), scored on {result['validation_images']:,} validation images; "
             f"study {result['rerank_study']!r} ({result['trained_now']} trained now, {result['seconds']:.0f} s)"]
    if result["chosen"] == "top" and result["completed"] < result["top"]:
        lines.append(f"  the search has {result['completed']} completed trial(s), fewer than --top {result['top']}: "
                     f"all are re-ranked (trials the scheduler stopped early are not compared)")
    labels = [trial_label(row["source_trial"], row["trained"]) for row in result["rows"]]
    width = max(len("architecture"), *map(len, labels)) if labels else len("architecture")
    lines.append(f"  {'rank':>4}  {'architecture':<{width}}  {'parameters':>10}  {'search':>7}  {'(rank)':>6}  "
                 f"{'rerank mean ± std':>17}  {'seeds':>5}")
    for row, label in zip(result["rows"], labels):
        search = f"{row['search_value']:.2%}" if row["search_value"] is not None else "?"
        search_rank = f"({row['search_rank']})" if row["search_rank"] is not None else ""
        rerank = f"{row['mean']:.2%} ± {row['std']:.2%}" if row["n"] else "not trained"
        params = f"{row['params']:,}" if isinstance(row["params"], int) else "?"
        lines.append(f"  {row['rank'] or '':>4}  {label:<{width}}  {params:>10}  {search:>7}  {search_rank:>6}  "
                     f"{rerank:>17}  {row['n']:>5}")
    for row in result["rows"]:
        if row["diverged"]:  # scored at chance accuracy, as a search scores a diverged trial
            lines.append(f"  trial {row['source_trial']}: {row['diverged']} of its {row['n']} trainings diverged "
                         f"(scored at chance accuracy)")
    if result["winner"] is not None:
        same = "the search's best too" if result["winner"] == result["search_best"] else \
            f"the search's best was trial {result['search_best']}"
        lines.append(f"re-ranked winner: trial {result['winner']} ({same}); `tpsearch export --study "
                     f"{result['study']}` takes it")
    return lines
