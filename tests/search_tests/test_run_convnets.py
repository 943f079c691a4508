"""`tpsearch run --space convnets` end to end on digits: the command line, in process (reusing the suite's Ray
session), three trials of one epoch on 256 images, then the study read back with plain Optuna."""
from __future__ import annotations

import json

import optuna
import torch
from optuna.trial import TrialState

from tpsearch import spaces
from tpsearch.search.cli import main

SPACE = spaces.get("convnets")
DIGITS = dict(num_classes=10, in_channels=1, image_size=8)
BUDGET = 100_000
# Enqueued so that every run trains a DenseNet (concatenation, transitions pooling down to 1x1 on digits), a family
# the sampler may not draw in three trials: densenetlike's shape, narrower and shallower.
DENSENET = {"family": "densenet", "growth": 8, "chunks": 3, "layers": 2}


def test_tpsearch_run_space_convnets_on_digits(ray_session, tmp_path, capsys):
    (tmp_path / "densenet.json").write_text(json.dumps(DENSENET))
    storage = f"sqlite:///{tmp_path}/studies.db"
    code = main(["run", "--space", "convnets", "--dataset", "digits", "--data-dir", str(tmp_path / "data"),
                 "--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--trials", "3",
                 "--epochs", "1", "--train-images", "256", "--max-params", str(BUDGET), "--sampler", "random",
                 "--seed", "0", "--scheduler", "none", "--concurrency", "2", "--cpus-per-trial", "1",
                 "--enqueue", str(tmp_path / "densenet.json")])
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="convnets-digits", storage=storage)  # plain Optuna, no tpsearch
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 3
    assert trained[0].user_attrs["arch"] == DENSENET
    assert trained[0].params["growth_densenet"] == 8  # the family's own dimension names
    for t in trained:
        arch = t.user_attrs["arch"]
        with torch.device("meta"):
            built = sum(p.numel() for p in SPACE.build(arch, **DIGITS).parameters())
        assert t.user_attrs["params"] == built == SPACE.count_params(arch, **DIGITS) <= BUDGET
        assert t.user_attrs["macs"] == SPACE.count_macs(arch, **DIGITS)
        assert SPACE.suggest(optuna.trial.FixedTrial(t.params), in_channels=1, image_size=8) == arch
        assert 0.0 <= t.value <= 1.0 and list(t.intermediate_values) == [1]  # no scheduler: the last epoch only
    infeasible = [t for t in study.trials if t.user_attrs.get("feasible") is False]
    assert all(t.state == TrialState.PRUNED and t.user_attrs["params"] > BUDGET for t in infeasible)
