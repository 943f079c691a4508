"""Two `tpsearch run` drivers on one SQLite study: the second refuses in one line; the first completes."""
from __future__ import annotations

import pytest
from optuna.trial import TrialState

from tpsearch.testing.search import two_drivers
from tpsearch.testing.search import running, trained

pytestmark = pytest.mark.slow  # starts `tpsearch run` processes with their own Ray


def test_a_second_driver_on_a_study_being_searched_refuses_and_the_first_completes(tmp_path):
    case = two_drivers(tmp_path)
    rc, err = case.extra["second"]
    assert case.extra["first_running_then"], "the first driver ended before the second was started"
    assert rc == 2, err[-3000:]
    assert len(err.strip().splitlines()) == 1 and "is being searched by" in err and "Traceback" not in err
    assert case.rc == 0, case.error
    # The study is consistent: the requested trials exactly, nothing running, nothing the first finished lost.
    assert len(trained(case.trials)) == case.requested
    assert not running(case.trials) and case.lost == []
    assert not [t for t in case.trials if t.state == TrialState.FAIL]
    # Once the first has ended, the same command runs (no lease is left behind) and has nothing left to train.
    rc3, err3 = case.extra["third"]
    assert rc3 == 0 and "is being searched by" not in err3, err3[-3000:]
    assert len(trained(case.trials)) == len(trained(case.extra["after_first"]))
