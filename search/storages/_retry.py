"""Storage that rides out a database restart: the driver's calls wait and retry instead of ending the search.

`RetryingStorage(inner)` retries a call with backoff, for up to `patience` seconds, only when the database
connection was lost: SQLAlchemy's OperationalError or InterfaceError, or a DBAPI error that invalidated its
connection, raised as they are or as the cause of Optuna's StorageInternalError (Optuna raises that for any
SQLAlchemy error at commit). Every other error, a StorageInternalError caused by a DataError (a value too long
for its column) included, would fail the same way again and is raised at once.

A server that goes away between its commit and its answer leaves the client unsure whether a write happened, so a
write is retried so that it takes effect once. The first attempt is always the plain call; a retry looks first:

- `set_trial_state_values` (how `tell` ends a trial): `UpdateFinishedTrialError` on a retry, for a trial already in
  the requested state with the requested values, was this call's own commit, and the answer is the one the first
  attempt would have given (True). Likewise `False` on a retry of WAITING -> RUNNING (how `ask` takes an enqueued
  trial) for a trial made RUNNING since the first attempt began: this call took it, unless another process took
  the same trial in the same seconds (one driver per study makes that rare; a trial left WAITING->RUNNING and
  orphaned would be worse).
- `create_new_trial` (how `ask` starts one): the trial gets a start time unique to this wrapper (the time it would
  get anyway, moved on by a microsecond where two calls meet), and a RUNNING trial of the study with exactly that
  start time is this call's trial, not another to create. Not a token in the trial's system attributes: Optuna's
  storage contract wants a new trial's system attributes to be exactly what was asked for, and RDBStorage cannot
  delete one. A call with a template of its own (enqueue_trial, add_trial) is retried plainly: its start time is
  the template's, so a lost answer can leave a duplicate of that trial.
- `create_new_study`: an unnamed study is named here, before the first attempt, as Optuna would name it, so that a
  retry that finds the name taken returns that study; a name taken on the first attempt is still a
  `DuplicatedStudyError`.
- `delete_study`: a study gone on a retry was deleted by the first attempt.

Every other write sets a value, which applying twice leaves as applying once, and reads are safe to repeat. The
wrapper is a heartbeat storage (`BaseHeartbeat`, which Optuna's heartbeat and `fail_stale_trials` check by type)
exactly where the wrapped one is: `RetryingStorage(inner)` then builds a `RetryingHeartbeatStorage`. It pickles
and copies (with its `warn`, which must then be picklable), and sends any other method of the wrapped storage it is
asked for, private ones included, through the same retries.
"""
from __future__ import annotations

import math
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable, Sequence, TypeVar

import optuna
from optuna.exceptions import DuplicatedStudyError, StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages._base import DEFAULT_STUDY_NAME_PREFIX
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import exc as sa_exc

T = TypeVar("T")


def is_connection_error(e: BaseException | None) -> bool:
    """Whether `e` says the database connection was lost (worth retrying), not that the call was wrong."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if not isinstance(e, StorageInternalError):
            # Only Optuna's wrapper is looked through: another error raised while handling a lost connection
            # (a KeyError, say) is an answer, not a connection problem.
            return False
        e = e.__cause__ or e.__context__
    return False


def warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _as_read_back(moment: datetime) -> datetime:
    # RDBStorage stores naive local times as naive UTC and reads them back as naive local times; comparing through
    # the same round trip keeps a start time recognisable in any time zone, daylight saving included.
    return moment.astimezone(timezone.utc).replace(tzinfo=timezone.utc).astimezone().replace(tzinfo=None)


def _same_values(stored: Sequence[float] | None, asked: Sequence[float] | None) -> bool:
    if asked is None:
        return True
    if stored is None or len(stored) != len(asked):
        return False
    return all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(stored, asked))


class RetryingStorage(BaseStorage):
    """`inner` (a URL or a storage; an RDBStorage is put behind Optuna's cache, as `optuna.storages.get_storage`
    does) with every call retried with backoff for up to `patience` seconds while the database connection is lost,
    and writes retried so that they take effect once (see the module). `warn` is told once a call when a retry
    begins. A `RetryingHeartbeatStorage` where `inner` has a heartbeat."""

    def __new__(cls, inner: BaseStorage | str | None = None, *args: Any, **kwargs: Any) -> RetryingStorage:
        # get_storage turns a URL or an RDBStorage into Optuna's cache, which has a heartbeat; any other storage
        # is used as it is. (Pickle and copy rebuild with the class they saved and no arguments.)
        if cls is RetryingStorage and isinstance(inner, (str, BaseHeartbeat)):
            cls = RetryingHeartbeatStorage
        return super().__new__(cls)

    def __init__(self, inner: BaseStorage | str | None, patience: float = 120.0,
                 warn: Callable[[str], None] | None = warn_stderr) -> None:
        self._inner = optuna.storages.get_storage(inner)
        self._patience = patience
        self._warn = warn or warn_stderr
        self._last_start = datetime.min
        self._lock = threading.Lock()

    # -- the retry loop --------------------------------------------------------------------------------------------
    def _retrying(self, attempt: Callable[[bool], T]) -> T:
        """`attempt(retry)` until it returns or raises anything but a lost connection; `retry` is False the first
        time, True once a connection was lost (when the previous attempt may have committed after all)."""
        deadline, delay, retry = time.monotonic() + self._patience, 0.2, False
        while True:
            try:
                return attempt(retry)
            except Exception as e:
                if not is_connection_error(e) or time.monotonic() + delay > deadline:
                    raise
                if not retry:
                    self._warn(f"tpsearch: storage unreachable ({type(e).__name__}); retrying for up to "
                               f"{self._patience:.0f} s")
                retry = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._retrying(lambda retry: getattr(self._inner, name)(*args, **kwargs))

    def _database(self) -> BaseStorage:
        """The storage under Optuna's cache: a check after a lost answer must read the database, not the cache."""
        return self._inner._backend if isinstance(self._inner, _CachedStorage) else self._inner

    # -- the writes that look before they are applied again ---------------------------------------------------------
    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        name = study_name if study_name is not None else f"{DEFAULT_STUDY_NAME_PREFIX}{uuid.uuid4()}"

        def attempt(retry: bool) -> int:
            try:
                return self._inner.create_new_study(directions, name)
            except DuplicatedStudyError:
                if retry:
                    return self._inner.get_study_id_from_name(name)
                raise

        return self._retrying(attempt)

    def delete_study(self, study_id: int) -> None:
        def attempt(retry: bool) -> None:
            try:
                self._inner.delete_study(study_id)
            except KeyError:
                if not retry:
                    raise

        self._retrying(attempt)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is not None:
            return self._call("create_new_trial", study_id, template_trial)
        start = self._unique_start()
        template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=start,
                               datetime_complete=None, params={}, distributions={}, user_attrs={}, system_attrs={},
                               intermediate_values={}, trial_id=-1)

        def attempt(retry: bool) -> int:
            if retry:
                mine = self._trial_started_at(study_id, start)
                if mine is not None:
                    return mine
            return self._inner.create_new_trial(study_id, template)

        return self._retrying(attempt)

    def _unique_start(self) -> datetime:
        with self._lock:
            self._last_start = max(datetime.now(), self._last_start + timedelta(microseconds=1))
            return self._last_start

    def _trial_started_at(self, study_id: int, start: datetime) -> int | None:
        expected = _as_read_back(start)
        running = self._database().get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        mine = next((t._trial_id for t in running if t.datetime_start == expected), None)
        if mine is not None:
            # Optuna's cache writes a trial's params only once it knows the trial; a read teaches it this one.
            self._inner.get_all_trials(study_id, deepcopy=False)
        return mine

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        began = _as_read_back(datetime.now())

        def attempt(retry: bool) -> bool:
            try:
                done = self._inner.set_trial_state_values(trial_id, state, values)
            except UpdateFinishedTrialError:
                if retry:
                    now = self._database().get_trial(trial_id)
                    if now.state == state and _same_values(now.values, values):
                        return True
                raise
            if retry and not done and state == TrialState.RUNNING:
                now = self._database().get_trial(trial_id)
                return now.state == TrialState.RUNNING and now.datetime_start is not None \
                    and now.datetime_start >= began
            return done

        return self._retrying(attempt)

    # -- pickling, copying, and anything else of the wrapped storage ------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # only for names this class does not define
        inner = self.__dict__.get("_inner")
        if inner is None or name.startswith("__"):
            # Asked while copy or pickle rebuild the object, before `_inner` exists: not the inner storage's.
            raise AttributeError(name)
        attr = getattr(inner, name)
        return partial(self._call, name) if callable(attr) else attr


def _forward(name: str) -> Callable[..., Any]:
    def method(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


for _name in [n for n in dir(BaseStorage) if not n.startswith("_") and callable(getattr(BaseStorage, n))]:
    if _name not in RetryingStorage.__dict__:
        setattr(RetryingStorage, _name, _forward(_name))
RetryingStorage.__abstractmethods__ = frozenset()


class RetryingHeartbeatStorage(RetryingStorage, BaseHeartbeat):
    """A `RetryingStorage` of a storage with a heartbeat, itself one: `study.optimize` records heartbeats and
    `optuna.storages.fail_stale_trials` fails stale trials through it, with the same retries."""


for _name in [n for n in dir(BaseHeartbeat) if callable(getattr(BaseHeartbeat, n)) and not n.startswith("__")]:
    setattr(RetryingHeartbeatStorage, _name, _forward(_name))
RetryingHeartbeatStorage.__abstractmethods__ = frozenset()
