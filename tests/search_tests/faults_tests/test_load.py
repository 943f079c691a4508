"""Load: a study of thousands of finished trials reports correctly and resumes without losing any of them.

How fast (status, resume, TPE per suggestion at 100, 1,000 and 10,000 trials) is measured by
benchmarks/bench_faults.py; here only correctness is asserted.
"""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.testing.search import BIG_STUDY, make_big_study, resume_to_first_ask, snapshot, status_json
from tpsearch.testing.search import SMALL, running, trained, trials

pytestmark = pytest.mark.slow  # builds a 10,000-trial study and resumes a search on it


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("big")
    return tmp, make_big_study(tmp / "studies.db", 2000, seed=11)


def test_status_counts_match_the_study_read_by_plain_optuna(big):
    tmp, storage = big
    _, out, r = status_json(storage, tmp)
    assert r.returncode == 0, r.stderr
    ts = optuna.load_study(study_name=BIG_STUDY, storage=storage).trials
    infeasible = [t for t in ts if t.user_attrs.get("feasible") is False]
    feasible = [t for t in ts if t.user_attrs.get("feasible") is not False]
    counts = out["studies"][BIG_STUDY]
    assert len(ts) == 2000
    assert counts["infeasible"] == len(infeasible)
    assert counts["trained"] == len(trained(ts))
    diverged = [t for t in feasible if t.state == TrialState.PRUNED and t.user_attrs.get("reason") == "diverged"]
    assert diverged and counts["diverged"] == len(diverged)  # told PRUNED (infeasible to TPE), with their reason
    assert counts["complete"] == sum(1 for t in feasible if t.state == TrialState.COMPLETE)
    assert counts["pruned"] == sum(1 for t in feasible if t.state == TrialState.PRUNED) - len(diverged)
    assert counts["failed"] == sum(1 for t in feasible if t.state == TrialState.FAIL)
    best = max((t for t in ts if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert out["detail"]["best"][0]["trial"] == best.number


def test_resuming_a_large_study_trains_one_more_and_changes_no_finished_trial(big, ray_session):
    tmp, storage = big
    before = trials(storage, BIG_STUDY)
    resume_to_first_ask(storage, tmp, train=SMALL[0])  # the worker's real training, of a network of seconds
    after = trials(storage, BIG_STUDY)
    assert len(trained(after)) == len(trained(before)) + 1
    (new,) = [t for t in after if t.number >= len(before)]
    assert new.user_attrs["arch"] == SMALL[0] and new.state == TrialState.COMPLETE and 0.0 < new.value <= 1.0
    now = snapshot(after)
    assert all(now.get(n) == record for n, record in snapshot(before).items())
    assert not running(after)
