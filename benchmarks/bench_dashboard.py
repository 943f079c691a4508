"""How long `tpsearch dashboard` takes on a 10,000-trial study, and how large the page is.

    python benchmarks/bench_dashboard.py                 # 10,000 trials
    python benchmarks/bench_dashboard.py --trials 2000

Setup (not measured): a synthetic study in the driver's format (`dashboards.testing.make_study`) written to a
temporary SQLite file. Measured, as the command does it: a fresh process-level open of the storage, reading every
trial (`load_s`), then building and writing the page (`page_s`); `build_s` is both together. Prints human lines,
then one JSON object as the last line, and exits 1 when the page took longer than --limit-s or is larger than
--limit-mb, or does not hold the study (its count of trials and its best accuracy): a page that lost its data is
fast and small too.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from tpsearch import dashboards
from tpsearch.testing.dashboards import make_study

from _claims import finish  # this script's folder

LIMIT_S, LIMIT_MB = 15.0, 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--limit-s", type=float, default=LIMIT_S, help="seconds to read and build (default: %(default)s)")
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB, help="size of the page (default: %(default)s)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        make_study(args.trials, storage=url, study_name="bench")
        setup_s = time.perf_counter() - t0
        print(f"setup: {args.trials:,} trials written to SQLite in {setup_s:.1f} s (not measured)")

        t0 = time.perf_counter()
        study = optuna.load_study(study_name="bench", storage=url)  # a new storage object: nothing cached
        trials = study.get_trials(deepcopy=False)
        t1 = time.perf_counter()
        page = dashboards.write_dashboard(study, Path(tmp) / "bench.html", trials=trials)
        t2 = time.perf_counter()
        size_mb = page.stat().st_size / 1e6
        text = page.read_text(encoding="utf-8")
    done = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    count_shown = f"<span>{len(trials):,} trials</span>" in text
    best_shown = bool(done) and f"best accuracy: <b>{max(done):.2%}</b>" in text

    result = {"trials": len(trials), "build_s": round(t2 - t0, 2), "load_s": round(t1 - t0, 2),
              "page_s": round(t2 - t1, 2), "page_mb": round(size_mb, 2), "limit_s": args.limit_s,
              "limit_mb": args.limit_mb}
    print(f"read trials: {result['load_s']:.2f} s   build + write page: {result['page_s']:.2f} s   "
          f"total: {result['build_s']:.2f} s (limit {args.limit_s:g} s)")
    print(f"page: {size_mb:.2f} MB (limit {args.limit_mb:g} MB)")
    finish(result, [(f"read and build in {args.limit_s:g} s, took {t2 - t0:.2f} s", t2 - t0 <= args.limit_s),
                    (f"a page of at most {args.limit_mb:g} MB, wrote {size_mb:.2f} MB", size_mb <= args.limit_mb),
                    (f"the page counts the {len(trials):,} trials read", count_shown),
                    (f"the page shows the study's best accuracy, {max(done, default=float('nan')):.2%}", best_shown)])


if __name__ == "__main__":
    main()
