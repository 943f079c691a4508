"""Storage faults: SQLite locked by another process, a full disk under the checkpoints, PostgreSQL restarted."""
from __future__ import annotations

import os

import pytest
from optuna.trial import TrialState

from tpsearch.testing.search import disk_full, postgres_restart, postgres_restart_command, sqlite_locked
from tpsearch.testing.search import running, trained

pytestmark = pytest.mark.slow  # runs searches on Ray


def test_a_search_waits_out_another_process_holding_the_sqlite_write_lock(ray_session, tmp_path):
    case = sqlite_locked(tmp_path)
    lock = case.extra["lock"]
    assert lock["released"] and lock["running_then"] >= 1  # the lock really overlapped running trials
    assert case.rc == 0, case.error
    assert case.finished == case.requested
    assert not running(case.trials) and case.lost == []
    assert not [t for t in case.trials if t.state == TrialState.FAIL]


def test_a_full_disk_costs_the_checkpoint_never_the_trained_trial(ray_session, tmp_path):
    case = disk_full(tmp_path)
    if case.extra.get("skipped"):
        pytest.skip(case.extra["skipped"])
    assert case.rc == 0, case.error
    assert case.finished == case.requested
    for t in trained(case.trials):
        assert t.state == TrialState.COMPLETE
        assert t.user_attrs.get("checkpoint_error"), t.user_attrs
        assert "checkpoint" not in t.user_attrs  # nothing recorded that export would fail to read
    assert not case.extra["kept"]
    assert case.extra["files_left"] == ["filler"]  # no half-written checkpoint left behind


def test_a_postgresql_restart_mid_search_is_ridden_out(ray_session, tmp_path, postgres_url):
    command, why = postgres_restart_command(os.environ.get("TPSEARCH_TEST_POSTGRES_DATA"))
    if command is None:
        pytest.skip(why)
    case = postgres_restart(tmp_path, postgres_url, command)
    assert case.rc == 0, case.error
    assert case.finished == case.requested
    assert not running(case.trials) and case.lost == []
