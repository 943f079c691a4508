"""A killed worker process, and trials that diverge, run out of memory, raise and hang, in one search.

A lost Ray node is covered by tests/search_tests/test_run_faults.py::test_two_node_cluster_survives_losing_a_node
(and measured by benchmarks/bench_faults.py), not repeated here.
"""
from __future__ import annotations

import re

import pytest
from optuna.trial import TrialState

from tpsearch.search.testing import FAULTS, TRIAL_TIMEOUT, VICTIM, worker_faults
from tpsearch.search.testing import running, trained


@pytest.fixture(scope="module")
def case(ray_session, tmp_path_factory):
    return worker_faults(tmp_path_factory.mktemp("worker-faults"))


def test_the_search_still_ends_with_the_requested_trained_trials(case):
    assert case.rc == 0, case.error
    assert case.finished == case.requested == 3
    assert {t.number for t in trained(case.trials)} == {VICTIM, 5, 6}
    assert not running(case.trials)
    assert case.lost == []


def test_a_killed_worker_costs_its_trial_one_retry_by_ray_tune(case):
    killed = case.extra["killed"]
    victim = case.trials[VICTIM]
    assert killed["epochs_then"] < 4  # it was killed mid-trial
    assert victim.state == TrialState.COMPLETE
    assert list(victim.intermediate_values) == [1, 2, 3, 4]
    # Ray Tune retried it in a new worker process: one failure on Ray's record, another worker on ours.
    assert case.extra["ray_failures"][VICTIM] == 1
    assert victim.user_attrs["worker"] != killed["worker"]


def test_each_fault_fails_its_own_trial_with_its_reason(case):
    failed = {t.number: t.user_attrs.get("reason", "") for t in case.trials if t.state == TrialState.FAIL}
    assert set(failed) == set(FAULTS)  # no other trial failed: the faults stayed where they were injected
    by_fault = {fault: failed[n] for n, fault in FAULTS.items()}
    assert by_fault["nan"] == "diverged"
    assert re.fullmatch(r"out of memory at batch size \d+", by_fault["oom"]), by_fault["oom"]
    assert "raised or died" in by_fault["raise"]
    hang = re.fullmatch(r"timed out after (\d+) s \(--trial-timeout\)", by_fault["hang"])
    assert hang and int(hang.group(1)) >= TRIAL_TIMEOUT, by_fault["hang"]


def test_ray_retries_a_raising_trial_max_retries_times_but_never_a_timed_out_one(case):
    failures = case.extra["ray_failures"]
    number = {fault: n for n, fault in FAULTS.items()}
    assert failures[number["raise"]] == 1 + 1  # the first attempt and --max-retries 1
    assert failures[number["hang"]] <= 1  # never retried: a hang would only hang again
    # Divergence and OOM end inside the trainer: the worker reports them, Ray sees no failure.
    assert failures[number["nan"]] == failures[number["oom"]] == 0
