"""The strategy simulator (issue 24): faithful to a real search over the same table, and a guard on what the
default strategy learns."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import optuna
import pytest

from tpsearch.search import run_search
from tpsearch.search.simulate import STRATEGIES, Table, replay_trial_for, run_options, simulate
from tpsearch.spaces.resnet_grid import GRID, ResNetGrid

TABLE = Path(os.environ.get("TPSEARCH_TEST_TABLE", "")) if os.environ.get("TPSEARCH_TEST_TABLE") else None
# A slice of the grid the table already holds whole: 2 x 2 x 2 x 2 x 2 x 2 x 2 = 128 configurations.
SLICE = {**GRID, "layers": (2, 3), "skip_kernel": (1,), "pool": ("global",), "lr": (0.1, 0.3), "weight_decay": (5e-4,)}


@pytest.fixture(scope="module")
def table() -> Table:
    from tpsearch.search.simulate import DEFAULT_TABLE

    return Table.read(TABLE or DEFAULT_TABLE)


def _decisions(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.params, t.state.name, dict(t.intermediate_values), t.user_attrs.get("stopped"))
            for t in study.get_trials(deepcopy=False)]


def test_a_real_search_over_the_table_takes_the_simulators_decisions(ray_session, table, tmp_path):
    """Same seed, one trial at a time: `tpsearch run` (Ray Tune, the driver, SQLite) whose trainable reads the
    table's curves draws the same trials and stops the same ones, at the same rungs, as the simulator."""
    space_file = tmp_path / "grid_slice.py"
    space_file.write_text("from tpsearch.spaces.resnet_grid import GRID, ResNetGrid\n\n\n"
                          "class Slice(ResNetGrid):\n    name = 'resnet_grid_slice'\n\n"
                          f"    def __init__(self):\n        super().__init__({SLICE!r})\n")
    space = ResNetGrid(SLICE)
    sliced = table.sliced(space)
    assert not sliced.missing(space)
    strategy = STRATEGIES["tpe+noise-aware"]
    trials, seed = 16, 3  # past TPE's 10 start-up trials; this seed stops trials at both rungs
    simulated = simulate(sliced, strategy, seed=seed, trials=trials, workers=1, space=space)

    opts = run_options(sliced, strategy, seed=seed, trials=trials, concurrency=1, space=f"{space_file}:Slice",
                       storage=f"sqlite:///{tmp_path / 'studies.db'}", study="replay", runs_dir=str(tmp_path / "runs"),
                       keep_checkpoints=0, cpus_per_trial=1)
    summary = run_search(opts, trainable=replay_trial_for(sliced))
    assert summary.error is None, summary.error
    real = optuna.load_study(study_name="replay", storage=opts.storage)

    assert _decisions(real) == _decisions(simulated.study)
    stopped = [d for d in simulated.decisions if d["stopped"]]
    assert stopped and len(stopped) < trials  # the stop path was taken, and not by everyone

