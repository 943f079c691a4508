"""`tpsearch delegate`: the arithmetic by hand, then a small and a large model on digits whose sweep must end at
each model's own accuracy."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tpsearch import cli
from tpsearch.checkpoints._delegate import delegation_curve, entropy, sweep_thresholds


def test_the_curve_by_hand_ties_go_together():
    h = np.array([0.5, 0.1, 0.9, 0.5])
    small = np.array([True, True, False, False])
    large = np.array([False, True, True, True])
    points = delegation_curve(h, small, large, [0.0, 0.1, 0.5, 0.9, 2.0], small_macs=10, large_macs=100)
    assert [p["delegated"] for p in points] == [1.0, 0.75, 0.25, 0.0, 0.0]
    # 0: all large (3 of 4); 0.1: image 1 by small (right), the rest large (right, right, wrong);
    # 0.5: images 1, 0, 3 by small (right, right, wrong), image 2 by large (right); 0.9: all small (2 of 4).
    assert [p["accuracy"] for p in points] == [0.75, 0.75, 0.75, 0.5, 0.5]
    assert [p["cost_macs"] for p in points] == [110, 85, 35, 10, 10]
    assert [p["cost_ratio"] for p in points] == [1.1, 0.85, 0.35, 0.1, 0.1]
    assert sweep_thresholds(h) == [0.0, 0.1, 0.5, 0.9]


def test_entropy_in_nats():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]])
    h = entropy(logits)
    assert h[0] == pytest.approx(math.log(4)) and 0 < h[1] < 1e-30  # float64 keeps a sure answer above 0


def test_the_sweep_ends_at_each_model_alone(digits_pair, tmp_path, capsys):
    from tpsearch.checkpoints import evaluate_checkpoint, load_checkpoint

    page = tmp_path / "delegate.html"
    assert cli.main(["delegate", str(digits_pair.small), str(digits_pair.large), "--sweep", "--html", str(page),
                     "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    small_alone = evaluate_checkpoint(digits_pair.small)["test_accuracy"]
    large_alone = evaluate_checkpoint(digits_pair.large)["test_accuracy"]
    small_macs = load_checkpoint(digits_pair.small)[1]["metrics"]["macs"]
    large_macs = load_checkpoint(digits_pair.large)[1]["metrics"]["macs"]
    assert out["split"] == "test" and out["images"] == 359 and out["entropy"]["unit"] == "nats"
    # evaluate averages in float32: equal to well within one image of 359 (0.28%)
    assert out["small"]["accuracy"] == pytest.approx(small_alone, abs=1e-6)
    assert out["large"]["accuracy"] == pytest.approx(large_alone, abs=1e-6)
    assert small_alone < large_alone  # the pair is worth delegating between
    sweep = out["sweep"]
    first, last = sweep[0], sweep[-1]
    # Threshold 0 is below every (strictly positive) entropy: everything goes to the large model.
    assert out["entropy"]["min"] > 0 and first["threshold"] == 0.0
    assert first["delegated"] == 1.0 and first["accuracy"] == pytest.approx(large_alone, abs=1e-6)
    assert first["cost_macs"] == small_macs + large_macs
    # The largest entropy: the small model answers everything.
    assert last["threshold"] == out["entropy"]["max"] and last["delegated"] == 0.0
    assert last["accuracy"] == pytest.approx(small_alone, abs=1e-6) and last["cost_macs"] == small_macs
    assert last["cost_ratio"] == pytest.approx(small_macs / large_macs)
    thresholds = [p["threshold"] for p in sweep]
    assert thresholds == sorted(thresholds) and len(thresholds) == len(set(thresholds))
    delegated = [p["delegated"] for p in sweep]
    assert delegated == sorted(delegated, reverse=True)
    best = out["cheapest_matching"]
    assert best is not None and best["accuracy"] >= out["large"]["accuracy"] and best["cost_macs"] <= first["cost_macs"]
    assert "Delegation" in page.read_text() and out["html"] == str(page)
    assert "threshold" in captured.err and "MMACs" in captured.err  # the table, on stderr beside --json

    # One threshold: the same point as the sweep's, and no curve in the JSON.
    middle = sweep[len(sweep) // 2]
    assert cli.main(["delegate", str(digits_pair.small), str(digits_pair.large), "--threshold",
                     repr(middle["threshold"]), "--json"]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert one["point"] == middle and one["sweep"] is None


def _altered(source, dest, **dataset):
    """A copy of a checkpoint whose record of its data set says otherwise (the weights' digest still holds)."""
    from tpsearch.checkpoints import read_plain, save_atomic

    ckpt = read_plain(source)
    ckpt["dataset"] = {**ckpt["dataset"], **dataset}
    save_atomic(ckpt, dest)
    return dest


@pytest.mark.parametrize("args, message", [
    (["{small}", "{tmp}/none.pt", "--sweep"], "no checkpoint file at"),
    (["{small}", "{other_data}", "--sweep"], "on 'digits' and"),
    (["{small}", "{other_seed}", "--sweep", "--split", "val"], "different seeds"),
    (["{small}", "{large}"], "give --threshold H (nats) or --sweep"),
    (["{small}", "{large}", "--threshold", "-1"], "--threshold must be a finite entropy"),
])
def test_user_errors_are_one_line(args, message, digits_pair, tmp_path, capsys):
    other_data = _altered(digits_pair.large, tmp_path / "other_data.pt", name="synthetic")
    other_seed = _altered(digits_pair.large, tmp_path / "other_seed.pt", seed=1)
    args = [a.format(tmp=tmp_path, small=digits_pair.small, large=digits_pair.large, other_data=other_data,
                     other_seed=other_seed) for a in args]
    assert cli.main(["delegate", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_threshold_and_sweep_together_are_refused_by_the_parser(digits_pair, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["delegate", str(digits_pair.small), str(digits_pair.large), "--sweep", "--threshold", "0.5"])
    assert info.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_same_seed_validation_split_is_accepted(digits_pair, capsys):
    assert cli.main(["delegate", str(digits_pair.small), str(digits_pair.large), "--threshold", "0.3",
                     "--split", "val", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["split"] == "val" and out["images"] == 143
    assert 0 <= out["point"]["delegated"] <= 1
