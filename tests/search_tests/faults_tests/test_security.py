"""What a search may touch: only its output paths; and what it exposes: optuna-dashboard on loopback only.

Checkpoints are never unpickled as code: covered by tests/search_tests/export_tests/test_export.py
(test_a_checkpoint_holding_code_is_refused_and_never_run,
test_truncated_tampered_and_mismatched_checkpoints_are_refused); nor do they make tpsearch import the space they
name, nor build an architecture their weights do not fit: tests/search_tests/test_checkpoint_trust.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpsearch.testing.search import STUDY, free_ports, trained, trials
from tpsearch.testing.dashboards import stop_server

pytestmark = pytest.mark.slow  # starts servers and commands as processes

REPO = Path(__file__).resolve().parents[3]

# Directories that are not the search's doing: Python's bytecode caches and the caches of the tools that run us.
IGNORED = {"__pycache__", ".git", ".pytest_cache", ".hypothesis", ".venv"}


def _tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in IGNORED]
        rel = Path(dirpath).relative_to(root)
        out.update(str(rel / name) for name in dirnames + filenames)
    return out


def test_run_writes_only_its_storage_runs_and_data_paths(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    home = Path.home()
    repo_before, work_before = _tree(REPO), _tree(work)
    home_before = set(os.listdir(home))
    # Relative paths, resolved against the working directory, as a user types them.
    r = subprocess.run([sys.executable, "-m", "tpsearch", "run", "--dataset", "digits", "--storage",
                        "sqlite:///studies.db", "--runs-dir", "runs", "--data-dir", "data", "--trials", "1",
                        "--epochs", "1", "--max-params", "200000", "--train-images", "128", "--sampler", "random",
                        "--no-progress"], cwd=work, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(trained(trials(f"sqlite:///{work}/studies.db", STUDY))) == 1
    allowed = {"studies.db", "studies.db-wal", "studies.db-shm", "studies.db-journal", "runs", "data"}
    new = _tree(work) - work_before
    assert {p.split(os.sep)[0] for p in new} <= allowed, sorted(new)
    # Nothing in the source tree (a stray studies.db, runs/, dashboards/*.html). Ray's own session folder under
    # /tmp/ray is Ray's, shared by every Ray process on the machine, and is not checked.
    assert _tree(REPO) - repo_before == set()
    # Nor in the home folder: Ray Tune writes ~/ray_results unless told where (the driver tells it RUNS_DIR).
    assert "ray_results" not in set(os.listdir(home)) - home_before


def _listening(port: int) -> list[str]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel has them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_optuna_dashboard_as_the_readme_starts_it_listens_on_loopback_only(tmp_path):
    """`optuna-dashboard sqlite:///studies.db` with no --host (tests/dashboards_tests pass --host 127.0.0.1)."""
    from tpsearch.testing.dashboards import make_study

    exe = Path(sys.executable).with_name("optuna-dashboard")
    if not exe.exists():
        pytest.skip("optuna-dashboard is not installed (pip install optuna-dashboard)")
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening sockets from")
    url = f"sqlite:///{tmp_path}/studies.db"
    make_study(5, storage=url, study_name="s")
    port = free_ports(1)[0]
    server = subprocess.Popen([str(exe), url, "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert server.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
            time.sleep(0.2)
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
        assert set(_listening(port)) <= loopback, _listening(port)
    finally:
        stop_server(server)
