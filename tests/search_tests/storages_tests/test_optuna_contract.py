"""Optuna's own storage contract (`optuna.testing.pytest_storages.StorageTestCase`, the suite Optuna runs over its
storages) over `RetryingStorage` as the driver builds it, on SQLite and PostgreSQL; and the writes whose answer is
lost after their commit (a database restart at the wrong moment), which a retry must not apply twice."""
from __future__ import annotations

import uuid

import optuna
import pytest
import sqlalchemy as sa
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.testing.pytest_storages import StorageTestCase
from optuna.trial import TrialState

from tpsearch.search.storages import RetryingStorage, open_storage
from tpsearch.search.testing import lose_acknowledgement


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def contract_database(request):
    """An empty PostgreSQL database of the contract's own (the suite counts every study in its storage)."""
    url = request.getfixturevalue("postgres_url")
    db = f"tpsearch_contract_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {db}"))
    own = sa.engine.make_url(url).set(database=db).render_as_string(hide_password=False)
    yield own
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        yield RetryingStorage(open_storage(f"sqlite:///{tmp_path}/contract.db"), warn=_quiet)
        return
    wrapped = RetryingStorage(open_storage(request.getfixturevalue("contract_database")), warn=_quiet)
    for study in wrapped.get_all_studies():  # empty for every test, as the suite assumes
        wrapped.delete_study(study._study_id)
    yield wrapped
    wrapped._backend().engine.dispose()


class TestOptunaStorageContract(StorageTestCase):
    """Every test of Optuna's suite, none exempted (its one RDB exemption, study ids reused after a deletion, is
    not needed here: the test as written passes)."""


def test_the_wrapper_is_a_heartbeat_storage_where_the_wrapped_one_is(tmp_path):
    plain = RetryingStorage(open_storage(f"sqlite:///{tmp_path}/a.db"))
    beating = RetryingStorage(optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/b.db", heartbeat_interval=60))
    assert isinstance(beating, BaseHeartbeat) and is_heartbeat_enabled(beating)
    assert not is_heartbeat_enabled(plain)
    study = optuna.create_study(storage=beating)
    trial = study.ask()
    beating.record_heartbeat(trial._trial_id)
    assert beating._get_stale_trial_ids(study._study_id) == []


def test_a_lost_acknowledgement_of_ask_and_tell_leaves_one_finished_trial_and_the_run_going(storage):
    study = optuna.create_study(storage=storage, study_name=f"ack-{uuid.uuid4().hex[:6]}", direction="maximize")
    with lose_acknowledgement(storage, "_create_new_trial") as created:
        trial = study.ask()
    assert created == {"calls": 1, "lost": 1}  # committed once, answered never: found, not created again
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]
    trial.suggest_float("x", 0.0, 1.0)  # Optuna's cache knows the trial it was handed
    with lose_acknowledgement(storage, "set_trial_state_values") as told:
        study.tell(trial, 0.75)  # the retry finds the trial finished with its value: no error
    assert told["lost"] == 1
    again = optuna.load_study(study_name=study.study_name, storage=storage._backend())
    assert [(t.state, t.value) for t in again.trials] == [(TrialState.COMPLETE, 0.75)]
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)  # and the study goes on
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3


def test_a_lost_acknowledgement_of_create_study_makes_one_study(storage):
    with lose_acknowledgement(storage, "create_new_study") as created:
        study = optuna.create_study(storage=storage)  # unnamed: the wrapper names it before the first attempt
    assert created["lost"] == 1
    assert [s.study_name for s in storage.get_all_studies()] == [study.study_name]


def test_a_data_error_is_raised_at_once_not_retried(storage):
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "data-error")
    backend = storage._backend()
    calls = []

    def refused(*args, **kwargs):
        calls.append(args)
        try:
            raise sa.exc.DataError("INSERT", {}, ValueError("value too long for type character varying(2048)"))
        except sa.exc.DataError as e:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e

    backend.set_study_user_attr = refused
    try:
        with pytest.raises(optuna.exceptions.StorageInternalError):
            storage.set_study_user_attr(study_id, "k", "v")
    finally:
        del backend.set_study_user_attr
    assert len(calls) == 1
