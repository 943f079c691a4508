"""The trials frame, the figures and the page without a browser."""
from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from tpsearch import dashboards
from tpsearch.dashboards import _figures
from tpsearch.study import best_so_far
from tpsearch.testing.dashboards import make_study


def test_the_frame_names_each_trial_as_the_driver_told_it() -> None:
    # Written by hand in the driver's format, not by `make_study`: the frame must read what the driver wrote, so
    # the expected words come from the driver's rules (README "How a search runs"), not from the reader itself.
    told = [  # (state, value, attributes, curve, the word the frame must show)
        (TrialState.COMPLETE, 0.9, {"feasible": True}, {1: 0.5, 2: 0.9}, "complete"),
        (TrialState.PRUNED, None, {"feasible": True}, {1: 0.4}, "pruned"),
        (TrialState.PRUNED, None, {"feasible": False, "reason": "params"}, {}, "infeasible"),
        (TrialState.PRUNED, None, {"feasible": True, "reason": "diverged", "chance": 0.1}, {1: 0.1}, "diverged"),
        (TrialState.FAIL, None, {"feasible": True, "reason": "the worker died"}, {1: 0.3}, "failed"),
        (TrialState.COMPLETE, 0.95, {"feasible": True}, {1: 0.6, 2: 0.95}, "complete"),
    ]
    x = optuna.distributions.IntDistribution(1, 3)
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(state=state, value=value, params={"layers": 1},
                                                distributions={"layers": x}, user_attrs=attrs,
                                                intermediate_values=curve)
                      for state, value, attrs, curve, _ in told])
    frame = dashboards.trials_frame(study)
    assert list(frame["status"]) == [word for *_, word in told]
    assert [dashboards.status_of(t) for t in study.trials] == [word for *_, word in told]
    # Trained trials (complete, pruned, diverged) are counted in order; infeasible and failed ones are not.
    assert list(frame["trained"].astype("float").fillna(0)) == [1, 2, 0, 3, 0, 4]
    assert list(frame["best_value"].iloc[[0, 5]]) == [0.9, 0.95]
    assert frame["accuracy"].iloc[1] == 0.4  # a pruned trial's accuracy is its last report


def test_sqlite_study_round_trips(sqlite_url: str) -> None:
    """The bulk path of `make_study` reads back like `add_trials` would have written it."""
    stored = optuna.load_study(study_name="alpha", storage=sqlite_url)
    memory = make_study(80, study_name="alpha", seed=1)
    assert stored.user_attrs == memory.user_attrs
    for a, b in zip(stored.trials, memory.trials, strict=True):
        assert (a.number, a.state, a.value, a.params, a.distributions, a.user_attrs, a.intermediate_values,
                a.datetime_start, a.datetime_complete) == \
               (b.number, b.state, b.value, b.params, b.distributions, b.user_attrs, b.intermediate_values,
                b.datetime_start, b.datetime_complete)


def test_frame_columns(small_study: optuna.Study) -> None:
    frame = dashboards.trials_frame(small_study)
    assert len(frame) == len(small_study.trials)
    assert list(frame["number"]) == sorted(frame["number"])
    for col in ("status", "accuracy", "best_value", "duration_s", "params_layers", "user_attrs_params",
                "arch_layers", "arch_blocks_1", "arch_blocks_total", "intermediate_values"):
        assert col in frame, col
    best = frame["best_value"].dropna()
    assert best.is_monotonic_increasing and math.isclose(best.iloc[-1], small_study.best_value)
    row = frame[frame["status"] == "complete"].iloc[0]
    arch = small_study.trials[int(row["number"])].user_attrs["arch"]
    assert row["arch_blocks_total"] == sum(arch["blocks"])
    pruned = frame[frame["status"] == "pruned"].iloc[0]
    assert np.isnan(pruned["value"]) and pruned["accuracy"] == pruned["intermediate_values"][pruned["last_epoch"]]
    trained = frame["status"].isin(["complete", "pruned", "diverged"])
    assert list(frame.loc[trained, "trained"]) == list(range(1, trained.sum() + 1))
    assert frame.loc[~trained, "trained"].isna().all()


def test_pareto_mask() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 0.5])
    acc = np.array([0.5, 0.7, 0.6, 0.65, 0.9, 0.4])
    assert list(dashboards.pareto_mask(cost, acc)) == [True, True, False, False, True, True]


def test_importances_degrade_to_a_note() -> None:
    one = make_study(0)
    one.add_trial(optuna.trial.create_trial(value=0.5, params={"x": 1.0},
                                            distributions={"x": optuna.distributions.FloatDistribution(0, 2)}))
    note = _figures.importances(one, one.trials)
    assert isinstance(note, str) and "at least two" in note
    one.add_trial(optuna.trial.create_trial(value=0.6, params={"x": 1.0},
                                            distributions={"x": optuna.distributions.FloatDistribution(0, 2)}))
    assert isinstance(_figures.importances(one, one.trials), (str, _figures.go.Figure))
    page = dashboards.dashboard_html(one)  # two trials without the driver's attributes still make a page
    assert "Optimization history" in page


def test_importances_from_few_completed_trials_say_so(small_study: optuna.Study) -> None:
    x = optuna.distributions.FloatDistribution(0, 2)
    few = make_study(0)
    for i in range(3):
        few.add_trial(optuna.trial.create_trial(value=0.5 + i / 10, params={"x": float(i) / 2}, distributions={"x": x}))
    fig = _figures.importances(few, few.trials)
    assert isinstance(fig, _figures.go.Figure)
    assert "3 completed trials" in fig.layout.title.text and "few trials" in fig.layout.title.text
    fig = _figures.importances(small_study, small_study.trials)  # 29 completed trials, 9 parameters ranked
    assert "29 completed trials" in fig.layout.title.text and "few trials" not in fig.layout.title.text


def test_titles_hang_below_the_modebar() -> None:
    fig = _figures.best_so_far({"a": dashboards.trials_frame(make_study(30, seed=1).trials)})
    title = fig.layout.title
    assert (title.yref, title.y, title.yanchor, title.pad.t) == ("container", 1.0, "top", _figures.MODEBAR_PX)
    assert fig.layout.margin.t >= _figures.MODEBAR_PX + 50  # the title's row and the legend's below the toolbar


def test_empty_study_makes_a_page() -> None:
    page = dashboards.dashboard_html(optuna.create_study(study_name="empty", direction="maximize"))
    assert "No completed trial yet" in page and "at least two" in page


def test_learning_curves_are_capped() -> None:
    study = make_study(600, seed=5)
    frame = dashboards.trials_frame(study)
    fig = _figures.learning_curves(frame, max_curves=(20, 10))
    curves = {t.name: sum(x is None for x in t.x) for t in fig.data}
    assert curves == {"pruned": 10, "completed": 20}


def test_learning_curves_of_one_score_per_trial_are_drawn_and_say_why() -> None:
    """Without ASHA every trial is scored once, after its last epoch: the panel draws each as a point (a line of
    one point is invisible) and its title says why there are no curves."""
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trials = [optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=v, params={"x": v},
                                        distributions=dist, intermediate_values={4: v}, user_attrs={"feasible": True})
              for v in (0.5, 0.7, 0.9)]
    fig = _figures.learning_curves(dashboards.trials_frame(trials))
    assert "one score per trial" in fig.layout.title.text
    (trace,) = fig.data
    assert "markers" in trace.mode and sorted(y for y in trace.y if y is not None) == [0.5, 0.7, 0.9]
    study = make_study(60, seed=5)  # curves of several scores: no such note
    assert "one score" not in _figures.learning_curves(dashboards.trials_frame(study)).layout.title.text


def test_learning_curves_count_images_seen_where_the_study_records_them(small_study: optuna.Study) -> None:
    frame = dashboards.trials_frame(small_study)
    budget = small_study.user_attrs["training_budget"]
    fig = _figures.learning_curves(frame, budget=budget)
    assert fig.layout.xaxis.title.text == "training images seen"
    xs = [x for trace in fig.data for x in trace.x if x is not None]
    assert xs and all(x % budget["images_per_epoch"] == 0 for x in xs)
    assert sorted(shape.x0 for shape in fig.layout.shapes) == sorted([budget["warmup"], *budget["rungs"]])
    assert _figures.learning_curves(frame).layout.xaxis.title.text == "epoch"  # a study without the attribute


def test_write_is_atomic_and_self_contained(small_study: optuna.Study, tmp_path) -> None:
    path = dashboards.write_dashboard(small_study, tmp_path / "sub" / "page.html")
    text = path.read_text()
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    assert re.search(r"<script[^>]*\bsrc=", text) is None and re.search(r"<link[^>]*\bhref=", text) is None
    assert text.count('class="plotly-graph-div"') == 8
    assert 'id="top-trials"' in text and text.count("<tr>") == 11
    assert "budget 5M" in text


def test_markup_is_escaped(markup_study: optuna.Study) -> None:
    text = dashboards.dashboard_html(markup_study)
    body = text.split("</head>", 1)[1]
    assert markup_study.study_name not in body and "<img" not in body and "<b>key</b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "alert(2)" in body and "alert(3)" in body  # present, but only as escaped text



def test_the_macs_budget_is_drawn_where_the_study_has_one() -> None:
    study = make_study(30, study_name="macs", seed=7)
    assert "budget 300M" not in dashboards.dashboard_html(study)  # searched without a MACs budget: no line
    study.set_user_attr("max_macs", 300_000_000)
    text = dashboards.dashboard_html(study)
    assert "budget 5M" in text and "budget 300M" in text
    assert "budget 200M" in dashboards.dashboard_html(study, max_macs=200_000_000)  # an explicit budget wins
    fig = _figures.accuracy_vs(dashboards.trials_frame(study), _figures.MACS, label="MACs per image", budget=3e8)
    assert [shape.x0 for shape in fig.layout.shapes] == [3e8]


def test_the_timeline_gives_trials_that_overlap_on_one_worker_their_own_rows() -> None:
    """Node a ran trials 0 and 1 at once, then 2 after 0 ended (in 0's slot); node b ran 3 alone: no bar hides
    another, and a worker that never overlapped keeps its plain name."""
    t0 = dt.datetime(2026, 1, 1)
    spans = [("a", 0, 10), ("a", 5, 20), ("a", 12, 15), ("b", 0, 30)]  # trials 0..3: worker, start, end (s)
    study = optuna.create_study(direction="maximize")
    for worker, _, _ in spans:
        study.add_trial(optuna.trial.create_trial(
            value=0.5, user_attrs={"worker": worker, "params": 1, "feasible": True},
            intermediate_values={1: 0.5}))
    trials = study.trials
    for t, (_, start, end) in zip(trials, spans):
        t.datetime_start, t.datetime_complete = t0 + dt.timedelta(seconds=start), t0 + dt.timedelta(seconds=end)
    frame = dashboards.trials_frame(trials)
    fig = _figures.timeline(frame)
    lane = {}
    for trace in fig.data:
        for number, y in zip(trace.customdata, trace.y):
            if number is not None:
                lane[int(number)] = y
    assert lane == {0: "a #1", 1: "a #2", 2: "a #1", 3: "b"}
    assert list(fig.layout.yaxis.categoryarray) == ["a #1", "a #2", "b"]


def test_comparison_curves_count_trained_trials_and_carry_the_best_over_pruned_ones() -> None:
    """Trials: infeasible draw, complete 0.5, pruned, complete 0.4, complete 0.7. Against trained trials the curve is
    1, 2, 3, 4 -> 0.5, 0.5, 0.5, 0.7 (the draw is no step; the pruned trial carries the best over); a group's mean
    and spread run only where every study has a value, up to the shortest study."""
    from tpsearch.dashboards import _compare

    # The pruned trial holds the score of its rung as its value, as Optuna records one: it must not count.
    frame = pd.DataFrame({"number": range(5), "value": [np.nan, 0.5, 0.9, 0.4, 0.7],
                          "status": ["infeasible", "complete", "pruned", "complete", "complete"],
                          "trained": pd.array([pd.NA, 1, 2, 3, 4], dtype="Int64"),
                          "datetime_complete": pd.date_range("2026-01-01", periods=5, freq="s"),
                          "user_attrs_seconds": [0.0, 10.0, 5.0, 10.0, 10.0]})
    steps, best = best_so_far(frame, "trained")
    assert list(steps) == [1, 2, 3, 4] and list(best) == [0.5, 0.5, 0.5, 0.7]
    steps, best = best_so_far(frame, "seconds")
    assert list(steps) == [10, 15, 25, 35] and list(best) == [0.5, 0.5, 0.5, 0.7]
    assert list(best_so_far(frame, "trial")[0]) == [0, 1, 2, 3, 4]
    short = frame.iloc[:3]  # trained 1, 2: best 0.5, 0.5
    b = _compare.band("g", {"a": best_so_far(frame), "b": best_so_far(short)}, "trained")
    assert list(b.x) == [1, 2] and list(b.mean) == [0.5, 0.5] and list(b.std) == [0, 0]
    a4, b4 = _compare.best_at({"a": best_so_far(frame), "b": best_so_far(short)}, 4)
    assert a4 == 0.7 and math.isnan(b4)  # b never trained a fourth trial
