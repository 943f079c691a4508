"""`tpsearch export --retrain`: a full training from scratch that survives a kill and resumes to the same epochs."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tpsearch import load_checkpoint
from tpsearch.checkpoints import save_atomic
from tpsearch.cli import main

pytestmark = pytest.mark.slow  # trains, and runs searches

EPOCHS = 3  # the kill comes after the first: no race to outlast, so few epochs suffice


def _command(small_study, out: Path) -> list[str]:
    return ["export", "--storage", small_study.storage, "--out", str(out), "--data-dir", str(small_study.data_dir),
            "--retrain", "--epochs", str(EPOCHS), "--no-progress", "--json"]


def _saved_epoch(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["train"]["epoch"])


def test_a_killed_retrain_resumes_to_the_same_epochs(small_study, tmp_path):
    out = tmp_path / "best.pt"
    state = out.with_name("best.pt.resume.pt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # The retrain holds once its first epoch's state is saved (`export_held_after_first_epoch`) and says so on
    # stdout: the kill strikes then, never after the retrain could have ended.
    held = [sys.executable, "-c", "import sys; from tpsearch.testing.search import export_held_after_first_epoch; "
            "sys.exit(export_held_after_first_epoch(sys.argv[1:]))", *_command(small_study, out)]
    proc = subprocess.Popen(held, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 300)
        line = proc.stdout.readline() if ready else "(nothing in 300 s)"
        assert line.strip() == "saved", (line, proc.stderr.read()[-2000:] if proc.poll() is not None else "")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done = _saved_epoch(state)
    assert done == 1
    assert not out.exists()  # nothing exported by a run that did not finish
    before = torch.load(state, weights_only=True)["train"]["history"]

    again = subprocess.run([sys.executable, "-m", "tpsearch", *_command(small_study, out)], capture_output=True,
                           text=True, env=env, timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert (result["source"], result["epochs"], result["resumed_from_epoch"]) == ("retrain", EPOCHS, done)
    assert not state.exists()  # the resume state goes once the export is written

    model, meta = load_checkpoint(out)
    training = meta["training"]
    assert training["epochs"] == EPOCHS and training["resumed_from_epoch"] == done
    assert [r["epoch"] for r in training["history"]] == list(range(1, EPOCHS + 1))
    assert training["history"][:done] == before  # the epochs before the kill, unchanged
    assert meta["metrics"]["val_accuracy"] == training["history"][-1]["val_accuracy"]
    assert meta["metrics"]["test_accuracy"] is not None
    assert training["recipe"] == "long" and training["hparams"]["weight_decay"] == 5e-4  # not the trial's


def test_recipe_trial_retrains_with_the_trial_hyperparameters(small_study, tmp_path, capsys):
    rc = main(["export", "--storage", small_study.storage, "--out", str(tmp_path / "t.pt"), "--data-dir",
               str(small_study.data_dir), "--retrain", "--epochs", "1", "--recipe", "trial", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    _, meta = load_checkpoint(tmp_path / "t.pt")
    trial = small_study.study().trials[small_study.best]
    assert meta["training"]["recipe"] == "trial"
    assert {k: meta["training"]["hparams"][k] for k in trial.user_attrs["hparams"]} == trial.user_attrs["hparams"]


def test_retrain_on_train_and_val_records_that_validation_means_nothing(small_study, tmp_path, capsys):
    out = tmp_path / "best.pt"
    rc = main(["export", "--storage", small_study.storage, "--out", str(out), "--data-dir",
               str(small_study.data_dir), "--retrain", "--epochs", "1", "--on", "train+val", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    _, meta = load_checkpoint(out)
    assert meta["training"]["on"] == "train+val" and meta["training"]["val_accuracy_meaningful"] is False
    assert meta["metrics"]["val_accuracy"] is None and meta["metrics"]["test_accuracy"] is not None


def test_a_resume_state_of_another_retrain_is_refused(small_study, tmp_path, capsys):
    out = tmp_path / "best.pt"
    save_atomic({"job": {"study": small_study.name, "trial": small_study.best, "epochs": 99}, "train": {}},
                out.with_name("best.pt.resume.pt"))
    rc = main(["export", "--storage", small_study.storage, "--out", str(out), "--data-dir",
               str(small_study.data_dir), "--retrain", "--epochs", "3", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "another retrain" in err and "epochs 99 there, 3 here" in err


def test_retrain_options_need_retrain(small_study, tmp_path, capsys):
    rc = main(["export", "--storage", small_study.storage, "--out", str(tmp_path / "x.pt"), "--epochs", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "add --retrain" in err
