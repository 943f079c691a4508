"""`tpsearch calibrate`: the rank statistics against known values, the measurement, the command end to end."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from tpsearch.exceptions import UsageError
from tpsearch.search import CalibrateOptions, average_ranks, calibrate, cli, kendall, spearman, topk_overlap

# Tiny and cheap: 16x16 synthetic-hard, networks under 20k parameters, a few hundred images.
TINY = dict(dataset="synthetic-hard", max_params=20_000, low_epochs=1, low_train_images=96, high_epochs=2,
            high_train_images=192, device="cpu")
TINY_FLAGS = ["--dataset", "synthetic-hard", "--max-params", "20000", "--low-epochs", "1", "--low-train-images", "96",
              "--high-epochs", "2", "--high-train-images", "192", "--device", "cpu", "--no-progress"]


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


# -- options --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(k=1), "--k must be an integer of at least 2, but got 1"),
    (dict(k=3, enqueue=["tiny"] * 4), "--k must be at least the 4 architectures listed with --enqueue, but got 3"),
    (dict(low_epochs=5, high_epochs=2), "--high-epochs must be at least --low-epochs (5), but got 2"),
    (dict(k=4, top_k=5), "--top-k must be at most --k (4), but got 5"),
    (dict(low_train_fraction=0.0), "--low-train-fraction must be in (0, 1], but got 0.0"),
    (dict(high_train_images=100, high_train_fraction=0.5), "--high-train-images cannot be combined"),
    (dict(device="gpu7"), "device must be 'auto' or a torch device"),
    (dict(cpus_per_trial=float("nan")), "--cpus-per-trial must be a number of at least 1, but got nan"),
])
def test_bad_options_are_refused_when_made(kwargs, message):
    with pytest.raises(UsageError) as info:
        CalibrateOptions(**kwargs)
    assert message in str(info.value)


def test_k_defaults_to_eight_or_the_listed_and_top_k_to_a_quarter():
    assert (CalibrateOptions().k, CalibrateOptions().topk) == (8, 2)
    assert CalibrateOptions(enqueue=["tiny", "resnet20", "tpsnet"]).k == 8  # listed first, the rest sampled
    assert CalibrateOptions(enqueue=["tiny"] * 9).k == 9
    assert CalibrateOptions(k=3).topk == 1


# -- the measurement ------------------------------------------------------------------------------------------------
def test_calibration_is_seeded_and_listed_architectures_come_first():
    opts = CalibrateOptions(k=3, enqueue=["tiny"], **TINY)
    first = calibrate(opts)
    again = calibrate(CalibrateOptions(k=3, enqueue=["tiny"], **TINY))
    assert [r["source"] for r in first.architectures] == ["tiny", "sampled", "sampled"]
    assert first.architectures[0]["arch"]["layers"] == 2 and first.architectures[0]["arch"]["pool"] == 4
    assert all(r["params"] <= 20_000 for r in first.architectures)
    assert len({json.dumps(r["arch"], sort_keys=True) for r in first.architectures}) == 3
    # On the CPU the same options give the same configurations and the same accuracies (not the same seconds).
    def untimed(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]

    assert untimed(first.architectures) == untimed(again.architectures)
    assert first.low == {"epochs": 1, "train_fraction": 1.0, "train_images": 96, "images": 96}
    assert first.high["images"] == 192 and first.top_k == 1 and first.low_s > 0 and first.high_s > 0
    low = [r["low_accuracy"] for r in first.architectures]
    high = [r["high_accuracy"] for r in first.architectures]
    assert first.spearman == spearman(low, high) and first.topk_overlap == topk_overlap(low, high, 1)


# -- the command ----------------------------------------------------------------------------------------------------
def test_command_end_to_end_json_and_page(tmp_path):
    page = tmp_path / "pages" / "calibration.html"
    r = subprocess.run([sys.executable, "-m", "tpsearch", "calibrate", "--k", "3", *TINY_FLAGS, "--json",
                        "--html", str(page)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout  # the human table went to stderr: stdout is the JSON line alone
    out = json.loads(lines[0])
    for key in ("spearman", "kendall", "topk_overlap", "low_s", "high_s"):
        assert key in out
    assert out["k"] == 3 and len(out["architectures"]) == 3 and out["dataset"] == "synthetic-hard"
    assert out["html"] == str(page) and "Spearman" in r.stderr
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in html and "<script src=" not in html  # offline
    assert "Spearman" in html and 'id="configurations"' in html


@pytest.mark.parametrize("args, message", [
    (["--k", "1"], "--k must be an integer of at least 2, but got 1"),
    (["--enqueue", "nope"], "--enqueue 'nope' is neither a preset"),
    (["--low-epochs", "3", "--high-epochs", "2"], "--high-epochs must be at least --low-epochs (3), but got 2"),
    (["--high-train-images", "999999"], "--high-train-images must be at most the 9,000 training images"),
    (["--high-epochs", "1", "--high-train-images", "96"], "the high fidelity must differ from the low one"),
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
    for flag in ("--low-epochs", "--high-train-images", "--enqueue", "--html", "--json", "--top-k"):
        assert flag in text
