"""Replay searches over the strategy table (real learning curves of every configuration of `resnet_grid`) with
tpsearch's own searcher and scheduler and a simulated clock, many seeds per strategy, and print each strategy's
regret: the best network's mean accuracy minus the mean accuracy of the network the search would export.

(`tpsearch simulate`: its flags are `SimulateOptions`' fields, one to one.)
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import add_json, emit_json, options_from
from tpsearch.cli._registry import command


def _simulate_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.search.simulate import STRATEGIES, SimulateOptions

    d = SimulateOptions()
    strategies = "; ".join(f"{name}: {s.what}" for name, s in STRATEGIES.items())
    p.description = __doc__.split("\n\n")[0] + f" Strategies: {strategies}."
    p.add_argument("--table", default=d.table, help="the table's CSV (default: the one tpsearch ships)")
    p.add_argument("--strategies", type=_names(STRATEGIES), default=None, metavar="S1,S2",
                   help="strategies to compare (default: all)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="simulated searches per strategy")
    p.add_argument("--seed", type=int, default=d.seed, help="the first seed (then seed + 1, ...)")
    p.add_argument("--trials", type=int, default=None,
                   help="trained trials per search (default: a fifth of the configurations searched, at most 200)")
    p.add_argument("--workers", type=int, default=d.workers, help="trials training at once in the simulated cluster")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                   help="processes of this machine running the simulations (default: its cores)")
    p.add_argument("--html", default="runs/simulate.html", help="the page (default: %(default)s)")
    add_json(p)


def _names(choices: Any) -> Any:
    from tpsearch.cli._flags import names_list

    return names_list(choices, what="strategy")


@command(90, "simulate", _simulate_flags)
def run_simulate(args: argparse.Namespace) -> int:
    """compare search strategies over a table of real learning curves, many seeds each

    Example: tpsearch simulate --strategies random,tpe+steps --seeds 50
    """
    from tpsearch.search.simulate import SimulateOptions, compare

    opts = options_from(SimulateOptions, args)
    result, traces = compare(opts)
    result["html"] = str(write_or_refuse("page", Path(args.html), lambda: write_page(result, traces, args.html)))
    _print_table(result, sys.stderr if args.json else sys.stdout)
    if args.json:
        emit_json(result)
    return 0


def _print_table(result: dict[str, Any], stream: TextIO) -> None:
    lines = [f"{result['seeds']} seeds per strategy, {result['trials']} trained trials each "
             f"({result['share']:.0%} of the table's {result['configurations']:,} configurations), "
             f"{result['workers']} workers; best mean accuracy {result['best']:.2%}; {result['wall_s']:.0f} s"]
    width = max(len("strategy"), *map(len, result["ranking"]))
    lines.append(f"  {'strategy':<{width}}  {'final regret':>12}  {'95% interval':>17}  {'at half':>7}  "
                 f"{'found best':>10}  {'stopped':>7}  {'worker-s':>9}")
    for name in result["ranking"]:
        s = result["strategies"][name]
        lo, hi = s["final_regret_ci"]
        lines.append(f"  {name:<{width}}  {s['final_regret']:>12.2%}  {f'[{lo:.2%}, {hi:.2%}]':>17}  "
                     f"{s['regret_at_half']:>7.2%}  {s['found_best']:>10.0%}  {s['stopped']:>7.1f}  "
                     f"{s['worker_seconds']:>9,.0f}")
    lines.append(f"wrote {result['html']}")
    print("\n".join(lines), file=stream)


def write_page(result: dict[str, Any], traces: dict[str, list[Any]], path: str | Path) -> Path:
    """The comparison's page: each strategy's runs as regret curves against trained trials and worker-seconds."""
    from tpsearch import dashboards
    from tpsearch.search.simulate import curves

    groups = {name: [f"{name}/{r.seed}" for r in runs] for name, runs in traces.items()}
    return dashboards.write_simulation(result, {x: curves(traces, x) for x in ("trained", "seconds")}, groups, path)
