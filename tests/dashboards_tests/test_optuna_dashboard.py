"""optuna-dashboard reads the same storage: its JSON API shows our study, trials, curves and attributes."""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import optuna
import pytest
from tpsearch.testing.dashboards import stop_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _executable() -> str:
    beside = Path(sys.executable).with_name("optuna-dashboard")
    found = str(beside) if beside.exists() else shutil.which("optuna-dashboard")
    if found is None:
        pytest.skip("optuna-dashboard is not installed (pip install optuna-dashboard)")
    return found


@contextlib.contextmanager
def serving(storage: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """optuna-dashboard serving `storage` on a free port: (its base URL, the study summaries its API lists)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([_executable(), storage, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                summaries = _get(f"{base}/api/studies")["study_summaries"]
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"optuna-dashboard did not start: {server.stderr.read()}") from None
                time.sleep(0.2)
        yield base, summaries
    finally:
        stop_server(server)


def test_optuna_dashboard_serves_the_study(sqlite_url: str) -> None:
    with serving(sqlite_url) as (base, summaries):
        by_name = {s["study_name"]: s for s in summaries}
        assert set(by_name) == {"alpha", "beta"}
        assert by_name["alpha"]["directions"] == ["maximize"]

        detail = _get(f"{base}/api/studies/{by_name['alpha']['study_id']}")
        study = optuna.load_study(study_name="alpha", storage=sqlite_url)
        attrs = {a["key"]: a["value"] for a in detail["user_attrs"]}
        assert attrs["space"] == "resnet_5m" and attrs["max_params"] == str(study.user_attrs["max_params"])
        trials = detail["trials"]
        assert len(trials) == len(study.trials)
        assert detail["has_intermediate_values"] is True
        assert detail["best_trials"][0]["number"] == study.best_trial.number
        for served, stored in zip(trials, study.trials, strict=True):
            assert served["number"] == stored.number
            assert served["state"] == stored.state.name.capitalize()
            curve = {v["step"]: v["value"] for v in served["intermediate_values"]}
            assert curve == pytest.approx(stored.intermediate_values)
            user = {a["key"]: a["value"] for a in served["user_attrs"]}
            assert json.loads(user["arch"]) == stored.user_attrs["arch"]
            assert user["params"] == str(stored.user_attrs["params"])
            if stored.value is not None:
                assert served["values"] == [pytest.approx(stored.value)]
            if "worker" in stored.user_attrs:
                assert user["worker"] == stored.user_attrs["worker"]
