"""Fixtures shared by the whole suite: one local Ray session, reused by every in-process search."""
from __future__ import annotations

import logging
import os

import pytest

# Quiet, reproducible Ray for tests: no dashboard, no usage stats, no output from the Tune reporter.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Ray runs its workers at nice 15. On a 2-core machine with another busy process beside the suite, a trial then
# gets a few percent of a core and a search that takes a minute takes half an hour; the suite must pass there too.
os.environ.setdefault("RAY_worker_niceness", "0")


SLOW_FIXTURES = {"ray_session", "digits_pair"}  # a Ray session; two models trained on digits


def _needs_postgres(item) -> bool:
    # The storage suites parametrize a backend fixture and only fetch `postgres_url` inside it.
    params = getattr(item, "callspec", None)
    return "postgres_url" in item.fixturenames or (
        params is not None and "postgresql" in [v for v in params.params.values() if isinstance(v, str)])


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Marks from what a test uses, so that no test escapes them: `postgres` on every test that needs the server,
    `slow` on every test on the shared Ray session or the trained checkpoints (modules that train or start Ray
    themselves say so in their own `pytestmark`).
    Tests marked `cuda` exercise the GPU paths; without a GPU they are skipped, not failed."""
    for item in items:
        if _needs_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)

    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU here (benchmarks/gpu_report.sh runs these where one is lent)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session():
    """Ray starts in seconds here; one session for all in-process searches keeps the suite fast."""
    import ray

    if not ray.is_initialized():
        # address="local": a fresh instance, never a cluster another test (or `ray start`) left running.
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server (scripts/services.sh starts it). Its absence fails the test: a skip would pass a
    suite that never ran the storage contract against PostgreSQL. Opting out is explicit: TPSEARCH_TEST_NO_POSTGRES=1
    (scripts/test.sh --no-postgres) skips with that reason, `-m "not postgres"` deselects."""
    url = os.environ.get("TPSEARCH_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("TPSEARCH_TEST_NO_POSTGRES") and not os.environ.get("CI"):
            pytest.skip("PostgreSQL opted out (TPSEARCH_TEST_NO_POSTGRES, scripts/test.sh --no-postgres)")
        pytest.fail("no PostgreSQL server: run `eval \"$(scripts/services.sh)\"` first (it installs PostgreSQL "
                    "as root), or opt out with TPSEARCH_TEST_NO_POSTGRES=1 or -m \"not postgres\"", pytrace=False)
    return url
