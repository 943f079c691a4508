"""Resume and faults of `tpsearch run`: Ctrl-C, a lost Ray node (the driver SIGKILLed: faults_tests/)."""
from __future__ import annotations

import os
import signal

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.testing.search import held_trial_number, kill_group, running, start_run, trained, trials

pytestmark = pytest.mark.slow  # runs searches on Ray, some as processes

SLOW = ["--trials", "5", "--epochs", "3", "--max-params", "60000", "--train-images", "768", "--scheduler", "none",
        "--sampler", "random", "--concurrency", "2", "--seed", "3"]
STUDY = "resnet_5m-digits"
QUICK = ["--trials", "2", "--epochs", "1", "--max-params", "60000", "--train-images", "256", "--scheduler", "none",
         "--sampler", "random", "--seed", "3"]


# Where the run is held until the signal (`tpsearch.testing.search`): every stage of its first seconds, then a trial.
MOMENTS = {"imports": "run_held_while_importing", "parser": "run_held_after_building_the_parser",
           "dataset": "run_held_after_reading_the_dataset",
           "ray": "run_held_after_starting_ray", "study": "run_held_after_opening_the_study",
           "training": "run_held_at_report"}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_in_the_first_seconds_is_one_line_and_exit_130(tmp_path, moment):
    """While the imports load, once the parser is built (CI once found a traceback there), once the data set is
    read, once Ray has started (its own processes are in the group the signal reaches), once the study is open, or
    once a trial is training: the same ending. The run is held at its moment until the signal arrives (it says so
    in RUNS/held first), so the signal strikes there however fast or busy the machine, and the run cannot have
    ended by itself before it."""
    proc = start_run(tmp_path, *QUICK, held=MOMENTS[moment])
    try:
        held_trial_number(tmp_path / "runs", proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:  # a held run left behind would never end
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "interrupted" in err.strip().splitlines()[-1]
    if moment == "training":  # the next run resumes whatever the interrupted one left
        again = start_run(tmp_path, *QUICK)
        out, err = again.communicate(timeout=600)
        assert again.returncode == 0, err[-3000:]
        ts = trials(f"sqlite:///{tmp_path}/studies.db", STUDY)
        assert len(trained(ts)) == 2 and not running(ts)


def test_ctrl_c_marks_running_trials_interrupted_and_keeps_the_study_consistent(tmp_path):
    # The run holds at a trial's first report once one trial is trained (`run_held_at_report`), until the
    # signal: it strikes while that trial certainly runs.
    storage = f"sqlite:///{tmp_path}/studies.db"
    proc = start_run(tmp_path, *SLOW, held="run_held_at_report_after_one_trained")
    try:
        held = held_trial_number(tmp_path / "runs", proc)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        out, err = proc.communicate(timeout=300)
    finally:  # a held run left behind would never end
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    ts = trials(storage, STUDY)
    assert not running(ts)
    interrupted = [t for t in ts if t.state == TrialState.FAIL]
    assert held in [t.number for t in interrupted]
    assert all(t.user_attrs["reason"] == "interrupted" for t in interrupted)
    assert trained(ts)


def test_postgresql_storage(ray_session, tmp_path, postgres_url):
    url = postgres_url
    from tpsearch.search import run_search
    from tpsearch.testing.search import run_options

    name = f"pg-{os.getpid()}-{tmp_path.name}"
    opts = run_options(tmp_path, max_params=60_000, storage=url, study=name, sampler="tpe")
    try:
        summary = run_search(opts)
        study = optuna.load_study(study_name=name, storage=url)
        assert summary.finished == 3
        assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 3
        assert all(t.intermediate_values for t in study.trials if t.state == TrialState.COMPLETE)
        assert study.user_attrs["space"] == "resnet_5m"
    finally:
        optuna.delete_study(study_name=name, storage=url)


def test_a_cluster_started_with_ray_start_loses_a_node_and_no_trial_or_weights(tmp_path):
    """The README's recipe for real: `ray start --head` and `ray start --address` (token authentication on), then
    `tpsearch run --address` with no RAY_AUTH_MODE set; the second node's processes are killed mid-trial."""
    from tpsearch.testing.search import search_on_cluster, trained

    out = search_on_cluster(tmp_path)
    refused = out["refused"]  # first, a client holding another token: one line, exit 2, no storage created
    assert refused["rc"] == 2 and not refused["storage_created"], refused
    lines = refused["stderr"].strip().splitlines()
    assert len(lines) == 1 and "refused this client's authentication token" in lines[0], lines
    assert out["rc"] == 0, out["stderr"][-3000:]
    ts = out["trials"]
    assert len(trained(ts)) == 4 and not [t for t in ts if t.state.name == "RUNNING"]  # 0 finished trials lost
    killed, first_there = out["fault"]["number"], out["on_node2"][0]
    assert out["fault"]["killed"] and out["left_running"] == []
    # The trial mid-training on the lost node was retried by Ray Tune on the head and completed there.
    assert ts[killed].state.name == "COMPLETE" and ts[killed].user_attrs["node_id"] != out["node2_id"]
    assert out["ray_failures"].get(killed) == 1
    assert ts[first_there].state.name == "COMPLETE" and ts[first_there].user_attrs["node_id"] == out["node2_id"]
    # Kept weights recorded relative to the runs folder, and exported after every file of that node was deleted.
    assert ts[first_there].user_attrs["checkpoint"] == f"resnet_5m-digits/checkpoints/trial_{first_there}.pt"
    assert out["exports"] == {"best": (0, out["exports"]["best"][1]), "node2": (0, out["exports"]["node2"][1])}
    assert f"trial {first_there} (trained #" in out["exports"]["node2"][1]
    assert out["after_stop"] == []  # the cluster is gone, and only it: the session's own Ray still runs
