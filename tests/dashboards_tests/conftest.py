"""Synthetic studies in the driver's format (see `dashboards.testing`), made once per session."""
from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest

from tpsearch.testing.dashboards import make_study

MARKUP = "<script>alert(1)</script>"
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="session")
def small_study() -> optuna.Study:
    return make_study(120, study_name="small", seed=3)


@pytest.fixture(scope="session")
def markup_study() -> optuna.Study:
    """Study name, study attributes and trial attributes that are markup: they must show as text."""
    base = make_study(40, study_name="base", seed=4)
    study = optuna.create_study(study_name=MARKUP, direction="maximize")
    for key, value in base.user_attrs.items():
        study.set_user_attr(key, value)
    study.set_user_attr("dataset", '<img src=x onerror="alert(2)">')
    study.set_user_attr("<b>key</b>", "&amp; <i>tag</i>")
    trials = []
    for t in base.trials:
        t = copy.deepcopy(t)
        attrs = dict(t.user_attrs)
        if "worker" in attrs:
            attrs["worker"] = f'<img src=x onerror="alert(3)">{attrs["worker"]}'
        if t.state == optuna.trial.TrialState.FAIL:
            attrs["reason"] = "<script>alert(4)</script>"
        t.user_attrs = attrs
        trials.append(t)
    study.add_trials(trials)
    return study


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage file with two studies, as `tpsearch run` would leave it."""
    path = Path(tmp_path_factory.mktemp("storage")) / "studies.db"
    url = f"sqlite:///{path}"
    make_study(80, storage=url, study_name="alpha", seed=1)
    make_study(60, storage=url, study_name="beta", seed=2, sampler="random")
    return url
