"""Study storage: opening a SQLAlchemy URL, retrying across a database restart, and the one-driver lease.

    >>> import optuna
    >>> from tpsearch.storages import RetryingStorage, load_study, open_storage
    >>> storage = RetryingStorage(open_storage("sqlite:///example.db"))  # WAL SQLite; retries a lost server
    >>> _ = optuna.create_study(study_name="example", storage=storage)
    >>> load_study(storage, None).study_name  # the only study, or one clear error listing them
    'example'

`open_storage(url, create=False)` is how read-only commands open a storage: a mistyped SQLite path is an error,
not a new empty file. `DriverLease(study)` keeps a second driver off a study that a live one is searching.
"""
from tpsearch.storages._lease import DriverLease
from tpsearch.storages._open import DEFAULT_STORAGE, load_study, open_storage, redact, study_names
from tpsearch.storages._retry import RetryingStorage

__all__ = ["DEFAULT_STORAGE", "DriverLease", "RetryingStorage", "load_study", "open_storage", "redact",
           "study_names"]
