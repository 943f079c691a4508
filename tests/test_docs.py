"""The runnable examples that open each package's docstring run, in a scratch folder (they write files)."""
from __future__ import annotations

import doctest
import importlib

import pytest

PACKAGES = ["tpsearch", "tpsearch.spaces", "tpsearch.trainers", "tpsearch.study", "tpsearch.storages",
            "tpsearch.checkpoints", "tpsearch.search", "tpsearch.planned", "tpsearch.export", "tpsearch.dashboards",
            "tpsearch.cli"]


@pytest.mark.parametrize("name", PACKAGES)
def test_the_package_docstring_opens_with_an_example_that_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    assert module.__doc__ and ">>> " in module.__doc__.split("\n\n")[1], f"{name}'s docstring opens with no example"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
