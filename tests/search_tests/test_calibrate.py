"""`tpsearch calibrate`: the rank statistics and their intervals against known values, the low fidelity as the
search's own training, the rungs and the noise ceiling, the command end to end."""
from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys

import pytest
import torch

from tpsearch import spaces, trainers
from tpsearch.exceptions import UsageError
from tpsearch.planned import CalibrateOptions, calibrate
from tpsearch import cli
from tpsearch.search import RunOptions
from tpsearch.study import agreement, average_ranks, interval, kendall, spearman, topk_overlap
from tpsearch.cli._planned import calibrate_options
from tpsearch.cli._flags import options_from

pytestmark = pytest.mark.slow  # trains

# Tiny and cheap: 16x16 synthetic-hard, networks under 20k parameters, a few hundred images. The search trains 4
# epochs: ASHA's rungs (grace 1, factor 3) fall after epochs 1 and 3.
SEARCH = dict(dataset="synthetic-hard", max_params=20_000, epochs=4, train_images=96, device="cpu")
HIGH = dict(high_epochs=5, high_train_images=192)
SEARCH_FLAGS = ["--dataset", "synthetic-hard", "--max-params", "20000", "--epochs", "4", "--train-images", "96",
                "--device", "cpu"]
TINY_FLAGS = [*SEARCH_FLAGS, "--high-epochs", "5", "--high-train-images", "192", "--no-progress"]


def tiny(k: int = 3, **search: object) -> CalibrateOptions:
    return CalibrateOptions(RunOptions(**{**SEARCH, **search}), k=k, **HIGH)


# -- rank statistics ------------------------------------------------------------------------------------------------
def test_perfect_and_reversed_orders():
    a = [0.1, 0.4, 0.2, 0.9, 0.5]
    same = [x * 10 + 3 for x in a]  # any increasing map keeps the order
    assert spearman(a, same) == 1.0 and kendall(a, same) == 1.0 and topk_overlap(a, same, 2) == 1.0
    reverse = [-x for x in a]
    assert spearman(a, reverse) == -1.0 and kendall(a, reverse) == -1.0 and topk_overlap(a, reverse, 2) == 0.0


def test_ties_take_average_ranks_and_tau_b():
    assert average_ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    a, b = [1, 2, 2, 3], [1, 2, 3, 4]
    # Ranks of a: 1, 2.5, 2.5, 4; Pearson of the ranks = 4.5 / sqrt(4.5 * 5).
    assert spearman(a, b) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    # Five concordant pairs, one tied in a: tau-b = 5 / sqrt((6 - 1) * 6).
    assert kendall(a, b) == pytest.approx(5 / 30 ** 0.5)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and kendall([1, 2, 3], [5, 5, 5]) is None  # no order to compare


def test_statistics_agree_with_scipy_on_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(2, 12)
        a = [rng.choice([0.1, 0.2, 0.3, 0.4]) for _ in range(n)]  # few values: many ties
        b = [rng.choice([0.5, 0.6, 0.7]) for _ in range(n)]
        if len(set(a)) == 1 or len(set(b)) == 1:
            continue
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
        assert kendall(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def test_topk_overlap_counts_the_shared_best():
    low, high = [0.9, 0.8, 0.1, 0.2], [0.8, 0.9, 0.2, 0.1]
    assert topk_overlap(low, high, 2) == 1.0  # the same two best, in another order
    assert topk_overlap(low, high, 1) == 0.0
    assert topk_overlap([0.5, 0.5, 0.1], [0.1, 0.9, 0.8], 1) == 0.0  # a tie at the border: the earlier one counts
    with pytest.raises(ValueError, match="k must be in 1..4"):
        topk_overlap(low, high, 5)


def test_intervals_by_fisher_z():
    # Kendall: se = sqrt(0.437 / (n - 4)); at r = 0, n = 28 the interval is tanh(+-1.96 se) = +-0.2585.
    low, high = interval(0.0, 28, "kendall")
    assert high == pytest.approx(0.2585, abs=1e-4) and low == -high
    # Spearman: se = sqrt((1 + r^2 / 2) / (n - 3)); the interval holds r, leans towards 0, and narrows with n.
    lo16, hi16 = interval(0.6, 16, "spearman")
    lo64, hi64 = interval(0.6, 64, "spearman")
    assert lo16 < lo64 < 0.6 < hi64 < hi16 and 0.6 - lo16 > hi16 - 0.6
    assert lo16 == pytest.approx(math.tanh(math.atanh(0.6) - 1.959964 * (1.18 / 13) ** 0.5), abs=1e-4)
    assert interval(0.5, 3, "spearman") is None and interval(0.5, 4, "kendall") is None  # too few pairs
    assert interval(None, 16, "kendall") is None and interval(1.0, 16, "spearman") == [1.0, 1.0]
    out = agreement([0.1, 0.4, 0.2, 0.9, 0.5], [0.2, 0.3, 0.1, 0.8, 0.6], 2)
    assert set(out) == {"spearman", "spearman_ci", "kendall", "kendall_ci", "topk_overlap"}
    assert out["spearman_ci"][0] < out["spearman"] < out["spearman_ci"][1]


# -- options --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(k=1), "--k must be an integer of at least 2, but got 1"),
    (dict(k=3, search=RunOptions(enqueue=["tiny"] * 4)),
     "--k must be at least the 4 architectures listed with --enqueue, but got 3"),
    (dict(search=RunOptions(epochs=5), high_epochs=2), "--high-epochs must be at least --epochs (5), but got 2"),
    (dict(k=4, top_k=5), "--top-k must be at most --k (4), but got 5"),
    (dict(high_train_fraction=0.0), "--high-train-fraction must be in (0, 1], but got 0.0"),
    (dict(high_train_images=100, high_train_fraction=0.5), "--high-train-images cannot be combined"),
    (dict(search=RunOptions(cpus_per_trial=0.5)), "--cpus-per-trial must be a number of at least 1"),
])
def test_bad_options_are_refused_when_made(kwargs, message):
    with pytest.raises(UsageError) as info:
        CalibrateOptions(**kwargs)
    assert message in str(info.value)


def test_k_defaults_to_eight_or_the_listed_and_top_k_to_a_quarter():
    assert (CalibrateOptions().k, CalibrateOptions().topk) == (8, 2)
    assert CalibrateOptions(RunOptions(enqueue=["tiny", "resnet20", "tpsnet"])).k == 8  # listed first, then sampled
    assert CalibrateOptions(RunOptions(enqueue=["tiny"] * 9)).k == 9
    assert CalibrateOptions(k=3).topk == 1
    assert CalibrateOptions(RunOptions(epochs=6)).high_epochs == 24  # the high fidelity: 4 times the search's


def test_low_fidelity_trains_what_the_search_with_the_same_flags_trains():
    flags = [*SEARCH_FLAGS, "--warmup-epochs", "0.5", "--grace-epochs", "1", "--reduction-factor", "3", "--seed", "3"]
    parser = cli.build_parser()
    opts = calibrate_options(parser.parse_args(["calibrate", *flags, "--high-epochs", "6"]))
    search = options_from(RunOptions, parser.parse_args(["run", *flags]))  # as `tpsearch run` builds its options
    hparams = {"optimizer": "adamw", "lr": 0.003, "weight_decay": 1e-4, "batch_size": 64, "label_smoothing": 0.05}
    runs = opts.runs()
    low = runs["low"].train_config(hparams, device="cpu")
    assert low == search.train_config(hparams, device="cpu")
    # The search's schedule: its warm-up, the cosine restarting at the rungs, scored there and at the end.
    assert (low.warmup_epochs, low.restarts, low.eval_epochs, low.seed) == (0.5, (1, 3), (1, 3), 3)
    # The high fidelity is the same search's training without ASHA, longer; the ceiling the same under seed + k.
    high = runs["high"].train_config(hparams, device="cpu")
    assert (high.epochs, high.restarts, high.eval_epochs, high.warmup_epochs, high.seed) == (6, (), (), 0.5, 3)
    assert runs["ceiling"].train_config(hparams, device="cpu") == dataclasses.replace(high, seed=3 + 8)


# -- the measurement ------------------------------------------------------------------------------------------------
def test_calibration_is_seeded_and_listed_architectures_come_first():
    first = calibrate(tiny(enqueue=["tiny"]))
    again = calibrate(tiny(enqueue=["tiny"]))
    assert [r["source"] for r in first.architectures] == ["tiny", "sampled", "sampled"]
    assert first.architectures[0]["arch"]["layers"] == 2 and first.architectures[0]["arch"]["pool"] == 4
    assert all(r["params"] <= 20_000 for r in first.architectures)
    assert len({json.dumps(r["arch"], sort_keys=True) for r in first.architectures}) == 3
    # On the CPU the same options give the same configurations and the same accuracies (not the same seconds).
    def untimed(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]

    assert untimed(first.architectures) == untimed(again.architectures)
    assert first.low == {"epochs": 4, "train_fraction": 1.0, "train_images": 96, "images": 96, "warmup_epochs": 0.25,
                         "scheduler": "asha", "rung_epochs": [1, 3]}
    assert first.high["images"] == 192 and first.high["scheduler"] == "none" and first.top_k == 1
    assert first.low_s > 0 and first.high_s > 0
    low = [r["low_accuracy"] for r in first.architectures]
    high = [r["high_accuracy"] for r in first.architectures]
    assert first.spearman == spearman(low, high) and first.topk_overlap == topk_overlap(low, high, 1)


def test_rung_scores_are_the_search_trainings_own():
    result = calibrate(tiny())
    # One agreement per rung, placed in images seen (epochs times the 96 images of an epoch).
    assert [(r["epochs"], r["images"]) for r in result.rungs] == [(1, 96), (3, 288)]
    high = [row["high_accuracy"] for row in result.architectures]
    for j, rung in enumerate(result.rungs):
        scores = [row["low_rungs"][j] for row in result.architectures]
        assert rung == {"epochs": rung["epochs"], "images": rung["images"], **agreement(scores, high, 1)}
    # The scores are those of the search's own training of the configuration: trained again here through
    # `RunOptions.train_config`, with the initial weights a search's worker gives trial i, they come back exactly.
    search, space = RunOptions(**SEARCH), spaces.get("resnet_5m")
    data = trainers.load_dataset("synthetic-hard", seed=0)
    row = result.architectures[1]
    torch.manual_seed(search.seed + 1)
    history = trainers.train(space.build(row["arch"], **data.shape), data,
                             search.train_config(row["hparams"], device="cpu")).history
    assert [h.epoch for h in history if h.val_accuracy is not None] == [1, 3, 4]
    assert [h.val_accuracy for h in history if h.val_accuracy is not None] == [*row["low_rungs"], row["low_accuracy"]]


def test_noise_ceiling_is_the_high_fidelity_under_another_seed():
    result = calibrate(tiny(k=4))
    rows = result.architectures
    high, again = [r["high_accuracy"] for r in rows], [r["ceiling_accuracy"] for r in rows]
    assert result.ceiling == {"seed": 4, "seconds": result.ceiling["seconds"], **agreement(high, again, 1)}
    assert high != again  # other initial weights and another batch order: not the same training again
    without = calibrate(CalibrateOptions(RunOptions(**SEARCH), k=4, ceiling=False, **HIGH))
    assert without.ceiling is None and "ceiling_accuracy" not in without.architectures[0]
    assert [r["high_accuracy"] for r in without.architectures] == high  # the ceiling changes nothing else


# -- the command ----------------------------------------------------------------------------------------------------
def test_command_end_to_end_json_and_page(tmp_path):
    page = tmp_path / "pages" / "calibration.html"
    r = subprocess.run([sys.executable, "-m", "tpsearch", "calibrate", "--k", "3", *TINY_FLAGS, "--json",
                        "--html", str(page)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout  # the human table went to stderr: stdout is the JSON line alone
    out = json.loads(lines[0])
    for key in ("spearman", "kendall", "topk_overlap", "low_s", "high_s", "spearman_ci", "kendall_ci"):
        assert key in out
    assert [r["images"] for r in out["rungs"]] == [96, 288]
    for part in (*out["rungs"], out["ceiling"]):
        assert {"spearman", "spearman_ci", "kendall", "kendall_ci", "topk_overlap"} <= set(part)
    assert "noise ceiling" in r.stderr and "rung at epoch 3 (288 images)" in r.stderr
    assert out["k"] == 3 and len(out["architectures"]) == 3 and out["dataset"] == "synthetic-hard"
    assert out["html"] == str(page) and "Spearman" in r.stderr
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in html and "<script src=" not in html  # offline
    assert "Spearman" in html and 'id="configurations"' in html


@pytest.mark.parametrize("args, message", [
    (["--k", "1"], "--k must be an integer of at least 2, but got 1"),
    (["--enqueue", "nope"], "--enqueue 'nope' is neither a preset"),
    (["--epochs", "3", "--high-epochs", "2"], "--high-epochs must be at least --epochs (3), but got 2"),
    (["--high-train-images", "999999"], "--high-train-images must be at most the 9,000 training images"),
    (["--high-epochs", "4", "--high-train-images", "96"], "the high fidelity must differ from the search's"),
    (["--train-images", "999999"], "--train-images must be at most the 9,000 training images"),
    (["--warmup-epochs", "2"], "--warmup-epochs 2 must end by ASHA's first rung"),
    (["--max-params", "100"], "--max-params 100 is below the smallest configuration"),
    (["--html", "{file}/page.html"], "cannot write the page"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a folder")
    args = [a.format(file=tmp_path / "file") for a in args]
    assert cli.main(["calibrate", *TINY_FLAGS, *args]) == 2  # the flags given last win over the tiny defaults
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_help_lists_the_fidelities(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["calibrate", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--train-images", "--warmup-epochs", "--grace-epochs", "--reduction-factor",
                 "--high-epochs", "--high-train-images", "--no-ceiling", "--enqueue", "--html", "--json", "--top-k"):
        assert flag in text
