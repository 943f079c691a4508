"""A killed worker process, and trials that diverge, run out of memory, raise and hang, in one search; then
trials that diverge or run out of memory at known batch sizes, each told back in a state the sampler reads.

A lost Ray node is covered by tests/search_tests/test_run_faults.py
(test_a_cluster_started_with_ray_start_loses_a_node_and_no_trial_or_weights; measured by
benchmarks/bench_faults.py), not repeated here.
"""
from __future__ import annotations

import re

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.study import Outcome, outcome_of
from tpsearch.testing.search import FAULTS, TEACHING, TRIAL_TIMEOUT, VICTIM, teaching_faults, worker_faults
from tpsearch.testing.search import running, trained

pytestmark = pytest.mark.slow  # runs searches on Ray

OOM = r"out of memory at batch size \d+"


@pytest.fixture(scope="module")
def case(ray_session, tmp_path_factory):
    return worker_faults(tmp_path_factory.mktemp("worker-faults"))


def test_the_search_still_ends_with_the_requested_trained_trials(case):
    assert case.rc == 0, case.error
    assert case.finished == case.requested == 3
    nan = next(n for n, fault in FAULTS.items() if fault == "nan")
    assert {t.number for t in trained(case.trials)} == {VICTIM, nan, 5}  # a diverged trial is trained: it taught
    assert not running(case.trials)
    assert case.lost == []


def test_a_killed_worker_costs_its_trial_one_retry_by_ray_tune(case):
    killed = case.extra["killed"]
    victim = case.trials[VICTIM]
    assert killed["epochs_then"] < 4  # it was killed mid-trial
    assert victim.state == TrialState.COMPLETE
    assert list(victim.intermediate_values) == [4]  # without ASHA, only the last epoch is scored
    # Ray Tune retried it in a new worker process: one failure on Ray's record, another worker on ours.
    assert case.extra["ray_failures"][VICTIM] == 1
    assert victim.user_attrs["worker"] != killed["worker"]


def test_only_a_broken_worker_fails_its_trial_and_each_fault_keeps_its_reason(case):
    number = {fault: n for n, fault in FAULTS.items()}
    failed = {t.number: t.user_attrs.get("reason", "") for t in case.trials if t.state == TrialState.FAIL}
    assert set(failed) == {number["raise"], number["hang"]}  # no other trial failed
    assert "raised or died" in failed[number["raise"]]
    hang = re.fullmatch(r"timed out after (\d+) s \(--trial-timeout\)", failed[number["hang"]])
    assert hang and int(hang.group(1)) >= TRIAL_TIMEOUT, failed[number["hang"]]
    # States the sampler reads (TPE skips FAIL): a NaN loss and out of memory are PRUNED and infeasible.
    nan, oom = case.trials[number["nan"]], case.trials[number["oom"]]
    assert (nan.state, nan.user_attrs["reason"], nan.user_attrs["chance"], outcome_of(nan)) == \
        (TrialState.PRUNED, "diverged", 0.1, Outcome.DIVERGED)
    assert nan.constraints["diverged"] == 1.0
    assert (oom.state, oom.user_attrs["feasible"], outcome_of(oom)) == (TrialState.PRUNED, False, Outcome.INFEASIBLE)
    assert oom.constraints["memory"] == 1.0 and oom.constraints["params"] <= 0
    assert re.match(OOM, oom.user_attrs["reason"]), oom.user_attrs["reason"]


def test_ray_retries_a_raising_trial_max_retries_times_but_never_a_timed_out_one(case):
    failures = case.extra["ray_failures"]
    number = {fault: n for n, fault in FAULTS.items()}
    assert failures[number["raise"]] == 1 + 1  # the first attempt and --max-retries 1
    assert failures[number["hang"]] <= 1  # never retried: a hang would only hang again
    # Divergence and OOM end inside the trainer: the worker reports them, Ray sees no failure.
    assert failures[number["nan"]] == failures[number["oom"]] == 0


@pytest.fixture(scope="module")
def taught(ray_session, tmp_path_factory):
    return teaching_faults(tmp_path_factory.mktemp("teaching-faults"))


def test_diverged_and_out_of_memory_trials_teach_and_the_search_still_ends(taught):
    assert taught.rc == 0, taught.error
    assert taught.finished == taught.requested == 4 and not running(taught.trials)
    outcomes = {n: outcome_of(taught.trials[n]) for n in TEACHING}
    assert outcomes == {0: Outcome.COMPLETE, 1: Outcome.INFEASIBLE, 2: Outcome.INFEASIBLE, 3: Outcome.DIVERGED}
    assert not [t for t in taught.trials if t.state == TrialState.FAIL]


def test_out_of_memory_is_retried_once_at_half_the_batch(taught):
    fits = taught.trials[0]  # runs out of memory above 100 images a batch: 128 fails, 64 trains
    assert fits.params["batch_size"] == 128 and fits.user_attrs["batch_size"] == 64
    assert fits.user_attrs["oom_retry"] == "out of memory at batch size 128"
    assert fits.state in (TrialState.COMPLETE, TrialState.PRUNED) and 1 in fits.intermediate_values
    never = taught.trials[1]  # out of memory at 128, then at 64
    assert never.user_attrs["reason"] == "out of memory at batch size 64, after out of memory at batch size 128"
    assert never.user_attrs["batch_size"] == 64
    smallest = taught.trials[2]  # out of memory at 64, the space's smallest batch size: no retry
    assert smallest.user_attrs["reason"].startswith("out of memory at batch size 64, the smallest batch size")
    assert "oom_retry" not in smallest.user_attrs
    for t in (never, smallest):
        assert t.state == TrialState.PRUNED and t.constraints["memory"] == 1.0 and t.constraints["macs"] == 0.0


def test_the_sampler_reads_every_one_of_them(taught):
    """Optuna's TPE reads COMPLETE and PRUNED trials (a FAIL never reaches it) and ranks those with a positive
    constraint last: a diverged trial is infeasible through its `diverged` constraint, as out of memory through
    `memory`."""
    summary = taught.extra["summary"]
    study = optuna.load_study(study_name=summary.study, storage=summary.storage)
    read = {t.number: t for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))}
    assert set(TEACHING) <= set(read)
    assert [n for n in TEACHING if max(read[n].constraints.values()) > 0] == [1, 2, 3]
    assert read[3].constraints["diverged"] == 1.0 and read[3].user_attrs["reason"] == "diverged"


def test_no_diverged_out_of_memory_or_infeasible_trial_is_ever_among_tpes_good_trials(taught):
    """Optuna's own split (`_split_trials`, what TPE samples around) of the finished study, at every size of the
    good set up to the number of trials that trained normally: none of the faulty trials is in it. Before they were
    told infeasible, a diverged trial (COMPLETE at chance) came before every pruned one."""
    from optuna.samplers._tpe.sampler import _split_trials

    summary = taught.extra["summary"]
    study = optuna.load_study(study_name=summary.study, storage=summary.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    normal = [t for t in trials if outcome_of(t) in (Outcome.COMPLETE, Outcome.PRUNED)]
    faulty = {t.number for t in trials} - {t.number for t in normal}
    assert {1, 2, 3} <= faulty and normal
    for n_below in range(1, len(normal) + 1):
        below, _ = _split_trials(study, trials, n_below)
        assert not {t.number for t in below} & faulty, n_below
