"""The driver SIGKILLed three times (while a trial trains on a worker, just after a tell, just after a draw), then
resumed: nothing finished is lost, what was running is trained again, the study completes."""
from __future__ import annotations

import pytest
from optuna.trial import TrialState

from tpsearch.testing.search import driver_sigkill
from tpsearch.testing.search import running, trained

pytestmark = pytest.mark.slow  # starts `tpsearch run` processes with their own Ray


def test_three_sigkills_of_the_driver_lose_no_finished_trial_and_resume_completes(tmp_path):
    case = driver_sigkill(tmp_path, kills=3)
    assert case.rc == 0, case.extra["stderr"][-3000:]
    # Every trial finished before each kill is still there, with the same state, values, curve and attributes.
    assert len(case.before) == 3 and all(case.before)
    assert case.lost == []
    assert len(trained(case.trials)) == case.requested
    assert not running(case.trials)
    # The only failures are trials a kill left running; their configurations were trained again (all but draws
    # the kill caught with no params yet, or already known to be over the budget: nothing to train there).
    failed = [t for t in case.trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs["reason"].startswith("driver lost") for t in failed)
    retried = {t.user_attrs["retry_of"] for t in case.trials if "retry_of" in t.user_attrs}
    lost_running = {t.number for t in failed if t.params and t.user_attrs.get("feasible") is not False}
    assert lost_running and lost_running <= retried  # the first kill struck while a feasible trial trained
    for number in lost_running:  # trained again with the same configuration (a retry a later kill caught, again)
        again = case.trials[number]
        while again.state == TrialState.FAIL:
            again = next(t for t in case.trials if t.user_attrs.get("retry_of") == again.number)
        assert case.trials[number].params.items() <= again.params.items()
        assert again.state in (TrialState.COMPLETE, TrialState.PRUNED)
