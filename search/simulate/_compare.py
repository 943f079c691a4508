"""Strategies compared over the table: many seeds of each, their regret against what they spent.

Regret is the table's best mean full-budget accuracy minus the mean full-budget accuracy (over the table's seeds)
of the configuration the search would export at that point: 0 when it found the best network, whatever noise the
search itself saw. Each strategy runs the same seeds, so all of them are judged on the same networks and the same
noise draws; the interval is the 95% t-interval of the mean over the seeds.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tpsearch.exceptions import UsageError
from tpsearch.search.simulate._simulator import STRATEGIES, Trace, simulate
from tpsearch.search.simulate._table import DEFAULT_TABLE, Table
from tpsearch.spaces.resnet_grid import ResNetGrid


@dataclass
class SimulateOptions:
    """What `tpsearch simulate` takes; each field is the flag of the same name."""

    table: str = str(DEFAULT_TABLE)
    strategies: list[str] | None = None   # None: every one in `STRATEGIES`
    seeds: int = 50                       # simulated searches per strategy: seeds seed, seed + 1, ...
    seed: int = 0
    trials: int | None = None             # trained trials per search; None: a fifth of the grid searched, at most
                                          # 200 (a search that trains most of a table nearly enumerates it)
    workers: int = 4                      # trials at once (simulated)
    processes: int = 1                    # this machine's processes running the simulations

    def __post_init__(self) -> None:
        self.strategies = list(self.strategies or STRATEGIES)
        for name in self.strategies:
            if name not in STRATEGIES:
                raise UsageError(f"--strategies: unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
        for flag, value in (("--seeds", self.seeds), ("--trials", self.trials), ("--workers", self.workers),
                            ("--processes", self.processes)):
            if value is not None and value < 1:
                raise UsageError(f"{flag} must be at least 1, but got {value}")


def interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95% t-interval of the mean of `values` (a point where there is one)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean() - half), float(v.mean() + half)


_WORKER: dict[str, Any] = {}  # a pool process's table and grid, read once


def _load(path: str, grid: dict[str, tuple[Any, ...]]) -> None:
    space = ResNetGrid(grid)
    _WORKER.update(table=Table.read(path).sliced(space), space=space)


def _one(job: tuple[str, str, int, int, int]) -> Trace:
    _, name, seed, trials, workers = job
    return simulate(_WORKER["table"], STRATEGIES[name], seed=seed, trials=trials, workers=workers,
                    space=_WORKER["space"])


def compare(opts: SimulateOptions, *, table: Table | None = None, space: ResNetGrid | None = None
            ) -> tuple[dict[str, Any], dict[str, list[Trace]]]:
    """Every strategy over the same seeds; the JSON summary and each strategy's traces."""
    start = time.perf_counter()
    if table is None:
        table = Table.read(opts.table)
    space = space or table.grid()
    missing = table.missing(space)
    if missing:
        raise UsageError(f"the table {opts.table} lacks {len(missing)} of the {len(space)} configurations of the "
                         f"grid searched (e.g. {missing[0]}): extend it with python benchmarks/build_table.py")
    table = table.sliced(space)
    trials = opts.trials or min(200, max(1, len(space) // 5))
    assert opts.strategies is not None
    jobs = [(opts.table, name, opts.seed + i, trials, opts.workers)
            for name in opts.strategies for i in range(opts.seeds)]
    if opts.processes > 1:
        with mp.get_context("spawn").Pool(opts.processes, initializer=_load, initargs=(opts.table, space.grid)) as pool:
            traces = pool.map(_one, jobs, chunksize=1)
    else:
        traces = [simulate(table, STRATEGIES[name], seed=seed, trials=trials, workers=workers, space=space)
                  for _, name, seed, trials, workers in jobs]
    by_name: dict[str, list[Trace]] = {name: [] for name in opts.strategies}
    for trace in traces:
        by_name[trace.strategy].append(trace)
    summary = {name: _summary(runs, trials) for name, runs in by_name.items()}
    ranking = sorted(summary, key=lambda n: (summary[n]["final_regret"], summary[n]["worker_seconds"]))
    result = {
        "table": str(opts.table), "dataset": table.meta["run"]["dataset"], "configurations": len(table.final),
        "grid": {k: list(v) for k, v in space.grid.items() if v != ResNetGrid().grid[k]},
        "best": table.best, "trials": trials, "share": trials / len(table.final), "workers": opts.workers,
        "seeds": opts.seeds, "first_seed": opts.seed, "table_stats": table.stats(), "strategies": summary,
        "ranking": ranking,
        "wall_s": round(time.perf_counter() - start, 1)}
    return result, by_name


def _summary(runs: list[Trace], trials: int) -> dict[str, Any]:
    final = [r.final_regret for r in runs]
    half = [_regret_at(r, trials // 2) for r in runs]
    lo, hi = interval(final)
    h_lo, h_hi = interval(half)
    strategy = STRATEGIES[runs[0].strategy]
    return {"seeds": len(runs), "final_regret": float(np.mean(final)), "final_regret_ci": [lo, hi],
            "regret_at_half": float(np.mean(half)), "regret_at_half_ci": [h_lo, h_hi],
            "found_best": float(np.mean([v == 0 for v in final])),
            "worker_seconds": float(np.mean([r.spent[-1] for r in runs])),
            "wall_seconds": float(np.mean([r.time[-1] for r in runs])),
            "stopped": float(np.mean([r.stopped for r in runs])),
            "flags": strategy.flags(), "what": strategy.what}


def _regret_at(trace: Trace, trained: int) -> float:
    """The regret once `trained` trials had ended (the last point before it, if the search trained fewer)."""
    i = int(np.searchsorted(np.asarray(trace.trained), trained, side="left"))
    return trace.regret[min(i, len(trace.regret) - 1)]


def curves(traces: dict[str, list[Trace]], x: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each run's regret as a step curve against trained trials (`x="trained"`) or worker-seconds ("seconds"),
    keyed "STRATEGY/seed": the shape `dashboards`' comparison figures take."""
    out = {}
    for name, runs in traces.items():
        for r in runs:
            steps = np.asarray(r.trained if x == "trained" else r.spent, dtype=float)
            regret = np.asarray(r.regret, dtype=float)
            seen = ~np.isnan(regret)
            out[f"{name}/{r.seed}"] = (steps[seen], regret[seen])
    return out
