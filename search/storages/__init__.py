"""Study storage: opening a SQLAlchemy URL, retrying across a database restart, and the one-driver lease.

    >>> from tpsearch.search.storages import load_study, open_storage
    >>> storage = open_storage("sqlite:///studies.db", create=False)  # doctest: +SKIP
    >>> study = load_study(storage, None)  # the only study, or one clear error listing them  # doctest: +SKIP
"""
from tpsearch.search.storages._lease import DriverLease
from tpsearch.search.storages._open import DEFAULT_STORAGE, load_study, open_storage, redact, study_names
from tpsearch.search.storages._retry import RetryingStorage

__all__ = ["DEFAULT_STORAGE", "DriverLease", "RetryingStorage", "load_study", "open_storage", "redact",
           "study_names"]
