"""A search in which no trial reports any more (issue 26: Ray Tune left a trial pending forever, workers idle, with
nothing said): --stall-timeout's watchdog names what is stuck in one line, ends the stuck trials FAIL and the run,
and the same search then resumes."""
from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.search import run_search
from tpsearch.search._options import METRIC
from tpsearch.testing.search import STUDY, noop_trial, run_options, running, trained

pytestmark = pytest.mark.slow  # runs searches on Ray

BOUND = 30.0   # the test's --stall-timeout: seconds
SLACK = 120.0  # for killing the stuck workers and ending Ray Tune's run on a busy machine


def _report_once_then_wait(config: dict[str, Any], *, opts: Any, space: Any) -> None:
    """A trial that reports its first epoch, notes when, then waits on an event nothing ever sets: it never reports
    again and never ends, as a trial Ray Tune has lost does."""
    from ray import tune

    tune.report({"epoch": 1, "images": 256, METRIC: 0.5, "val_loss": 1.0, "train_loss": 1.0, "seconds": 0.0,
                 "status": "running"})
    # Past the report: Ray Tune's function trainable resumes here only once the driver has taken the result.
    Path(opts.runs_dir, f"silent-{config['trial_number']}").write_text(repr(time.time()))
    threading.Event().wait()


def test_a_search_that_stalls_says_what_is_stuck_ends_and_resumes(ray_session, tmp_path):
    opts = run_options(tmp_path, trials=2, concurrency=2, stall_timeout=BOUND)
    Path(opts.runs_dir).mkdir(parents=True)
    started = time.time()
    summary = run_search(opts, trainable=_report_once_then_wait)
    ended = time.time()

    # One line, naming every stuck trial and since when.
    line = summary.error or ""
    assert "\n" not in line and line.startswith("the search stalled: no trial reported for "), line
    study = optuna.load_study(study_name=STUDY, storage=opts.storage)
    stuck = [t for t in study.trials if t.state == TrialState.FAIL]
    assert stuck and not running(study.trials)
    for t in stuck:
        assert t.user_attrs["reason"].startswith("stalled: no trial reported for "), t.user_attrs
        assert re.search(rf"#{t.number} \((epoch 1 reported|no report yet), silent since \d\d:\d\d:\d\d, \d+ s\)",
                         line), line
    # It ended within the bound of the last sign of progress, give or take the time to end Ray Tune's run.
    silent = [float(p.read_text()) for p in Path(opts.runs_dir).glob("silent-*")]
    assert ended - max(silent, default=started) < BOUND + SLACK, (ended - started, line)

    # The same search resumes: with trials that report, it trains the two it asked for.
    again = run_search(dataclasses.replace(opts, stall_timeout=None), trainable=noop_trial)
    assert again.error is None, again.error
    study = optuna.load_study(study_name=STUDY, storage=opts.storage)
    assert len(trained(study.trials)) == 2 and not running(study.trials)
