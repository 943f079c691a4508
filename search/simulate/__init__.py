"""Search strategies measured: a table of real learning curves and a simulator that replays tpsearch's own
searcher and scheduler over it (`tpsearch simulate`)."""
from tpsearch.search.simulate._compare import SimulateOptions, compare, curves, interval
from tpsearch.search.simulate._simulator import (DEFAULT, STRATEGIES, Strategy, Trace, observed_seed, replay_trial_for,
                                                 run_options, simulate)
from tpsearch.search.simulate._table import DEFAULT_TABLE, Point, Table

__all__ = ["DEFAULT", "DEFAULT_TABLE", "STRATEGIES", "Point", "SimulateOptions", "Strategy", "Table", "Trace", "compare",
           "curves", "interval", "observed_seed", "replay_trial_for", "run_options", "simulate"]
