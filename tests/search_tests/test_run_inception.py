"""`tpsearch run --space inception` end to end on digits: the command line, in process (reusing the suite's Ray
session), three trials of two epochs on 256 images, then the study read back with plain Optuna."""
from __future__ import annotations

import json

import optuna
import torch
from optuna.trial import TrialState

from tpsearch import spaces
from tpsearch.search.cli import main

SPACE = spaces.get("inception")
DIGITS = dict(num_classes=10, in_channels=1, image_size=8)
BUDGET = 200_000  # about one random draw in eight fits on digits
# Enqueued so that every run trains the factorized modules (two 3x3 for a 5x5, 1x3 then 3x1), whatever is drawn.
FACTORIZED = {"blocks": "ABCD", "width": 0.25, "factorized": True, "n": 3, "dropout": 0.1}


def test_tpsearch_run_space_inception_on_digits(ray_session, tmp_path, capsys):
    (tmp_path / "factorized.json").write_text(json.dumps(FACTORIZED))
    storage = f"sqlite:///{tmp_path}/studies.db"
    code = main(["run", "--space", "inception", "--dataset", "digits", "--data-dir", str(tmp_path / "data"),
                 "--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--trials", "3",
                 "--epochs", "2", "--train-images", "256", "--max-params", str(BUDGET), "--sampler", "random",
                 "--seed", "0", "--scheduler", "none", "--concurrency", "2", "--cpus-per-trial", "1",
                 "--enqueue", str(tmp_path / "factorized.json")])
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="inception-digits", storage=storage)  # plain Optuna, no tpsearch
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 3
    assert trained[0].user_attrs["arch"] == FACTORIZED
    for t in trained:
        arch = t.user_attrs["arch"]
        with torch.device("meta"):
            built = sum(p.numel() for p in SPACE.build(arch, **DIGITS).parameters())
        assert t.user_attrs["params"] == built == SPACE.count_params(arch, **DIGITS) <= BUDGET
        assert t.user_attrs["macs"] == SPACE.count_macs(arch, **DIGITS)
        assert SPACE.suggest(optuna.trial.FixedTrial(t.params), in_channels=1, image_size=8) == arch
        assert 0.0 <= t.value <= 1.0 and list(t.intermediate_values) == [2]  # no scheduler: the last epoch only
    infeasible = [t for t in study.trials if t.user_attrs.get("feasible") is False]
    assert all(t.state == TrialState.PRUNED and t.user_attrs["params"] > BUDGET for t in infeasible)
