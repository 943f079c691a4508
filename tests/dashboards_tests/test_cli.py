"""`tpsearch dashboard`, `compare` and `trials` as a user runs them: subprocesses, JSON last lines, one-line errors."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tpsearch import cli


def _tpsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # A `dashboards/` folder of pages in the working directory cannot shadow anything: all of tpsearch is `tpsearch.*`.
    return subprocess.run([sys.executable, "-m", "tpsearch", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_dashboard_and_compare(sqlite_url: str, tmp_path: Path) -> None:
    r = _tpsearch("dashboard", "--study", "alpha", "--storage", sqlite_url, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    page = tmp_path / "runs" / "alpha" / "dashboard.html"  # the default place: the runs folder, not the source
    assert (tmp_path / out["path"]).resolve() == page.resolve() and out["trials"] == 80
    assert out["bytes"] == page.stat().st_size and out["seconds"] > 0

    r = _tpsearch("compare", "alpha", "beta", "--storage", sqlite_url, "--out", "c/ab.html", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["studies"] == ["alpha", "beta"] and (tmp_path / "c" / "ab.html").stat().st_size == out["bytes"]


def test_trials_csv_to_stdout(sqlite_url: str, tmp_path: Path) -> None:
    r = _tpsearch("trials", "--study", "beta", "--storage", sqlite_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    frame = pd.read_csv(io.StringIO(r.stdout))
    assert len(frame) == 60 and {"number", "state", "value", "params_layers", "user_attrs_params",
                                 "arch_channels", "intermediate_values"} <= set(frame.columns)


@pytest.mark.parametrize("args, message", [
    (["dashboard", "--study", "nope"], "no study named 'nope' in this storage (studies: alpha, beta)"),
    (["trials", "--study", "alpha", "--format", "xml"], "--format must be one of csv, json, parquet, but got 'xml'"),
])
def test_user_errors_are_one_line(sqlite_url: str, tmp_path: Path, args: list[str], message: str) -> None:
    r = _tpsearch(*args, "--storage", sqlite_url, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"tpsearch {args[0]}: error: {message}\n"


def test_help(capsys: pytest.CaptureFixture) -> None:
    for command in ("dashboard", "compare", "trials"):
        with pytest.raises(SystemExit) as e:
            cli.main([command, "--help"])
        assert e.value.code == 0
        assert "--storage" in capsys.readouterr().out


def test_more_user_errors(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = [
        (["dashboard", "--storage", sqlite_url], "give --study NAME (studies in this storage: alpha, beta)"),
        (["compare", "alpha", "--storage", sqlite_url], "compare needs at least two studies"),
        (["compare", "alpha", "alpha", "--storage", sqlite_url], "each study once"),
        (["compare", "alpha", "zeta", "--storage", sqlite_url], "no study named 'zeta'"),
        (["compare", "alpha", "beta", "--storage", sqlite_url, "--group-by", "colour"],
         "--group-by 'colour' is no attribute of these studies; they have:"),
        (["compare", "alpha", "beta", "--storage", sqlite_url, "--at", "0"], "--at must be at least 1"),
        (["run", "--repeat", "0"], "--repeat must be at least 1"),
        (["dashboard", "--storage", f"sqlite:///{tmp_path}/no/such/dir/x.db"], "no study storage at"),
        (["dashboard", "--storage", "nosuchdb://x"], "cannot open storage"),
        (["trials", "--study", "alpha", "--storage", sqlite_url, "--format", "parquet"], "give --out"),
        (["dashboard", "--study", "alpha", "--storage", sqlite_url, "--out", str(tmp_path)], "cannot write the page"),
    ]
    for args, message in cases:
        assert cli.main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (args, err)
    assert not (tmp_path / "no").exists()  # reading never creates a storage


def test_trials_json_and_parquet(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["trials", "--study", "alpha", "--storage", sqlite_url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 80
    complete = next(r for r in rows if r["status"] == "complete")  # "complete": never a diverged trial
    assert complete["value"] == complete["intermediate_values"][str(complete["last_epoch"])]

    out = tmp_path / "t.parquet"
    assert cli.main(["trials", "--study", "alpha", "--storage", sqlite_url, "--out", str(out)]) == 0  # from suffix
    frame = pd.read_parquet(out)
    assert len(frame) == 80 and frame["number"].tolist() == list(range(80))
    done = frame[frame["status"] == "complete"].iloc[0]
    curve = json.loads(done["intermediate_values"])  # per-epoch values as one JSON cell
    assert curve[str(done["last_epoch"])] == done["value"]
