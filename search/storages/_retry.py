"""Storage that rides out a database restart: the driver's calls wait and retry instead of ending the search.

Only a lost connection is retried (SQLAlchemy's OperationalError or InterfaceError, or a DBAPI error that
invalidated its connection, raised as they are or as the cause of Optuna's StorageInternalError): a data error
would fail the same way again, so it is raised at once. And a write is retried so that it takes effect once. A
server that goes away between its commit and its answer leaves the client unsure whether the write happened, so a
retried write first looks:

- `set_trial_state_values` (how `tell` ends a trial): a trial already in the requested state with the requested
  values was this call's own commit, and the answer is the one the first attempt would have given;
- `create_new_trial` (how `ask` starts one): the trial is given a start time that is unique to this call, and a
  RUNNING trial of the study with exactly that start time is this call's trial, not another to create (a call
  with a template of its own is retried plainly: a duplicate enqueued trial is then possible);
- `create_new_study`: an unnamed study is named here, before the first attempt, so that a retry that finds the name
  taken returns that study; a named one that exists on the first attempt is still a `DuplicatedStudyError`;
- `delete_study`: a study gone on a retry was deleted by the first attempt.

Every other write sets a value, which applying twice leaves as applying once. The wrapper is a heartbeat storage
where the wrapped one is (Optuna's heartbeat and `fail_stale_trials` check by type), pickles and copies, and sends
any other method of the wrapped storage it is asked for through the same retries.
"""
from __future__ import annotations

import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.storages._base import DEFAULT_STUDY_NAME_PREFIX
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import exc as sa_exc


def is_connection_error(e: BaseException) -> bool:
    """Whether `e` (or what it was raised from) says the database connection was lost, not that the call was wrong."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        e = e.__cause__ or e.__context__
    return False


def warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


class RetryingStorage(BaseStorage, BaseHeartbeat):
    """Every call of `inner` (wrapped in Optuna's cache, as `optuna.storages.get_storage` does) retried with backoff
    for up to `patience` seconds while the database connection is lost, and idempotently (see the module)."""

    def __init__(self, inner: BaseStorage | str, patience: float = 120.0,
                 warn: Callable[[str], None] = warn_stderr) -> None:
        self._inner = optuna.storages.get_storage(inner)
        self._patience = patience
        self._warn = warn
        self._last_start = datetime.min

    # -- the retry loop --------------------------------------------------------------------------------------------
    def _call(self, name: str, *args: Any, on_retry: Callable[[BaseException], Any] | None = None,
              **kwargs: Any) -> Any:
        deadline, delay, warned, lost = time.monotonic() + self._patience, 0.2, False, False
        while True:
            try:
                return getattr(self._inner, name)(*args, **kwargs)
            except Exception as e:
                if lost and on_retry is not None and not is_connection_error(e):
                    # After a lost connection, an error that says "already done" may be this call's own commit.
                    return on_retry(e)
                if not is_connection_error(e) or time.monotonic() + delay > deadline:
                    raise
                lost = True
                if not warned:
                    self._warn(f"tpsearch: storage unreachable ({type(e).__name__}); retrying for up to "
                               f"{self._patience:.0f} s")
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _backend(self) -> BaseStorage:
        """The storage under Optuna's cache: a check after a lost answer must read the database, not the cache."""
        return getattr(self._inner, "_backend", self._inner)

    # -- the writes that need a look before they are applied again ------------------------------------------------
    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        named = study_name is not None
        name = study_name if named else f"{DEFAULT_STUDY_NAME_PREFIX}{uuid.uuid4()}"

        def taken(e: BaseException) -> int:
            if isinstance(e, optuna.exceptions.DuplicatedStudyError):
                return self._call("get_study_id_from_name", name)
            raise e

        return self._call("create_new_study", directions, name, on_retry=taken)

    def delete_study(self, study_id: int) -> None:
        def gone(e: BaseException) -> None:
            if not isinstance(e, KeyError):
                raise e

        return self._call("delete_study", study_id, on_retry=gone)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is not None:
            return self._call("create_new_trial", study_id, template_trial)
        # The start time every new trial gets anyway, made unique to this call: it is what a retry looks for.
        start = max(datetime.now(), self._last_start + timedelta(microseconds=1))
        self._last_start = start
        template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=start,
                               datetime_complete=None, params={}, distributions={}, user_attrs={}, system_attrs={},
                               intermediate_values={}, trial_id=-1)
        deadline, delay = time.monotonic() + self._patience, 0.2
        while True:
            try:
                return self._inner.create_new_trial(study_id, template)
            except Exception as e:
                if not is_connection_error(e) or time.monotonic() + delay > deadline:
                    raise
                self._warn(f"tpsearch: storage unreachable ({type(e).__name__}) while starting a trial; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                mine = self._created_at(study_id, start)
                if mine is not None:
                    self._inner.get_all_trials(study_id, deepcopy=False)  # Optuna's cache learns of it too
                    return mine

    def _created_at(self, study_id: int, start: datetime) -> int | None:
        try:
            running = self._backend().get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        except Exception as e:
            if is_connection_error(e):
                return None  # still away: the next attempt looks again
            raise
        return next((t._trial_id for t in running if t.datetime_start == start), None)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        def finished(e: BaseException) -> bool:
            if isinstance(e, optuna.exceptions.UpdateFinishedTrialError):
                now = self._backend().get_trial(trial_id)
                if now.state == state and (values is None or now.values == list(values)):
                    return True
            raise e

        return self._call("set_trial_state_values", trial_id, state, values, on_retry=finished)

    # -- heartbeat: the wrapped storage's, where it has one ---------------------------------------------------------
    def get_heartbeat_interval(self) -> int | None:
        return self._inner.get_heartbeat_interval() if isinstance(self._inner, BaseHeartbeat) else None

    def record_heartbeat(self, trial_id: int) -> None:
        self._call("record_heartbeat", trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self._call("_get_stale_trial_ids", study_id)

    def get_heartbeat_stale_trial_callback(self) -> Callable[["optuna.Study", FrozenTrial], None] | None:
        if not isinstance(self._inner, BaseHeartbeat):
            return None
        return self._inner.get_heartbeat_stale_trial_callback()

    # -- pickling, copying, and anything else of the wrapped storage ------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __getattr__(self, name: str) -> Any:  # only for names this class does not define
        inner = self.__dict__.get("_inner")
        if inner is None or name.startswith("__"):
            # Asked while copy or pickle rebuild the object, before `_inner` exists: not the inner storage's.
            raise AttributeError(name)
        attr = getattr(inner, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)


def _forward(name: str) -> Callable[..., Any]:
    def method(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


for _name in [n for n in dir(BaseStorage) if not n.startswith("_") and callable(getattr(BaseStorage, n))]:
    if _name not in RetryingStorage.__dict__:
        setattr(RetryingStorage, _name, _forward(_name))
RetryingStorage.__abstractmethods__ = frozenset()
