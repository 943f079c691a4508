"""Accuracy against cost: `tpsearch run --objectives accuracy,macs` on digits (TPE, and NSGA-II), read back with plain
Optuna, by `status`, the dashboard and the comparison page in Chromium, optuna-dashboard's API, and `export
--pareto`."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions
from tpsearch.study._objectives import dominates, hypervolume
from tpsearch.cli import main

pytestmark = pytest.mark.slow  # runs searches on Ray

STUDY = "resnet_5m-digits-accuracy-macs"


def test_objectives_start_with_accuracy_and_name_known_costs_once():
    assert RunOptions(dataset="digits", objectives=["accuracy", "macs"]).study_name() == STUDY
    assert RunOptions().study_name() == "resnet_5m-cifar10"
    for bad, word in ((["macs", "accuracy"], "start with accuracy"), (["accuracy", "size"], "unknown 'size'"),
                      (["accuracy", "macs", "macs"], "once")):
        with pytest.raises(UsageError, match=word):
            RunOptions(objectives=bad)


def test_hypervolume_by_hand():
    # Two points in the unit square: 0.3 x 0.8 + 0.2 x (0.8 - 0.4) ... as rectangles from the reference (1, 1).
    assert hypervolume([(0.2, 0.5), (0.5, 0.2)], (1, 1)) == pytest.approx(0.8 * 0.5 + 0.5 * 0.3)
    assert hypervolume([(0.2, 0.5), (0.3, 0.6)], (1, 1)) == pytest.approx(0.8 * 0.5)  # a dominated point adds 0
    assert hypervolume([(1.2, 0.1)], (1, 1)) == 0.0  # outside the box
    assert hypervolume([(0.5, 0.5, 0.5)], (1, 1, 1)) == pytest.approx(0.125)
    assert hypervolume([(0.0, 0.5, 0.5), (0.5, 0.0, 0.5)], (1, 1, 1)) == pytest.approx(0.5 * 0.5 * 2 - 0.25 * 0.5)


def _front(study: optuna.Study) -> list[int]:
    """The front computed here from plain Optuna values: completed, feasible, not diverged, non-dominated."""
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible") is not False
            and t.user_attrs.get("reason") != "diverged"]
    loss = {t.number: (-t.values[0], t.values[1]) for t in done}
    return sorted(n for n, p in loss.items() if not any(dominates(q, p) for q in loss.values()))


def test_two_objective_search_status_pages_optuna_dashboard_and_export(ray_session, tmp_path, capsys):
    from tests.dashboards_tests._browser import Browser, require_chromium
    from tests.dashboards_tests.test_optuna_dashboard import _get, serving
    from tpsearch import load_checkpoint

    storage = f"sqlite:///{tmp_path}/studies.db"
    common = ["--dataset", "digits", "--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--epochs", "1",
              "--train-images", "128", "--max-params", "60000", "--scheduler", "none", "--concurrency", "1",
              "--cpus-per-trial", "1", "--no-progress", "--json", "--objectives", "accuracy,macs"]
    assert main(["run", *common, "--trials", "4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["run", *common, "--trials", "3", "--sampler", "nsga2", "--study", "nsga2"]) == 0
    capsys.readouterr()

    study = optuna.load_study(study_name=STUDY, storage=storage)  # plain Optuna
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert study.user_attrs["objectives"] == ["accuracy", "macs"]
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 4
    for t in trained:  # both values of every trained trial: its accuracy and the MACs the driver counted
        assert len(t.values) == 2 and 0.0 <= t.values[0] <= 1.0 and t.values[1] == t.user_attrs["macs"]
        assert t.intermediate_values == {1: pytest.approx(t.values[0])}  # the learning curve is kept too
    front = _front(study)
    assert front and [r["trial"] for r in summary["pareto"]] == sorted(front, key=lambda n: -study.trials[n].values[0])
    nsga2 = optuna.load_study(study_name="nsga2", storage=storage)
    assert len([t for t in nsga2.trials if t.state == TrialState.COMPLETE and len(t.values) == 2]) == 3

    assert main(["status", "--storage", storage, "--study", STUDY, "--json"]) == 0
    detail = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["detail"]
    assert sorted(r["trial"] for r in detail["pareto"]) == front
    assert all(r["macs"] == study.trials[r["trial"]].values[1] for r in detail["pareto"])

    page, compare = tmp_path / "dashboard.html", tmp_path / "compare.html"
    assert main(["dashboard", "--storage", storage, "--study", STUDY, "--out", str(page)]) == 0
    assert main(["compare", STUDY, "nsga2", "--storage", storage, "--out", str(compare)]) == 0
    capsys.readouterr()
    binary = require_chromium()
    with Browser(binary, timeout=60) as browser:
        browser.open(page)
        assert browser.console_errors() == []
        rows = browser.eval("[...document.querySelectorAll('#pareto tr')].slice(1).map(r => r.cells[0].textContent)")
        drawn = browser.eval("document.getElementById('fig-macs')._fullData.filter(t => t.name == 'Pareto front')"
                             ".map(t => ({x: Array.from(t.x), y: Array.from(t.y), n: Array.from(t.customdata)}))")
        browser.open(compare)
        assert browser.console_errors() == []
        hv = browser.eval("document.getElementById('fig-hypervolume')._fullData.map(t => ({name: t.name, "
                          "y: Array.from(t.y)}))")
        overlaid = browser.eval("document.getElementById('fig-fronts-macs')._fullData.map(t => t.name)")
    assert sorted(int(n) for n in rows) == front
    assert len(drawn) == 1 and sorted(drawn[0]["n"]) == front
    assert sorted(zip(drawn[0]["x"], drawn[0]["y"])) == sorted((study.trials[n].values[1], study.trials[n].values[0])
                                                               for n in front)
    assert overlaid == [STUDY, "nsga2"]
    # The hypervolume curve ends at the front's: 1 - accuracy and MACs over the studies' MACs budget (both have the
    # default cap, --max-macs auto), else over the larger of the two studies' largest.
    budgets = [s.user_attrs.get("max_macs") for s in (study, nsga2)]
    scale = max(budgets) if all(budgets) else \
        max(t.values[1] for s in (study, nsga2) for t in s.trials if t.state == TrialState.COMPLETE)
    final = hypervolume([(1 - study.trials[n].values[0], study.trials[n].values[1] / scale) for n in front], (1, 1))
    mine = next(t for t in hv if t["name"] == STUDY)
    assert len(mine["y"]) == 4 and mine["y"][-1] == pytest.approx(final)
    assert all(a <= b + 1e-12 for a, b in zip(mine["y"], mine["y"][1:]))  # it never falls

    with serving(storage) as (base, summaries):
        listed = {s["study_name"]: s for s in summaries}
        assert listed[STUDY]["directions"] == ["maximize", "minimize"]
        detail = _get(f"{base}/api/studies/{listed[STUDY]['study_id']}")
    assert sorted(t["number"] for t in detail["best_trials"]) == sorted(t.number for t in study.best_trials)
    for t in detail["trials"]:
        if t["state"] == "Complete":
            assert t["values"] == pytest.approx(study.trials[t["number"]].values)

    out = tmp_path / "front"
    assert main(["export", "--storage", storage, "--study", STUDY, "--pareto", str(out), "--runs-dir",
                 str(tmp_path / "runs"), "--no-test", "--json"]) == 0
    written = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["pareto"]
    assert sorted(r["trial"] for r in written) == front
    for r in written:
        model, meta = load_checkpoint(out / f"trial_{r['trial']}.pt")
        assert meta["provenance"]["trial"] == r["trial"]
        assert meta["metrics"]["macs"] == study.trials[r["trial"]].values[1]
    with pytest.raises(SystemExit) as e:  # one of the two: argparse's own one line
        main(["export", "--storage", storage, "--study", STUDY, "--pareto", str(out), "--out", "x.pt"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_two_objective_search_on_the_default_path_prunes_and_keeps_a_front(ray_session, tmp_path, capsys):
    """TPE and ASHA as a user gets them, 30 trained trials: past TPE's start-up, pruned trials (whose learning
    curves TPE ranks) are in the study, and the search ends with a front (TPE used to crash there: pruned trials
    are ranked through `study.direction`, which a multi-objective study refuses)."""
    storage = f"sqlite:///{tmp_path}/studies.db"
    assert main(["run", "--dataset", "digits", "--storage", storage, "--runs-dir", str(tmp_path / "runs"),
                 "--epochs", "4", "--train-images", "256", "--max-params", "60000", "--trials", "30",
                 "--cpus-per-trial", "1", "--no-progress", "--json", "--objectives", "accuracy,macs"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trained = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               and t.user_attrs.get("feasible")]
    assert len(trained) == summary["finished"] == 30
    pruned = [t for t in trained if t.state == TrialState.PRUNED]
    assert pruned and all(t.intermediate_values for t in pruned)
    assert summary["pareto"] and [r["trial"] for r in summary["pareto"]] == _front(study)[::-1] or \
        sorted(r["trial"] for r in summary["pareto"]) == _front(study)
