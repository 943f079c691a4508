"""`tpsearch ablate` on digits: rows x seeds trials in a real study through the driver, the table, --json, the
page, and a second call that trains nothing again."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch import load_checkpoint
from tpsearch import cli
from tpsearch.search._driver import PlannedTrial, _enqueue_planned, _recover_stale
from tpsearch.testing.search import run_options

pytestmark = pytest.mark.slow  # trains

STUDY = "ablate-tiny-digits"


def _ablate(tmp_path, capsys, *extra: str) -> tuple[dict, str]:
    args = ["ablate", "--space", "resnet_5m", "--preset", "tiny", "--dataset", "digits", "--tricks", "cosine,mixup",
            "--seeds", "2", "--epochs", "1", "--train-images", "256", "--batch-size", "64",
            "--data-dir", str(tmp_path / "data"), "--storage", f"sqlite:///{tmp_path}/studies.db",
            "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--json", *extra]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    return json.loads(out.strip().splitlines()[-1]), err


def test_ablate_trains_each_row_and_seed_once_and_resumes(ray_session, tmp_path, capsys):
    result, table = _ablate(tmp_path, capsys)
    assert (result["study"], result["trained_now"], result["missing"]) == (STUDY, 6, 0)
    assert [(r["label"], r["tricks"], r["seeds"]) for r in result["rows"]] == [
        ("baseline", [], 2), ("+ cosine", ["cosine"], 2), ("+ mixup", ["cosine", "mixup"], 2)]
    hparams = [r["hparams"] for r in result["rows"]]
    assert [(h["schedule"], h["pad_mode"], h["mixup_alpha"]) for h in hparams] == [
        ("step", "zero", 0.0), ("cosine", "zero", 0.0), ("cosine", "zero", 0.2)]
    for row in result["rows"]:
        assert row["accuracy_mean"] == pytest.approx(sum(row["accuracies"]) / 2)
        assert row["accuracy_std"] == pytest.approx(abs(row["accuracies"][0] - row["accuracies"][1]) / 2 ** 0.5)
        assert row["error_mean"] == pytest.approx(1 - row["accuracy_mean"])

    # The study is a plain Optuna study (optuna-dashboard reads it) with one trial per row and seed.
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path}/studies.db")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted((t.user_attrs["row"], t.user_attrs["seed"]) for t in trials) == \
        [(k, s) for k in range(3) for s in range(2)]
    for t in trials:
        assert t.user_attrs["tricks"] == ["cosine", "mixup"][:t.user_attrs["row"]]
        assert t.params["mixup"] == (t.user_attrs["row"] == 2) and t.params["schedule"] == \
            ("step" if t.user_attrs["row"] == 0 else "cosine")
    # Seeds differ, so the trainings do: within a row (same tricks), some seeds' accuracies differ, or the seed
    # never reached the trainer and the spread the table shows would be a made-up one. (Wall-clock seconds always
    # differ, so they prove nothing.)
    assert any(len(set(r["accuracies"])) > 1 for r in result["rows"]), result["rows"]

    lines = table.strip().splitlines()
    assert lines[-1] == f"wrote {result['html']}" and result["html"].endswith(f"{STUDY}/ablation.html")
    assert any(line.split()[:2] == ["2", "cosine"] and "mixup" in line and "±" in line for line in lines)
    page = (tmp_path / "runs" / STUDY / "ablation.html").read_text()
    assert "Ablation: tiny on digits" in page and "error_y" in page and "+ mixup" in page

    # Again, with a third seed: only the three new trainings run.
    again, _ = _ablate(tmp_path, capsys, "--seeds", "3")
    assert (again["trained_now"], [r["seeds"] for r in again["rows"]]) == (3, [3, 3, 3])
    assert [r["accuracies"][:2] for r in again["rows"]] == [r["accuracies"] for r in result["rows"]]
    same, _ = _ablate(tmp_path, capsys, "--seeds", "3")
    assert same["trained_now"] == 0 and same["rows"] == again["rows"]
    assert len(study.get_trials()) == 9

    # A trial's tricks are hyperparameters like any: export's retrain with the trial's recipe trains with them.
    last = again["rows"][-1]["trials"][0]["number"]
    out = tmp_path / "mixup.pt"
    assert cli.main(["export", "--storage", f"sqlite:///{tmp_path}/studies.db", "--study", STUDY, "--trial",
                     str(last), "--retrain", "--recipe", "trial", "--epochs", "1", "--out", str(out), "--data-dir",
                     str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    _, meta = load_checkpoint(out)
    config = meta["training"]["config"]
    assert (config["mixup_alpha"], config["schedule"], config["pad_mode"]) == (0.2, "cosine", "zero")


def test_a_planned_trial_left_running_by_a_killed_driver_is_requeued_once_with_its_attributes(tmp_path):
    study = optuna.create_study(direction="maximize")
    opts = run_options(tmp_path)
    plan = [PlannedTrial({"x": 1}, {"row": 0, "tricks": [], "seed": s}) for s in (0, 1)]
    assert _enqueue_planned(study, opts, plan).trials == 2
    study.ask().suggest_int("x", 0, 2)  # trial 0 (seed 0) starts; then the driver dies
    assert _recover_stale(study) == 1
    assert _enqueue_planned(study, opts, plan).trials == 2  # nothing enqueued twice (a waiting trial has no
    assert _enqueue_planned(study, opts, plan).trials == 2  # params yet: it is known by the ones it was given)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted((t.user_attrs["seed"], t.user_attrs.get("retry_of")) for t in waiting) == [(0, 0), (1, None)]


def test_another_fidelity_in_the_same_study_is_refused(ray_session, tmp_path, capsys):
    import sqlite3

    storage = f"sqlite:///{tmp_path}/studies.db"
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    study.set_user_attr("epochs", 5)
    args = ["ablate", "--preset", "tiny", "--dataset", "digits", "--tricks", "cosine", "--epochs", "1",
            "--data-dir", str(tmp_path / "data"), "--storage", storage, "--runs-dir", str(tmp_path / "runs")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds an ablation with epochs 5, not 1" in err
    assert sqlite3.connect(tmp_path / "studies.db").execute("select count(*) from trials").fetchone() == (0,)
