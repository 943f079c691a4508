"""Opening study storage: any SQLAlchemy URL, default SQLite `studies.db` in the working directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import event

from tpsearch.exceptions import UsageError

DEFAULT_STORAGE = "sqlite:///studies.db"


def open_storage(url: str = DEFAULT_STORAGE, *, create: bool = True) -> optuna.storages.RDBStorage:
    """An RDB storage for `url`, or one clear `UsageError` when it cannot be reached or written.

    Commands that only read pass `create=False`, so that a mistyped SQLite path is an error, not a new empty file.
    """
    if not create and url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if str(path) != ":memory:" and not path.exists():
            raise UsageError(f"no study storage at {str(path)!r} (run `tpsearch run` first, or give --storage URL)")
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as e:  # SQLAlchemy raises many types here: bad URL, missing driver, refused connection
        raise UsageError(f"cannot open storage {redact(url)!r}: {_first_line(e)}") from None
    if url.startswith("sqlite"):
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened during set-up reconnect with the pragmas
    return storage


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets a dashboard read while the driver writes, and with synchronous=NORMAL a commit is no longer an
    # fsync: a killed process loses nothing committed; only a power cut may lose the last transactions.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    # The storage's study list, not optuna.get_all_study_summaries: that one reads every trial of every study.
    return [s.study_name for s in storage.get_all_studies()]


def load_study(storage: optuna.storages.BaseStorage, name: str | None) -> optuna.Study:
    """The study `name`; without a name, the only study in the storage (or a clear error listing them)."""
    names = study_names(storage)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise UsageError(f"give --study NAME (studies in this storage: {listed})")
        name = names[0]
    if name not in names:
        listed = ", ".join(names) if names else "none"
        raise UsageError(f"no study named {name!r} in this storage (studies: {listed})")
    return optuna.load_study(study_name=name, storage=storage)


def _engine_kwargs(url: str) -> dict:
    # A dashboard reading while the driver writes holds SQLite's lock for a moment: wait instead of failing.
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}


def redact(url: str) -> str:
    """The URL without its password: every URL tpsearch prints, writes into a page or a checkpoint goes through here."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
