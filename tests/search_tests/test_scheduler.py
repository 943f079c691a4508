"""Noise-aware ASHA's decisions, fed scores directly (no Ray trial runs: the decision is plain arithmetic)."""
from __future__ import annotations

import math

import pytest

from tpsearch.search._scheduler import LaunchOrder, NoiseAwareASHA, difference_se

VAL = 143  # digits' validation images: one image is 0.7 points


def _asha(**kw) -> NoiseAwareASHA:
    base = dict(rungs=(512, 1536), max_t=4096, reduction_factor=3, val_images=VAL, margin=2.0, min_steps=0)
    return NoiseAwareASHA(**{**base, **kw})


def test_nobody_is_stopped_where_the_scores_are_within_the_splits_noise():
    asha = _asha()
    # Everyone near chance after a few steps, a handful of images apart: stock ASHA would stop most of them.
    scores = [0.120, 0.098, 0.105, 0.084, 0.133, 0.112, 0.091, 0.119, 0.140, 0.126]
    decisions = [asha.decide(f"t{i}", 512, s, batch_size=64) for i, s in enumerate(scores)]
    assert decisions == [None] * len(scores)
    stock = _asha(margin=0.0)
    assert sum(stock.decide(f"t{i}", 512, s, batch_size=64) is not None for i, s in enumerate(scores)) >= 5


def test_a_trial_clearly_behind_is_stopped_with_its_evidence():
    asha = _asha()
    for i, s in enumerate([0.90, 0.88, 0.93, 0.86]):
        assert asha.decide(f"t{i}", 512, s, batch_size=64) is None
    evidence = asha.decide("behind", 512, 0.40, batch_size=64)
    assert evidence is not None and asha.stopped["behind"] is evidence
    assert evidence["images"] == 512 and evidence["score"] == 0.40 and evidence["peers"] == 4
    assert evidence["cutoff"] - 0.40 > 2 * evidence["se"] == pytest.approx(2 * difference_se(evidence["cutoff"], 0.4,
                                                                                             VAL))
    # One image below the cutoff is noise, not evidence.
    assert asha.decide("close", 512, evidence["cutoff"] - 1 / VAL, batch_size=64) is None


def test_the_margin_is_the_binomial_standard_error_of_a_difference():
    assert difference_se(0.5, 0.5, 100) == pytest.approx(math.sqrt(0.5 / 100))
    assert difference_se(1.0, 1.0, 143) == 0.0


def test_a_trial_with_too_few_steps_is_neither_judged_nor_a_yardstick():
    asha = _asha(min_steps=8)
    # 512 images at batch 128 are 4 steps: not judged, and its high score is no bar for the others.
    assert asha.decide("big-batch", 512, 0.95, batch_size=128) is None
    assert asha.decide("small-batch", 512, 0.20, batch_size=64) is None  # 8 steps, but nobody judged to compare with
    assert asha.decide("worse", 512, 0.02, batch_size=64) is not None  # clearly behind the 8-step one
    # The big batch is judged at the next rung, where it has 12 steps.
    assert asha.decide("big-batch", 1536, 0.97, batch_size=128) is None
    assert asha.decide("late", 1536, 0.30, batch_size=128) is not None


def test_launch_order_compares_a_trial_only_with_launches_a_window_before_it():
    order = LaunchOrder(window=2)
    asha = _asha(order=order)
    for name in ("a", "b", "c", "d"):
        order.launch(name)
    assert asha.decide("b", 512, 0.95, batch_size=64) is None  # arrives first
    # "c" (launch 2) is compared with launch 0 ("a") only: "b" (launch 1) may or may not have arrived in another
    # run, so it is not a yardstick; "a" has not scored here, so nobody is.
    assert asha.decide("c", 512, 0.10, batch_size=64) is None
    assert asha.decide("a", 512, 0.90, batch_size=64) is None
    assert asha.decide("d", 512, 0.10, batch_size=64) is not None  # launch 3 is compared with 0 and 1


def test_launch_order_lets_a_launch_go_only_once_the_one_a_window_before_it_finished():
    order = LaunchOrder(window=2)
    assert order.may_launch()
    order.launch("a")
    assert order.may_launch()
    order.launch("b")
    assert not order.may_launch()  # launch 2 waits for launch 0
    order.finish("b")
    assert not order.may_launch() and not order.settled(1)
    order.finish("a")
    assert order.may_launch() and order.settled(0) and not order.settled(1)
    order.launch("c")
    assert order.settled(1)
