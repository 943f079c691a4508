"""A folder of images end to end: `tpsearch run` on it (named by a relative path, from the folder's parent),
`tpsearch export` of the best trial, and `tpsearch evaluate` with top-5 accuracy, since it has more than 10 classes.
In process, reusing the suite's Ray session: two trials of one epoch on 12 classes of 15 small images."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.cli import main
from tpsearch.testing.trainers import write_image_folder

pytestmark = pytest.mark.slow  # runs a search on Ray


def test_a_folder_of_images_is_searched_exported_and_evaluated_with_top5(ray_session, tmp_path, monkeypatch, capsys):
    root = tmp_path / "pics"
    cut = write_image_folder(root, classes=12, per_class=15)
    monkeypatch.chdir(tmp_path)  # the run names the folder relatively; Ray's workers run elsewhere
    storage = f"sqlite:///{tmp_path}/studies.db"
    where = ["--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")]
    code = main(["run", "--space", "resnet_5m", "--dataset", "imagefolder:pics@16", *where, "--no-progress",
                 "--trials", "2", "--epochs", "1", "--max-params", "60000", "--sampler", "random", "--seed", "0",
                 "--scheduler", "none", "--concurrency", "2", "--cpus-per-trial", "1", "--enqueue", "tiny", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err.count(f"skipped 1 of 180 images that cannot be read (first: {cut[0]}") == 1  # decoded once
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["study"] == "resnet_5m-pics-16px"  # a file-name-safe default, no path inside
    study = optuna.load_study(study_name="resnet_5m-pics-16px", storage=storage)
    assert study.user_attrs["dataset"] == f"imagefolder:{root}@16"  # canonical: absolute, the side explicit
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 2 and all(0.0 <= t.value <= 1.0 for t in trained)
    assert main(["status", "--storage", storage]) == 0
    assert "pics-16px" in capsys.readouterr().out.splitlines()[1]  # the table names the folder, not its path

    monkeypatch.chdir(tmp_path / "runs")  # export and evaluate find the folder by the study's record
    best = tmp_path / "best.pt"
    code = main(["export", "--out", str(best), *where])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", str(best), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == f"imagefolder:{root}@16" and len(result["classes"]) == 12
    assert result["images"] == 12 * 3 and len(result["confusion_matrix"]) == 12  # a fifth of each class's 15
    assert result["test_accuracy"] <= result["top5_accuracy"] <= 1.0
    assert main(["evaluate", str(best), "--data-dir", str(tmp_path / "data")]) == 0
    assert f"top-5 {result['top5_accuracy']:.4f}" in capsys.readouterr().out.splitlines()[0]
