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
  delete one. RDBStorage also retries a creation itself, blindly, before the wrapper hears of any error; where the
  engine met a connection error during the call, any other RUNNING trial with this call's start time was
  committed by such a retry and handed to nobody, and is failed (user attribute `reason`: "duplicate of trial N").
  A call with a template of its own (enqueue_trial, add_trial) is retried plainly: its start time is the
  template's, so a lost answer can leave a duplicate of that trial. The start time is matched to the microsecond,
  as SQLite and PostgreSQL keep it; a database that keeps whole seconds would see no match and create the trial
  again.
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
import weakref
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
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

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


class _ConnectionErrors:
    """How many connection errors an engine has met, counted by SQLAlchemy's `handle_error` event: those inside
    RDBStorage's own retry loop too, which never reach the wrapper when that loop succeeds."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, context: Any) -> None:
        if context.is_disconnect or isinstance(context.sqlalchemy_exception,
                                               (sa_exc.OperationalError, sa_exc.InterfaceError)):
            self.seen += 1


_ERRORS: weakref.WeakKeyDictionary[Engine, _ConnectionErrors] = weakref.WeakKeyDictionary()
_ERRORS_LOCK = threading.Lock()


def _connection_errors(storage: BaseStorage) -> _ConnectionErrors | None:
    # One counter an engine, however many wrappers share it (and none kept in a wrapper: an unpickled RDBStorage
    # has an engine of its own).
    engine = getattr(storage, "engine", None)
    if not isinstance(engine, Engine):
        return None
    with _ERRORS_LOCK:
        counter = _ERRORS.get(engine)
        if counter is None:
            counter = _ERRORS[engine] = _ConnectionErrors()
            event.listen(engine, "handle_error", counter)
        return counter


def _as_read_back(moment: datetime) -> datetime:
    # RDBStorage stores naive local times as naive UTC and reads them back as naive local times; comparing through
    # the same round trip keeps a start time recognisable in any time zone, daylight saving included.
    return moment.astimezone(timezone.utc).astimezone().replace(tzinfo=None)


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
                mine = self._trials_started_at(study_id, start)
                if mine:
                    return mine[0]
            return self._inner.create_new_trial(study_id, template)

        errors = _connection_errors(self._database())
        before = errors.seen if errors is not None else 0
        trial_id = self._retrying(attempt)
        if errors is not None and errors.seen != before:
            self._fail_duplicates(study_id, start, trial_id)
        return trial_id

    def _unique_start(self) -> datetime:
        with self._lock:
            self._last_start = max(datetime.now(), self._last_start + timedelta(microseconds=1))
            return self._last_start

    def _trials_started_at(self, study_id: int, start: datetime) -> list[int]:
        expected = _as_read_back(start)
        running = self._database().get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        mine = [t._trial_id for t in running if t.datetime_start == expected]
        if mine:
            # Optuna's cache writes a trial's params only once it knows the trial; a read teaches it this one.
            self._inner.get_all_trials(study_id, deepcopy=False)
        return mine

    def _fail_duplicates(self, study_id: int, start: datetime, kept: int) -> None:
        """RDBStorage retries a trial's creation itself (up to five times, for deadlocks), blindly: a commit whose
        answer was lost there leaves a RUNNING trial that nobody was handed. It has this call's start time; it is
        failed, with its reason, instead of staying RUNNING for ever. Best effort: the trial asked for exists."""
        try:
            extra = [i for i in self._retrying(lambda retry: self._trials_started_at(study_id, start)) if i != kept]
            number = self._call("get_trial_number_from_id", kept) if extra else None
            for trial_id in extra:
                self._call("set_trial_user_attr", trial_id, "reason",
                           f"duplicate of trial {number}: created twice by the database storage's own retry")
                self._call("set_trial_state_values", trial_id, TrialState.FAIL)
        except Exception as e:  # noqa: BLE001 - the next run fails any trial still RUNNING
            self._warn(f"tpsearch: a duplicate trial may stay RUNNING ({type(e).__name__}: {e})")

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
