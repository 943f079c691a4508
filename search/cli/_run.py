"""`tpsearch run` and `tpsearch status`: the main job and a look at what the storage holds."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

import optuna
from optuna.trial import TrialState

from search._driver import SAMPLERS, SCHEDULERS, RunOptions, run_search
from search._output import emit_json
from search._states import is_infeasible, is_trained
from search._storage import DEFAULT_STORAGE, load_study, open_storage, study_names

_D = RunOptions()


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="search a space: Optuna samples, Ray Tune trains, the study records",
        description="Search architectures and training hyperparameters of a space under a parameter budget. "
                    "Optuna (TPE or random) samples in this process, which alone writes the study; Ray Tune "
                    "trains each feasible trial on a worker and ASHA stops weak ones early. Running the same "
                    "command again resumes the study until --trials trials have been trained.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("what to search")
    g.add_argument("--space", default=_D.space, help="search space (see `tpsearch spaces`)")
    g.add_argument("--trials", type=int, default=_D.trials,
                   help="trained trials wanted in the study (completed or pruned; infeasible draws do not count)")
    g.add_argument("--max-params", type=int, default=_D.max_params, help="parameter budget of a feasible model")
    g.add_argument("--sampler", default=_D.sampler, choices=SAMPLERS, help="Optuna sampler")
    g.add_argument("--seed", type=int, default=_D.seed, help="seed of the sampler, the data split and training")
    g.add_argument("--enqueue", action="append", default=[], metavar="PRESET|FILE.json",
                   help="train a known architecture first (warm start); repeatable")
    g = p.add_argument_group("where it is recorded")
    g.add_argument("--study", default=None, help="study name (default: SPACE-DATASET)")
    g.add_argument("--storage", default=_D.storage, help="SQLAlchemy URL of the study storage (SQLite, PostgreSQL)")
    g.add_argument("--runs-dir", default=_D.runs_dir, help="checkpoints and Ray's logs go to RUNS_DIR/STUDY/")
    g.add_argument("--keep-checkpoints", type=int, default=_D.keep_checkpoints,
                   help="keep the weights of the best K completed trials")
    g = p.add_argument_group("training of each trial")
    g.add_argument("--dataset", default=_D.dataset, help="cifar10, cifar100, digits (offline) or synthetic")
    g.add_argument("--data-dir", default=_D.data_dir, help="where data sets are read from and downloaded to")
    g.add_argument("--epochs", type=int, default=_D.epochs, help="epochs of a trial that is not stopped early")
    g.add_argument("--train-fraction", type=float, default=_D.train_fraction,
                   help="fidelity: train on this fraction of the training split")
    g.add_argument("--train-images", type=int, default=None, help="fidelity: train on this many images")
    g.add_argument("--device", default=_D.device, help="auto, cpu or cuda")
    g.add_argument("--compile", action="store_true", help="torch.compile each model (CUDA)")
    g = p.add_argument_group("scheduling")
    g.add_argument("--scheduler", default=_D.scheduler, choices=SCHEDULERS,
                   help="asha stops weak trials early on validation accuracy; none trains all to --epochs")
    g.add_argument("--grace-epochs", type=int, default=_D.grace_epochs, help="ASHA: epochs before a trial may stop")
    g.add_argument("--reduction-factor", type=int, default=_D.reduction_factor, help="ASHA: keep 1/ETA per rung")
    g.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial, fractions allowed (0.25 packs four per GPU); default 1 where the cluster "
                        "has GPUs, else 0")
    g.add_argument("--cpus-per-trial", type=float, default=_D.cpus_per_trial, help="CPUs per trial")
    g.add_argument("--concurrency", type=int, default=None, help="at most this many trials at once")
    g.add_argument("--address", default=None,
                   help="join a running Ray cluster (`ray start --head`); default: start Ray locally")
    g.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                   help="kill a trial that runs longer than this (it is recorded FAIL, not retried)")
    g.add_argument("--max-retries", type=int, default=_D.max_retries,
                   help="retries of a trial whose worker died (a killed process, a lost node)")
    p.add_argument("--dashboard", nargs="?", const="", default=None, metavar="PATH",
                   help="keep a dashboard page up to date while the search runs (default path: "
                        "dashboards/STUDY.html)")
    p.add_argument("--dashboard-every", type=float, default=_D.dashboard_every,
                   help="rewrite the dashboard at most every this many seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON summary object as the last line")
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    opts = RunOptions(
        space=args.space, trials=args.trials, study=args.study, storage=args.storage, sampler=args.sampler,
        seed=args.seed, max_params=args.max_params, dataset=args.dataset, data_dir=args.data_dir, epochs=args.epochs,
        train_fraction=args.train_fraction, train_images=args.train_images, scheduler=args.scheduler,
        grace_epochs=args.grace_epochs, reduction_factor=args.reduction_factor, gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial, concurrency=args.concurrency, address=args.address,
        enqueue=args.enqueue, keep_checkpoints=args.keep_checkpoints, runs_dir=args.runs_dir,
        max_retries=args.max_retries, device=args.device, compile=args.compile, progress=not args.no_progress,
        dashboard_every=args.dashboard_every, trial_timeout=args.trial_timeout, faults=_faults_from_env())
    if args.dashboard is not None:
        opts.dashboard = args.dashboard or f"dashboards/{opts.study_name()}.html"
    summary = run_search(opts)
    best = ("none yet" if summary.best_value is None else
            f"trial {summary.best_trial}: {summary.best_value:.4f} with {summary.best_params:,} parameters")
    print(f"study {summary.study!r}: {summary.finished}/{summary.requested} trained "
          f"({summary.completed} completed, {summary.pruned} pruned), {summary.failed} failed, "
          f"{summary.infeasible} infeasible draws; best {best}; {summary.seconds:.1f} s", file=sys.stderr)
    if args.json:
        emit_json(asdict(summary))
    if summary.interrupted:  # first: an interrupt's FAILs may also have tripped the failure limit
        print("tpsearch run: interrupted; running trials marked FAIL. Run the same command to resume.",
              file=sys.stderr)
        return 130
    if summary.error:
        print(f"tpsearch run: error: {summary.error}", file=sys.stderr)
        return 1
    return 0


def _faults_from_env() -> dict[int, str]:
    """Test hook of the fault suite: TPSEARCH_FAULTS='{"3": "nan"}' injects a fault into trial 3."""
    raw = os.environ.get("TPSEARCH_FAULTS")
    if not raw:
        return {}
    return {int(k): str(v) for k, v in json.loads(raw).items()}


def add_status_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="studies in the storage, trial counts by state, the best trials",
                       description="List the studies of a storage with their trial counts by state; with "
                                   "--study (or when there is one study), the best trials as a table.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--study", default=None, help="the study to detail")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="SQLAlchemy URL of the study storage")
    p.add_argument("--top", type=int, default=10, help="best trials shown")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=run_status)


def study_counts(study: optuna.Study) -> dict[str, int]:
    counts = {"trained": 0, "complete": 0, "pruned": 0, "infeasible": 0, "fail": 0, "running": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        if is_infeasible(t):
            counts["infeasible"] += 1
            continue
        counts["trained"] += is_trained(t)
        key = t.state.name.lower()
        counts[key] = counts.get(key, 0) + 1
    return counts


def best_rows(study: optuna.Study, top: int) -> list[dict[str, Any]]:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    done.sort(key=lambda t: t.value, reverse=True)
    return [{"trial": t.number, "val_accuracy": t.value, "params": t.user_attrs.get("params"),
             "macs": t.user_attrs.get("macs"), "epochs": t.user_attrs.get("epochs"),
             "seconds": t.user_attrs.get("seconds"), "arch": t.user_attrs.get("arch")} for t in done[:top]]


def run_status(args: argparse.Namespace) -> int:
    # One cached storage for every read: each optuna.load_study on a bare RDBStorage would read all trials again.
    storage = optuna.storages.get_storage(open_storage(args.storage, create=False))
    names = study_names(storage)
    detail_study = load_study(storage, args.study) if (args.study is not None or len(names) == 1) else None
    studies = {}
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        studies[name] = {"space": study.user_attrs.get("space"), "dataset": study.user_attrs.get("dataset"),
                         "max_params": study.user_attrs.get("max_params"), **study_counts(study)}
    detail = None
    if detail_study is not None:
        detail = {"study": detail_study.study_name, "best": best_rows(detail_study, args.top)}
    if args.json:
        emit_json({"storage": args.storage, "studies": studies, **({"detail": detail} if detail else {})})
        return 0
    if not names:
        print(f"no studies in {args.storage}")
        return 0
    print(f"{'study':<32} {'space':<12} {'dataset':<10} {'trained':>7} {'complete':>8} {'pruned':>6} "
          f"{'failed':>6} {'infeasible':>10} {'running':>7}")
    for name, s in studies.items():
        print(f"{name:<32} {str(s['space']):<12} {str(s['dataset']):<10} {s['trained']:>7} {s['complete']:>8} "
              f"{s['pruned']:>6} {s['fail']:>6} {s['infeasible']:>10} {s['running']:>7}")
    if detail:
        print(f"\nbest trials of {detail['study']!r}:")
        print(f"{'trial':>6} {'val_acc':>8} {'params':>10} {'MMACs':>9} {'epochs':>6}  arch")
        for r in detail["best"]:
            macs = f"{r['macs'] / 1e6:9.1f}" if r["macs"] else f"{'-':>9}"
            print(f"{r['trial']:>6} {r['val_accuracy']:>8.4f} {r['params'] or 0:>10,} {macs} {r['epochs'] or 0:>6}  "
                  f"{r['arch']}")
    return 0
