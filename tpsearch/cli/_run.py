"""Search architectures and training hyperparameters of a space under a parameter budget and a compute budget
(MACs per image, 2 GMAC per 32x32 image unless --max-macs says otherwise). Optuna (TPE or random) samples in this
process, which alone writes the study; Ray Tune trains each feasible trial on a worker and ASHA stops the trials
clearly behind early. Running the same command again resumes the study until
--trials trials have been trained.

(`tpsearch run`: its flags are `RunOptions`' fields, one to one, with the defaults from there; --repeat alone is
the command's, a loop over seeds.)
"""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import asdict, replace

from tpsearch.exceptions import UsageError
from tpsearch.search import SAMPLERS, SCHEDULERS, RunOptions, run_search
from tpsearch.search import AUTO, GIB_PER_TRIAL, MACS_PER_32X32, MAX_TRIALS_PER_GPU
from tpsearch.study import OBJECTIVES
from tpsearch.study import trial_label
from tpsearch.cli._flags import (max_macs_arg, add_data_dir, add_dataset, add_device, add_json, add_progress,
                                        add_runs_dir, add_storage, dashboard_path, emit_json, names_list,
                                        options_from)
from tpsearch.cli._registry import command
from tpsearch.spaces import OPTIONS as OPTION_NAMES
from tpsearch.spaces import SEARCHED_TRICKS

_D = RunOptions()


def _run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to search")
    g.add_argument("--space", default=_D.space, help="search space: a name (see `tpsearch spaces`), or FILE.py:CLASS "
                   "or MODULE:CLASS of your own (a `tpsearch.spaces.Space` subclass)")
    g.add_argument("--trials", type=int, default=_D.trials,
                   help="trained trials wanted in the study (completed, pruned or diverged; failed and infeasible "
                        "ones do not count)")
    g.add_argument("--max-params", type=int, default=_D.max_params, help="parameter budget of a feasible model")
    g.add_argument("--max-macs", type=max_macs_arg, default=_D.max_macs, metavar="N|auto|none",
                   help=f"MACs per image of a feasible model (as `tpsearch describe` counts them); default auto: "
                        f"{MACS_PER_32X32 / 1e9:g} GMAC per 32x32 image, scaled by the image's area (125 MMAC for "
                        f"8x8 digits), or the cap of the study resumed; none: no limit")
    g.add_argument("--max-latency-ms", type=float, default=_D.max_latency_ms, metavar="MS",
                   help="milliseconds per image at batch 1 on the trial's device (`tpsearch latency` measures one), "
                        "timed before training; default: no limit")
    g.add_argument("--objectives", type=names_list(OBJECTIVES, "objective"), default=_D.objectives,
                   metavar="accuracy[,COST...]",
                   help="what the study optimises: accuracy alone (default), or accuracy then costs, "
                        "comma-separated, from params, macs, latency (ms per image at batch 1 on the trial's "
                        "device): a multi-objective study whose Pareto front `status`, `dashboard` and "
                        "`export --pareto` show; the budgets still apply")
    g.add_argument("--sampler", default=_D.sampler, choices=SAMPLERS,
                   help="Optuna sampler: tpe (multi-objective with --objectives), random, or nsga2 (NSGA-II)")
    g.add_argument("--startup-trials", type=int, default=_D.startup_trials,
                   help="tpe: trained trials drawn at random before TPE models them")
    g.add_argument("--seed", type=int, default=_D.seed, help="seed of the sampler, the data split and training")
    g.add_argument("--enqueue", action="append", default=[], metavar="PRESET|FILE.json",
                   help="train a known architecture first (warm start); repeatable")
    g.add_argument("--options", type=names_list(OPTION_NAMES, "option"), default=[], metavar="O1,O2",
                   help=f"architecture options the search also samples, comma-separated: {', '.join(OPTION_NAMES)} "
                        f"(those the space takes: `tpsearch spaces`; unnamed ones stay off)")
    g.add_argument("--tricks", type=names_list(SEARCHED_TRICKS), default=[], metavar="T1,T2",
                   help=f"training tricks the search also samples, comma-separated: {', '.join(SEARCHED_TRICKS)} "
                        f"(unnamed ones stay off: no mixup, no confidence penalty, cosine decay, reflection "
                        f"padding)")
    g.add_argument("--repeat", type=int, default=1, metavar="S",
                   help="the same search under S seeds (SEED, SEED+1, ...), one after another, each in a study of "
                        "its own, STUDY-seedK (SPACE-DATASET-SAMPLER-seedK without --study): `tpsearch compare "
                        "--group-by sampler` then tells samplers apart from luck")
    g = p.add_argument_group("where it is recorded")
    g.add_argument("--study", default=None,
                   help="study name (default: SPACE-DATASET, with -accuracy-COST... for several --objectives)")
    add_storage(g)
    add_runs_dir(g, _D.runs_dir)
    g.add_argument("--keep-checkpoints", type=int, default=_D.keep_checkpoints,
                   help="keep the weights of the best K completed trials")
    g = p.add_argument_group("training of each trial")
    add_dataset(g, _D.dataset, help="data set (`tpsearch train --help` describes each)")
    add_data_dir(g, _D.data_dir)
    g.add_argument("--epochs", type=int, default=_D.epochs, help="epochs of a trial that is not stopped early")
    g.add_argument("--train-fraction", type=float, default=_D.train_fraction,
                   help="fidelity: train on this fraction of the training split")
    g.add_argument("--train-images", type=int, default=None, help="fidelity: train on this many images")
    g.add_argument("--warmup-epochs", type=float, default=_D.warmup_epochs,
                   help="learning-rate warm-up of each trial, in epochs' worth of images; under ASHA it must end by "
                        "the first rung (--grace-epochs)")
    add_device(g, _D.device)
    g.add_argument("--compile", action="store_true", help="torch.compile each model (CUDA)")
    g.add_argument("--tta-flip", action="store_true",
                   help="score each validation image as the mean of it and its mirror image (CIFAR-like data)")
    g = p.add_argument_group("scheduling")
    g.add_argument("--scheduler", default=_D.scheduler, choices=SCHEDULERS,
                   help="asha stops weak trials early on validation accuracy; none trains all to --epochs")
    g.add_argument("--grace-epochs", type=int, default=_D.grace_epochs,
                   help="ASHA: epochs' worth of images before a trial may stop (the first rung; rungs and --epochs "
                        "count images seen, so every batch size is compared after the same data)")
    g.add_argument("--reduction-factor", type=int, default=_D.reduction_factor, help="ASHA: keep 1/ETA per rung")
    g.add_argument("--stop-margin", type=float, default=_D.stop_margin, metavar="Z",
                   help="ASHA stops a trial at a rung only where its validation accuracy is below the rung's cutoff "
                        "by more than Z standard errors of the difference of two accuracies on the validation "
                        "split (binomial, from its size): where trials cannot be told apart, nobody is stopped; "
                        "0 is ASHA's rule, the default because `tpsearch simulate` ranks it best (README)")
    g.add_argument("--min-rung-steps", type=int, default=_D.min_rung_steps, metavar="STEPS",
                   help="ASHA judges a trial at a rung only once it has taken this many optimizer steps (a large "
                        "batch takes fewer steps for the same images); before that it goes on to the next rung")
    g.add_argument("--reproducible", action="store_true",
                   help="take decisions in launch order, not arrival order: with N trials at once, a trial is "
                        "drawn once every trial launched N before it has finished, and judged against those only; "
                        "the same seed then gives the same study on the same machine, however loaded (workers may "
                        "wait for an earlier trial)")
    g.add_argument("--gpus-per-trial", type=_gpus, default=_D.gpus_per_trial, metavar="G|auto",
                   help=f"GPUs per trial, fractions allowed (0.25 packs four per GPU); default auto: as many trials "
                        f"per GPU as its memory holds at {GIB_PER_TRIAL} GiB each, a power of two up to "
                        f"{MAX_TRIALS_PER_GPU} (4 on an 80 GB H100), one per GPU without a MACs cap or on a "
                        f"cluster joined with --address, 0 without GPUs")
    g.add_argument("--cpus-per-trial", type=float, default=_D.cpus_per_trial, help="CPUs per trial")
    g.add_argument("--concurrency", type=int, default=None, help="at most this many trials at once")
    g.add_argument("--address", default=None,
                   help="join a running Ray cluster: the head's HOST:PORT (`ray start --head --port PORT`), or "
                        "auto for the cluster started on this machine; default: start Ray locally")
    g.add_argument("--connect-timeout", type=float, default=_D.connect_timeout, metavar="SECONDS",
                   help="give up joining --address after this long (one line, exit 2, nothing written)")
    g.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                   help="kill a trial that runs longer than this (it is recorded FAIL, not retried)")
    g.add_argument("--stall-timeout", type=float, default=None, metavar="SECONDS",
                   help="end the run when no trial has reported for this long, naming the stuck trials (they are "
                        "recorded FAIL; the same command resumes). Default: 20 minutes, or 5 times the longest gap "
                        "seen between two reports of a trial if longer")
    g.add_argument("--max-retries", type=int, default=_D.max_retries,
                   help="retries of a trial whose worker died (a killed process, a lost node)")
    p.add_argument("--dashboard", nargs="?", const="", default=None, metavar="PATH",
                   help="keep a dashboard page up to date while the search runs (default path: "
                        "RUNS_DIR/STUDY/dashboard.html)")
    p.add_argument("--dashboard-every", type=float, default=_D.dashboard_every,
                   help="rewrite the dashboard at most every this many seconds")
    add_progress(p)
    add_json(p)


def _gpus(text: str) -> float | str:
    if text == AUTO:
        return AUTO
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or auto, but got {text!r}") from None


@command(50, "run", _run_flags,
         description=__doc__.split("\n\n")[0])
def run(args: argparse.Namespace) -> int:
    """search a space: Optuna samples, Ray Tune trains, the study records"""
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, but got {args.repeat}")
    opts = options_from(RunOptions, args, dashboard=None)
    if args.repeat == 1:
        return _run_one(args, opts)
    # Named for the sampler too unless --study names them: a TPE and a random repeat must not share studies.
    stem = opts.study or f"{opts.study_name()}-{opts.sampler}"
    results = []
    for seed in range(opts.seed, opts.seed + args.repeat):
        one = replace(opts, seed=seed, study=f"{stem}-seed{seed}")
        code = _run_one(args, one, json_line=False)
        results.append(one.study)
        if code:
            return code
    if args.json:
        emit_json({"studies": results})
    return 0


def _run_one(args: argparse.Namespace, opts: RunOptions, json_line: bool = True) -> int:
    writer = None
    if args.dashboard is not None:  # the live page: drawn by the dashboards, handed to the driver as a writer
        from tpsearch import dashboards

        opts.dashboard = path = args.dashboard or str(dashboard_path(opts.runs_dir, opts.study_name()))
        writer = functools.partial(dashboards.write_dashboard, path=path, max_params=opts.max_params)
    summary = run_search(opts, page=writer)
    best = ("none yet" if summary.best_value is None else
            f"{trial_label(summary.best_trial, summary.best_trained)}: {summary.best_value:.4f} with "
            f"{summary.best_params:,} parameters")
    c = summary.counts
    page = f"; dashboard {opts.dashboard}" if opts.dashboard else ""
    # The result on stdout; with --json, stdout is the JSON line alone and the sentence goes to stderr.
    print(f"study {summary.study!r}: {summary.finished}/{summary.requested} trained "
          f"({c['complete']} completed, {c['pruned']} pruned, {c['diverged']} diverged), {c['failed']} failed, "
          f"{c['infeasible']} infeasible draws; best {best}; {summary.seconds:.1f} s{page}",
          file=sys.stderr if args.json else sys.stdout)
    if summary.pareto:
        costs = summary.objectives[1:]
        points = "; ".join(f"trial {r['trial']}: {r['accuracy']:.4f}, "
                           + ", ".join(f"{r[c]:.3g} ms" if c == "latency" else f"{r[c]:,.0f} {c}" for c in costs)
                           for r in summary.pareto)
        print(f"Pareto front ({len(summary.pareto)} trials; accuracy, {', '.join(costs)}): {points}",
              file=sys.stderr if args.json else sys.stdout)
    if args.json and json_line:
        emit_json(asdict(summary))
    if summary.interrupted:  # first: an interrupt's FAILs may also have tripped the failure limit
        print("tpsearch run: interrupted; running trials marked FAIL. Run the same command to resume.",
              file=sys.stderr)
        return 130
    if summary.error:
        print(f"tpsearch run: error: {summary.error}", file=sys.stderr)
        return 1
    return 0
