"""One real small study (digits, three trials, their weights kept), searched once and shared by the export tests."""
from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest


@dataclass(frozen=True)
class SmallStudy:
    root: Path
    storage: str
    name: str
    data_dir: Path
    best: int                  # number of the best completed trial
    kept: dict[str, str]       # trial number -> its kept weights file

    def study(self) -> optuna.Study:
        return optuna.load_study(study_name=self.name, storage=self.storage)

    def copy(self, dest: Path) -> "SmallStudy":
        """The same study in a storage of its own, for tests that change it."""
        dest.mkdir(parents=True, exist_ok=True)
        # SQLite's backup, not a file copy: the storage runs in WAL mode, so recent commits may live in -wal.
        with closing(sqlite3.connect(self.root / "studies.db")) as src, \
                closing(sqlite3.connect(dest / "studies.db")) as dst:
            src.backup(dst)
        return SmallStudy(dest, f"sqlite:///{dest}/studies.db", self.name, self.data_dir, self.best, self.kept)


@pytest.fixture(scope="session")
def small_study(tmp_path_factory, ray_session) -> SmallStudy:
    from tpsearch.search import run_search
    from tpsearch.study import best_trial
    from tpsearch.testing.search import run_options

    tmp = tmp_path_factory.mktemp("study")
    opts = run_options(tmp, max_params=60_000)
    summary = run_search(opts)
    assert summary.counts["complete"] == 3, summary
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    best = best_trial(study).number
    # Kept weights are recorded relative to the runs folder (a study moved with it still exports).
    return SmallStudy(tmp, opts.storage, opts.study_name(), tmp / "data", best,
                      {n: str(tmp / "runs" / path) for n, path in study.user_attrs["checkpoints"].items()})


@pytest.fixture(autouse=True)
def in_the_study_folder(small_study, monkeypatch):
    """The export tests run where the search ran, as a user would: its `runs/` folder is the default --runs-dir."""
    monkeypatch.chdir(small_study.root)
