"""Bad input, fuzzed: every command line and every architecture or enqueue file ends in a result or one clear line.

Never a traceback, and never a changed study: a refused `tpsearch run` leaves the storage byte-for-byte as it
was (compared as an sqlite3 dump), and an accepted one asks for no training and trains none. Most cases call
`tpsearch.cli.main` in this process, down the real driver (milliseconds to seconds each); a few go through a real
subprocess, where stderr must hold exactly one line.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tpsearch.testing.search import STUDY, run_cli_with

pytestmark = pytest.mark.slow  # fuzzes the commands, training where the input is valid

def _settings(examples: int) -> settings:
    # derandomize: the same examples every run, so that a failure here is reproducible and the time is stable.
    # No shrinking: each example is a command (tenths of a second), and shrinking one failure took minutes.
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
ABSURD = [0, -1, 17, 513, 65537, 10**6, 10**18, 2**63, -2**63]
ints = st.one_of(st.integers(-2, 5), st.sampled_from(ABSURD))
scalars = st.one_of(ints, st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4), st.booleans(),
                    st.none())
per_layer = st.one_of(ints, st.lists(ints, max_size=4), scalars, st.lists(scalars, max_size=3))
archs = st.fixed_dictionaries({}, optional={
    "layers": st.one_of(st.integers(-1, 4), st.sampled_from(ABSURD), scalars), "blocks": per_layer,
    "channels": st.one_of(st.integers(-1, 70), st.sampled_from(ABSURD), scalars), "kernels": per_layer,
    "skip_kernels": per_layer, "pool": st.one_of(st.integers(-1, 9), st.sampled_from(ABSURD), scalars),
    "extra": scalars})
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=6)
# A file's text: an architecture-like object, any JSON, or not JSON at all (truncated, binary, empty).
documents = st.one_of(archs.map(json.dumps), archs.map(json.dumps), json_values.map(json.dumps),
                      archs.map(lambda a: json.dumps(a)[: max(1, len(json.dumps(a)) // 2)]),
                      st.binary(max_size=20).map(lambda b: b.decode("latin-1")), st.just(""))
shape_values = st.one_of(st.integers(-2, 40).map(str), st.sampled_from(["0", "1000000000", "x", "", "1e3", "-"]))


def _no_training(config, *, opts, space):
    raise AssertionError("a trial started: these inputs ask for no training (--trials is what the study holds)")


def _call(argv: list[str], capsys) -> tuple[int, str, str]:
    """`tpsearch ARGV` in this process, down the real driver: exit status, stdout, stderr. An exception escapes:
    that is the failure. A trial that starts anyway fails (`_no_training`) and `_trained_states` sees it."""
    capsys.readouterr()
    try:
        rc = run_cli_with(_no_training, argv)
    except SystemExit as e:  # argparse: usage and one error line, exit 2
        rc = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def _trained_states(db: Path) -> list[tuple[int, int]]:
    """How many trials of each state the storage holds, queued ones aside (a valid --enqueue queues one)."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT state, count(*) FROM trials WHERE state != 'WAITING' GROUP BY state "
                           "ORDER BY state").fetchall()
    finally:
        con.close()


def _assert_clear(rc: int, out: str, err: str, command: str) -> None:
    assert "Traceback" not in out + err
    if rc == 0:
        return
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    if lines and lines[0].startswith("usage:"):  # argparse's own refusal: the usage, then one error line
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith(f"tpsearch {command}: error: "), err


def _dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, int]:
    """A storage with one finished study on digits, as `tpsearch run` leaves it; and its trained count."""
    from tpsearch.testing.dashboards import make_study
    from tpsearch.study import is_trained

    db = tmp_path_factory.mktemp("storage") / "studies.db"
    study = make_study(20, storage=f"sqlite:///{db}", study_name=STUDY, seed=5)
    # The records of `run --dataset digits --max-params 5000000`, so that the same flags resume it (a resume
    # under other flags is refused, below).
    from tpsearch.search import RunOptions
    from tpsearch.testing.search import search_records

    for key, value in search_records(RunOptions(dataset="digits", max_params=5_000_000)).items():
        study.set_user_attr(key, value)
    return db, sum(1 for t in study.trials if is_trained(t))


def _fresh(pristine, tmp_path: Path) -> tuple[Path, str, list[str]]:
    # A new file for every example: the engine of an earlier in-process run may still hold the last one open.
    db = tmp_path / f"studies-{uuid.uuid4().hex}.db"
    shutil.copy(pristine[0], db)
    return db, f"sqlite:///{db}", _dump(db)


@_settings(150)
@given(doc=documents, size=shape_values, channels=shape_values, classes=shape_values)
def test_describe_of_any_architecture_file_is_a_result_or_one_line(doc, size, channels, classes, tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(doc, encoding="latin-1")
    argv = ["describe", "--arch", str(path), "--json"]
    for flag, value in (("--image-size", size), ("--in-channels", channels), ("--num-classes", classes)):
        argv += [f"{flag}={value}"]
    rc, out, err = _call(argv, capsys)
    _assert_clear(rc, out, err, "describe")
    if rc == 0:
        result = json.loads(out.strip().splitlines()[-1])
        assert isinstance(result["params"], int) and result["params"] > 0 and result["macs"] >= 0


@pytest.mark.parametrize("arch, shape", [
    ({"layers": 16, "blocks": 1, "channels": 65536}, ["--image-size", "65536"]),  # at the caps
    ({"layers": 1, "blocks": 1, "channels": 8}, ["--image-size", "1000000000"]),
    ({"layers": 1, "blocks": 1, "channels": 65536}, ["--in-channels", "1000000000"]),
])
def test_describe_of_an_enormous_architecture_is_a_result_or_one_line(arch, shape, tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    rc, out, err = _call(["describe", "--arch", str(path), "--json", *shape], capsys)
    _assert_clear(rc, out, err, "describe")


@_settings(40)
@given(doc=documents)
def test_run_with_any_enqueue_file_is_a_result_or_one_line_and_a_refusal_changes_nothing(doc, pristine, tmp_path,
                                                                                          capsys):
    db, storage, before = _fresh(pristine, tmp_path)
    states = _trained_states(db)
    path = tmp_path / "arch.json"
    path.write_text(doc, encoding="latin-1")
    # --trials no more than the study holds: a valid file is enqueued, nothing is trained.
    argv = ["run", "--dataset", "digits", "--data-dir", str(tmp_path / "data"), "--storage", storage, "--runs-dir",
            str(tmp_path / "runs"), "--trials", str(pristine[1]), "--no-progress", "--enqueue", str(path)]
    rc, out, err = _call(argv, capsys)
    _assert_clear(rc, out, err, "run")
    assert _trained_states(db) == states
    if rc != 0:
        assert _dump(db) == before


FLAG_VALUES = {
    "--trials": ["0", "-1", "x"], "--epochs": ["0", "-3", "2", "1.5"], "--max-params": ["0", "5", "-1", "1e9"],
    "--max-macs": ["0", "-1", "5", "1e9", "300000", "100000000"],
    "--train-fraction": ["0", "1.5", "nan", "inf", "-0.1", "0.5"], "--train-images": ["0", "-5", "nan", "100"],
    "--concurrency": ["0", "-2", "2"], "--max-retries": ["-1", "0"], "--keep-checkpoints": ["-1", "0"],
    "--grace-epochs": ["0", "-1"], "--reduction-factor": ["1", "0", "3"], "--cpus-per-trial": ["0", "-1", "1"],
    "--gpus-per-trial": ["-1", "0"], "--trial-timeout": ["0", "-5", "10"],
    "--stall-timeout": ["0", "-5", "inf"], "--sampler": ["nope", "", "random"],
    "--scheduler": ["nope", "none"], "--space": ["nope", "", "../etc"], "--dataset": ["nope", "synthetic", ""],
    "--storage": ["sqlite:////nonexistent/dir/x.db", "nope://", "postgresql://u:secret@127.0.0.1:1/x"],
    "--enqueue": ["nope", "tiny", "tpsnet", "/nonexistent.json"], "--seed": ["-1", "x"],
}


@_settings(60)
@given(flags=st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.just(None), min_size=1, max_size=3)
       .flatmap(lambda d: st.fixed_dictionaries({k: st.sampled_from(FLAG_VALUES[k]) for k in d})))
def test_run_with_random_flag_values_is_a_result_or_one_line_and_a_refusal_changes_nothing(flags, pristine,
                                                                                           tmp_path, capsys):
    db, storage, before = _fresh(pristine, tmp_path)
    states = _trained_states(db)
    # --study named: a fuzzed --dataset must meet the existing study (and be refused), not start a new one.
    argv = ["run", "--study", STUDY, "--dataset", "digits", "--data-dir", str(tmp_path / "data"), "--storage",
            storage, "--runs-dir", str(tmp_path / "runs"), "--trials", str(pristine[1]), "--max-params", "5000000",
            "--no-progress"]
    for flag, value in flags.items():
        argv += [f"{flag}={value}"]
    rc, out, err = _call(argv, capsys)
    _assert_clear(rc, out, err, "run")
    assert "secret" not in err  # a refused storage URL is shown without its password
    assert _trained_states(db) == states
    if rc != 0:
        assert _dump(db) == before


@pytest.mark.parametrize("flags, message", [
    (["--max-macs", "0"], "--max-macs must be at least 1, but got 0"),
    (["--max-macs", "249519"], "--max-macs 249,519 is below the smallest configuration of space 'resnet_5m' on "
                               "digits (249,520 MACs per image)"),
    (["--max-macs", "300000", "--enqueue", "tiny"], "--enqueue preset 'tiny' has 484,704 MACs per image, over "
                                                    "--max-macs 300,000"),
])
def test_a_macs_budget_the_space_cannot_meet_is_one_line_before_any_write(flags, message, pristine, tmp_path,
                                                                          capsys):
    db, storage, before = _fresh(pristine, tmp_path)
    argv = ["run", "--study", STUDY, "--dataset", "digits", "--data-dir", str(tmp_path / "data"), "--storage",
            storage, "--runs-dir", str(tmp_path / "runs"), "--trials", str(pristine[1] + 1), "--no-progress", *flags]
    rc, out, err = _call(argv, capsys)
    _assert_clear(rc, out, err, "run")
    assert rc == 2 and message in err, err
    assert _dump(db) == before


@pytest.mark.parametrize("flag, value", [("--cpus-per-trial", "nan"), ("--cpus-per-trial", "inf"),
                                         ("--gpus-per-trial", "nan"), ("--gpus-per-trial", "inf"),
                                         ("--trial-timeout", "nan"), ("--train-fraction", "nan"),
                                         ("--stall-timeout", "nan")])
def test_non_finite_numbers_are_refused_before_any_write(flag, value, pristine, tmp_path, capsys):
    """NaN passes every `<` check: `--cpus-per-trial nan` would otherwise reach int(nan) on a worker, and
    `--trial-timeout nan` would silently never time out."""
    db, storage, before = _fresh(pristine, tmp_path)
    argv = ["run", "--dataset", "digits", "--data-dir", str(tmp_path / "data"), "--storage", storage, "--runs-dir",
            str(tmp_path / "runs"), "--trials", str(pristine[1]), "--max-params", "5000000", "--no-progress",
            flag, value]
    rc, out, err = _call(argv, capsys)
    _assert_clear(rc, out, err, "run")
    assert rc == 2, f"{flag} {value} was accepted"
    assert _dump(db) == before


def _rerun(pristine, tmp_path, flags: list[str], capsys) -> tuple[int, str, str, Path, list[str]]:
    db, storage, before = _fresh(pristine, tmp_path)
    argv = ["run", "--dataset", "digits", "--data-dir", str(tmp_path / "data"), "--storage", storage, "--runs-dir",
            str(tmp_path / "runs"), "--max-params", "5000000", "--no-progress", "--trials", str(pristine[1]), *flags]
    rc, out, err = _call(argv, capsys)
    return rc, out, err, db, before


def test_a_rerun_under_other_flags_is_refused_in_one_line_naming_them_and_changes_nothing(pristine, tmp_path,
                                                                                          capsys):
    """Issue 26: the quick start's study rerun with other budgets rewrote its records (max_params, the training
    budget) and exited 0; a trial's record would no longer say how it was trained."""
    rc, out, err, db, before = _rerun(pristine, tmp_path, ["--max-params", "200000", "--epochs", "1",
                                                           "--train-images", "256", "--scheduler", "none"], capsys)
    _assert_clear(rc, out, err, "run")
    assert rc == 2
    assert err.strip() == (
        f"tpsearch run: error: study {STUDY!r} was run with other flags: --max-params 5000000 (this run: 200000), "
        "--epochs 15 (this run: 1), --train-images none (this run: 256), --scheduler asha (this run: none); "
        "repeat its flags to resume it, or start a new study with --study NEW")
    assert _dump(db) == before


@pytest.mark.parametrize("flags, named", [
    (["--seed", "3"], "--seed 0 (this run: 3)"),  # another validation split
    (["--train-fraction", "0.5"], "--train-fraction 1.0 (this run: 0.5)"),
    (["--max-macs", "none"], "--max-macs 125000000 (this run: none)"),
    (["--max-latency-ms", "5"], "--max-latency-ms none (this run: 5.0)"),
    (["--warmup-epochs", "0.5"], "--warmup-epochs 0.25 (this run: 0.5)"),
    (["--grace-epochs", "2"], "--grace-epochs 1 (this run: 2)"),
    (["--tta-flip"], "--tta-flip off (this run: on)"),
    (["--objectives", "accuracy,params"], "--objectives accuracy (this run: accuracy,params)"),
])
def test_each_recorded_flag_is_compared_on_a_rerun(flags, named, pristine, tmp_path, capsys):
    # --objectives names the study too: it must be given to meet this one.
    rc, out, err, db, before = _rerun(pristine, tmp_path, ["--study", STUDY, *flags], capsys)
    _assert_clear(rc, out, err, "run")
    assert rc == 2 and named in err, err
    assert _dump(db) == before


@pytest.mark.parametrize("flags", [[], ["--max-macs", "auto"], ["--sampler", "random", "--stop-margin", "2",
                                                                "--min-rung-steps", "0", "--reproducible"]])
def test_a_rerun_under_the_same_budget_resumes(flags, pristine, tmp_path, capsys):
    """The study's own flags, or others that change no record (the sampler, the scheduler's decisions): resumed,
    here with nothing left to train (--trials is what it holds)."""
    rc, out, err, _, _ = _rerun(pristine, tmp_path, flags, capsys)
    assert rc == 0, err
    assert f"{pristine[1]}/{pristine[1]} trained" in out + err


@pytest.mark.parametrize("args, text", [
    (["describe", "--arch", "{arch}"], '{"layers": 2, "blocks": [1, 1], "channels": 8, "pool": 99}'),
    (["describe", "--arch", "{arch}"], "{not json"),
    (["run", "--dataset", "digits", "--trials", "1", "--enqueue", "{arch}"], '{"layers": 2, "blocks": 1e9}'),
    (["run", "--dataset", "digits", "--trials", "1", "--enqueue", "{arch}"], "[1, 2, 3]"),
])
def test_a_real_process_prints_exactly_one_line_and_exits_2(args, text, tmp_path):
    """The same refusals from a real `tpsearch` process: no warning or log line from any library around them."""
    (tmp_path / "arch.json").write_text(text)
    argv = [a.replace("{arch}", str(tmp_path / "arch.json")) for a in args]
    r = subprocess.run([sys.executable, "-m", "tpsearch", *argv], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.json"]  # refused before any storage was created


@pytest.mark.parametrize("listener", ["nothing", "silent"])
def test_a_cluster_address_that_cannot_be_joined_is_one_line_exit_2_and_changes_nothing(listener, pristine,
                                                                                          tmp_path):
    """`--address` where nothing listens (refused at once), and where something listens but never answers as a Ray
    head would (ended by --connect-timeout): one line, exit 2, the study as it was. A refused token is shown on a
    real cluster in tests/search_tests/test_run_faults.py."""
    import socket

    from tpsearch.testing.search import free_ports

    db, storage, before = _fresh(pristine, tmp_path)
    server = socket.socket()
    if listener == "silent":
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
    else:
        port = free_ports(1)[0]
    try:
        r = subprocess.run([sys.executable, "-m", "tpsearch", "run", "--address", f"127.0.0.1:{port}",
                            "--connect-timeout", "4", "--dataset", "digits", "--data-dir", str(tmp_path / "data"),
                            "--storage", storage, "--trials", "1", "--no-progress"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"})
    finally:
        server.close()
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tpsearch run: error: ") and f"127.0.0.1:{port}" in lines[0], lines
    assert ("no Ray cluster answers" if listener == "nothing" else "--connect-timeout 4") in lines[0]
    assert _dump(db) == before
