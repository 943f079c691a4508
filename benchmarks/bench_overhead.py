"""Seconds of orchestration per trial (Ray + Optuna + storage) with a trainer that does nothing.

tpsearch (its Optuna searcher, the parameter budget, ASHA, SQLite study, per-epoch reports, attributes) against
the stock setup a user would otherwise write: Ray Tune's `OptunaSearch` with the same define-by-run space, the
same SQLite storage, the same ASHA scheduler and a function trainable reporting the same epochs. Both share one
local Ray session, run at the same concurrency, one after the other in this run.

    python benchmarks/bench_overhead.py [--trials 40] [--epochs 3] [--concurrency 2]

The last line is JSON with tpsearch_s_per_trial, stock_s_per_trial and ratio (tpsearch / stock). Exits 1 when
tpsearch's seconds per trial are above the goal, --max-s-per-trial (0.5 s).
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import tempfile
import time
import warnings

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

from _claims import finish  # noqa: E402  (this script's folder)


def stock_trainable(config: dict) -> None:
    from ray import tune

    score = 1.0 / (1.0 + abs(config["channels"] - 24) / 24)
    for epoch in range(1, config["__epochs"] + 1):
        tune.report({"epoch": epoch, "val_accuracy": score * epoch / config["__epochs"]})


def define_by_run(trial, epochs: int) -> dict:
    from tpsearch import spaces
    space = spaces.get("resnet_5m")
    space.suggest(trial)
    space.suggest_training(trial)
    return {"__epochs": epochs}


def run_stock(args: argparse.Namespace, tmp: str) -> tuple[float, dict]:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp}/stock.db")
    searcher = OptunaSearch(space=functools.partial(define_by_run, epochs=args.epochs), metric="val_accuracy",
                            mode="max", storage=storage, study_name="stock", sampler=optuna.samplers.TPESampler(seed=0))
    tuner = tune.Tuner(
        tune.with_resources(stock_trainable, {"cpu": 1}),
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", search_alg=searcher, num_samples=args.trials,
                                    max_concurrent_trials=args.concurrency,
                                    scheduler=ASHAScheduler(time_attr="epoch", max_t=args.epochs, grace_period=1,
                                                            reduction_factor=2),
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=f"{tmp}/stock_ray", verbose=0))
    t0 = time.perf_counter()
    results = tuner.fit()
    seconds = time.perf_counter() - t0
    study = optuna.load_study(study_name="stock", storage=storage)
    # Ray's results say which trials ASHA stopped before the last epoch; the study says how they were recorded.
    stopped = sum(1 for r in results if r.metrics and r.metrics.get("epoch", args.epochs) < args.epochs)
    complete = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    pruned = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.PRUNED)
    return seconds, {"stopped_early": stopped, "recorded_complete": complete, "recorded_pruned": pruned,
                     "complete_but_stopped_early": stopped if pruned == 0 else None, "trials": len(study.trials)}


def run_tpsearch(args: argparse.Namespace, tmp: str) -> tuple[float, dict]:
    import optuna

    from tpsearch.search import RunOptions, run_search
    from tpsearch.testing.search import noop_trial

    opts = RunOptions(dataset="synthetic", data_dir=f"{tmp}/data", trials=args.trials, epochs=args.epochs,
                      storage=f"sqlite:///{tmp}/tpsearch.db", runs_dir=f"{tmp}/runs", concurrency=args.concurrency,
                      reduction_factor=2, progress=False, keep_checkpoints=0)
    t0 = time.perf_counter()
    summary = run_search(opts, trainable=noop_trial)
    seconds = time.perf_counter() - t0
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    return seconds, {"finished": summary.finished, "pruned": summary.counts["pruned"],
                     "infeasible": summary.counts["infeasible"], "trials": len(study.trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-s-per-trial", type=float, default=0.5,
                        help="the goal: tpsearch's orchestration seconds per trial (default: %(default)s)")
    args = parser.parse_args()

    import optuna
    import ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    ray.init(num_cpus=args.concurrency, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        # Warm both paths once (imports, actor start-up) so that neither pays the other's first-use costs.
        warm = argparse.Namespace(trials=2, epochs=1, concurrency=args.concurrency)
        os.makedirs(tmp + "/w1"), os.makedirs(tmp + "/w2")
        run_stock(warm, tmp + "/w1")
        run_tpsearch(warm, tmp + "/w2")
        stock_s, stock_info = run_stock(args, tmp)
        ours_s, ours_info = run_tpsearch(args, tmp)
    ray.shutdown()
    ours, stock = ours_s / args.trials, stock_s / args.trials
    print(f"{args.trials} trials x {args.epochs} epochs, concurrency {args.concurrency}, no-op trainer")
    print(f"tpsearch        {ours:6.3f} s per trial  {ours_info}")
    print(f"stock Ray+Optuna {stock:6.3f} s per trial  {stock_info}")
    print(f"ratio            {ours / stock:6.2f}  (tpsearch / stock)")
    if stock_info["complete_but_stopped_early"]:
        print(f"note: the stock searcher recorded {stock_info['complete_but_stopped_early']} trials stopped by ASHA "
              f"as COMPLETE with a truncated score; tpsearch records them as PRUNED")
    finish({"trials": args.trials, "epochs": args.epochs, "concurrency": args.concurrency,
            "tpsearch_s_per_trial": ours, "stock_s_per_trial": stock, "ratio": ours / stock,
            "tpsearch": ours_info, "stock": stock_info},
           [(f"tpsearch at most {args.max_s_per_trial:g} s per trial, measured {ours:.3f} s",
             ours <= args.max_s_per_trial)])


if __name__ == "__main__":
    main()
