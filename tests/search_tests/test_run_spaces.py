"""`tpsearch run --space S` end to end on digits for every family beyond resnet_5m (whose run has tests of its own):
the command line, in process (reusing the suite's Ray session), two trials of one epoch on 256 images, one of them
an enqueued architecture that exercises what the sampler may not draw in two trials, then the study read back with
plain Optuna."""
from __future__ import annotations

import json

import optuna
import pytest
import torch
from optuna.trial import TrialState

from tpsearch import spaces
from tpsearch.cli import main

pytestmark = pytest.mark.slow  # runs searches on Ray

DIGITS = dict(num_classes=10, in_channels=1, image_size=8)
DENSENET = {"family": "densenet", "growth": 8, "chunks": 3, "layers": 2}
RUNS = {
    # A bottleneck with grouped convs, SE and Mish.
    "xresnet": ({"block": "bottleneck", "blocks": 1, "width": 0.5, "se": True, "act": "mish", "cardinality": 4,
                 "bottleneck_width": 2}, 100_000, {"cardinality": 4}),
    # A DenseNet: concatenation, transitions pooling down to 1x1 on digits; the family's own dimension names.
    "convnets": (DENSENET, 100_000, {"growth_densenet": 8}),
    # The factorized modules (two 3x3 for a 5x5, 1x3 then 3x1).
    "inception": ({"blocks": "ABCD", "width": 0.25, "factorized": True, "n": 3, "dropout": 0.1}, 200_000,
                  {"factorized": True}),
    # The family is a dimension; the family's own names are prefixed with it.
    "zoo": ({"family": "convnets", "arch": DENSENET}, 100_000, {"family": "convnets", "convnets.growth_densenet": 8}),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_tpsearch_run_space_on_digits(name, ray_session, tmp_path, capsys):
    arch, budget, params = RUNS[name]
    space = spaces.get(name)
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    storage = f"sqlite:///{tmp_path}/studies.db"
    code = main(["run", "--space", name, "--dataset", "digits", "--data-dir", str(tmp_path / "data"),
                 "--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--trials", "2",
                 "--epochs", "1", "--train-images", "256", "--max-params", str(budget), "--sampler", "random",
                 "--seed", "0", "--scheduler", "none", "--concurrency", "1", "--cpus-per-trial", "1",
                 "--enqueue", str(tmp_path / "arch.json")])
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name=f"{name}-digits", storage=storage)  # plain Optuna, no tpsearch
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 2
    assert trained[0].user_attrs["arch"] == arch and params.items() <= trained[0].params.items()
    for t in trained:
        arch = t.user_attrs["arch"]
        with torch.device("meta"):
            built = sum(p.numel() for p in space.build(arch, **DIGITS).parameters())
        assert t.user_attrs["params"] == built == space.count_params(arch, **DIGITS) <= budget
        assert t.user_attrs["macs"] == space.count_macs(arch, **DIGITS)
        assert space.suggest(optuna.trial.FixedTrial(t.params), in_channels=1, image_size=8) == arch
        assert 0.0 <= t.value <= 1.0 and list(t.intermediate_values) == [1]  # no scheduler: the last epoch only
    infeasible = [t for t in study.trials if t.user_attrs.get("feasible") is False]
    assert all(t.state == TrialState.PRUNED and t.user_attrs["params"] > budget for t in infeasible)
