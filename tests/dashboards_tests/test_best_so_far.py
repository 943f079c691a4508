""""The best so far" reads a study as `best_trial` does: over completed trials only. Optuna gives a pruned trial its
last intermediate score as its value; a network stopped at a rung is no network an export gives."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from tpsearch import dashboards
from tpsearch.study import best_so_far, best_trial


def _study() -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name="pruned-high")
    for number, (state, score) in enumerate([(TrialState.COMPLETE, 0.30), (TrialState.PRUNED, 0.61),
                                             (TrialState.COMPLETE, 0.40), (TrialState.PRUNED, 0.55)]):
        trial = study.ask()
        trial.set_user_attr("feasible", True)
        trial.report(score, step=1)
        study.tell(trial, score if state == TrialState.COMPLETE else None, state=state)
    assert study.trials[1].value == 0.61  # what Optuna does, and why the dashboards must not read `value` whole
    return study


def test_the_best_so_far_never_counts_a_pruned_trials_score(tmp_path):
    study = _study()
    assert best_trial(study).value == 0.40
    frame = dashboards.trials_frame(study)
    assert frame["best_value"].tolist()[1:] == [0.30, 0.40, 0.40]
    _, best = best_so_far(frame, "trained")  # the one every page draws
    assert best.tolist() == [0.30, 0.30, 0.40, 0.40]
    page = dashboards.comparison_html([study]).replace("\\u003c", "<")
    assert "40.00%" in page and "61.00%" not in page.split('<table id="studies">')[1].split("</table>")[0]
    summary = dashboards.dashboard_html(study)
    assert "best accuracy: <b>40.00%</b>" in summary
