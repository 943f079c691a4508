"""One contract over every storage backend tpsearch opens: SQLite and PostgreSQL, each behind `RetryingStorage`
as the driver uses it (Optuna's `pytest_storages` is the model). What the driver, `status` and the lease rely on."""
from __future__ import annotations

import copy
import subprocess
import sys
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.exceptions import UsageError
from tpsearch.study import Outcome, best_trial, outcome_of
from tpsearch.storages import DriverLease, RetryingStorage, load_study, open_storage, redact, study_names


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/studies.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def storage(url):
    return RetryingStorage(open_storage(url))


@pytest.fixture
def study(storage):
    name = f"contract-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    yield study
    optuna.delete_study(study_name=name, storage=storage)


def test_trials_round_trip_with_the_driver_vocabulary(study, url):
    done = study.ask()
    done.set_user_attr("arch", {"layers": 1, "blocks": [1]})
    done.set_user_attr("feasible", True)
    done.report(0.5, step=1)
    study.tell(done, 0.75)
    over = study.ask()
    over.set_user_attr("feasible", False)
    over.set_constraint("params", 10.0)
    study.tell(over, state=TrialState.PRUNED)
    failed = study.ask()
    failed.set_user_attr("reason", "diverged")
    study.tell(failed, state=TrialState.FAIL)
    # Read back through a fresh storage, as another process (optuna-dashboard, `tpsearch status`) would.
    trials = optuna.load_study(study_name=study.study_name, storage=url).trials
    assert [outcome_of(t) for t in trials] == [Outcome.COMPLETE, Outcome.INFEASIBLE, Outcome.FAILED]
    assert trials[0].user_attrs["arch"] == {"layers": 1, "blocks": [1]} and trials[0].intermediate_values == {1: 0.5}
    assert trials[1].constraints == {"params": 10.0} and trials[2].user_attrs["reason"] == "diverged"
    assert best_trial(trials).number == 0


def test_study_listing_and_loading(study, storage):
    assert study.study_name in study_names(storage)
    assert load_study(storage, study.study_name).study_name == study.study_name
    with pytest.raises(UsageError, match="no study named 'nope-nope'"):
        load_study(storage, "nope-nope")


# Another driver, as a process of its own: it takes the study's lease, says "held" and keeps it until its stdin
# closes, then releases it and exits.
OTHER_DRIVER = """
import sys
import optuna
from tpsearch.storages import DriverLease, RetryingStorage, open_storage
study = optuna.load_study(study_name=sys.argv[2], storage=RetryingStorage(open_storage(sys.argv[1])))
lease = DriverLease(study)
lease.acquire()
print("held", flush=True)
sys.stdin.read()
lease.release()
"""


def test_a_second_driver_is_refused_and_a_released_lease_is_free(study, url):
    other = subprocess.Popen([sys.executable, "-c", OTHER_DRIVER, url, study.study_name], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline() == "held\n", other.stderr.read()  # written once its lease is taken
        with pytest.raises(UsageError, match=f"is being searched by pid {other.pid} on "):
            DriverLease(study).acquire()
    finally:
        _, err = other.communicate(timeout=120)  # closes its stdin: it releases the lease and exits
    assert other.returncode == 0, err
    mine = DriverLease(study)
    mine.acquire()  # free once the other has released it
    mine.release()
    assert study._storage.get_study_user_attrs(study._study_id).get("driver") is None


def test_the_retrying_wrapper_copies_and_pickles(storage, study):
    import pickle

    for clone in (copy.copy(storage), copy.deepcopy(storage), pickle.loads(pickle.dumps(storage))):
        assert [s.study_name for s in clone.get_all_studies()] == study_names(storage)


def test_a_read_only_open_never_creates_a_sqlite_file(tmp_path):
    with pytest.raises(UsageError, match="no study storage at"):
        open_storage(f"sqlite:///{tmp_path}/typo.db", create=False)
    assert not (tmp_path / "typo.db").exists()


def test_errors_never_show_a_password():
    assert redact("postgresql+psycopg2://user:secret@host/db") == "postgresql+psycopg2://user:***@host/db"
    with pytest.raises(UsageError) as e:
        open_storage("postgresql+psycopg2://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(e.value)
