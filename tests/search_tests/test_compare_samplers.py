"""Is TPE better than random here? Three seeds of each on digits (`tpsearch run --repeat 3`), then `tpsearch compare
--group-by sampler`: curves against trained trials, a mean and a band per sampler, checked in Chromium against the
studies read back with plain Optuna."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tpsearch.cli import main

pytestmark = pytest.mark.slow  # runs searches on Ray

SEEDS = 3
TRIALS = 2


def _best_so_far(study: optuna.Study) -> list[float]:
    """Each trained trial in number order (feasible, completed or pruned), the best completed value so far."""
    best, out = float("nan"), []
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or t.user_attrs.get("feasible") is False:
            continue
        if t.state == TrialState.COMPLETE:
            best = t.value if np.isnan(best) else max(best, t.value)
        out.append(best)
    return out


def test_tpe_and_random_over_three_seeds_grouped_against_trained_trials(ray_session, tmp_path, capsys):
    from tests.dashboards_tests._browser import Browser, require_chromium

    storage = f"sqlite:///{tmp_path}/studies.db"
    studies: dict[str, list[str]] = {}
    for sampler in ("tpe", "random"):
        code = main(["run", "--dataset", "digits", "--storage", storage, "--runs-dir", str(tmp_path / "runs"),
                     "--trials", str(TRIALS), "--epochs", "1", "--train-images", "128", "--max-params", "60000",
                     "--sampler", sampler, "--repeat", str(SEEDS), "--scheduler", "none", "--concurrency", "1",
                     "--cpus-per-trial", "1", "--no-progress", "--json"])
        out = capsys.readouterr().out
        assert code == 0
        studies[sampler] = json.loads(out.strip().splitlines()[-1])["studies"]
        assert studies[sampler] == [f"resnet_5m-digits-{sampler}-seed{k}" for k in range(SEEDS)]
    names = studies["tpe"] + studies["random"]
    loaded = {n: optuna.load_study(study_name=n, storage=storage) for n in names}  # plain Optuna
    for sampler, group in studies.items():
        assert [loaded[n].user_attrs["sampler"] for n in group] == [sampler] * SEEDS
        assert [loaded[n].user_attrs["seed"] for n in group] == list(range(SEEDS))
        assert all(len(_best_so_far(loaded[n])) == TRIALS for n in group)

    page = tmp_path / "compare.html"
    assert main(["compare", *names, "--storage", storage, "--group-by", "sampler", "--out", str(page), "--json"]) == 0
    capsys.readouterr()
    binary = require_chromium()
    with Browser(binary, timeout=60) as browser:
        browser.open(page)
        assert browser.console_errors() == []
        # As plotly.js drew them (_fullData: the arrays decoded), not as the page declared them.
        traces = browser.eval("document.getElementById('fig-best')._fullData.map(t => ({name: t.name, "
                              "x: Array.from(t.x), y: Array.from(t.y), legend: t.showlegend !== false}))")
        axis = browser.eval("document.querySelector('#fig-best .xtitle').textContent")
        rows = browser.eval("[...document.querySelectorAll('#groups tr')].slice(1).map(r => "
                            "[...r.cells].map(c => c.textContent))")
    assert axis == "trained trials"
    means = {t["name"]: t for t in traces if t["legend"]}
    assert set(means) == {f"{s} (mean of {SEEDS})" for s in studies}
    for sampler, group in studies.items():
        curves = np.array([_best_so_far(loaded[n]) for n in group])
        mean = means[f"{sampler} (mean of {SEEDS})"]
        assert mean["x"] == list(range(1, TRIALS + 1))
        np.testing.assert_allclose(mean["y"], curves.mean(axis=0), rtol=1e-9)
        band = [t for t in traces if t["name"].startswith(f"{sampler} (mean of {SEEDS}) ")]
        upper = next(t for t in band if t["name"].endswith("upper"))
        np.testing.assert_allclose(upper["y"], curves.mean(axis=0) + curves.std(axis=0, ddof=1), rtol=1e-9)
    assert [r[0] for r in rows] == ["tpe", "random"] and all(r[1] == str(SEEDS) for r in rows)
    assert all(r[3].count("±") == 1 for r in rows)  # best after 2 trained: mean ± sd over the seeds
