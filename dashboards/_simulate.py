"""The page of `tpsearch simulate`: each strategy's regret against trained trials and worker-seconds, and the table
of final regrets with their intervals."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tpsearch._files import atomic_write
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._page import _card, _classed_row, _result_page, _table, esc


def simulation_html(result: Mapping[str, Any], curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
                    groups: Mapping[str, Sequence[str]]) -> str:
    """`result` is `tpsearch simulate --json`'s object; `curves[x]` each run's regret against `x` ("trained",
    "seconds"), keyed as `groups` lists them per strategy."""
    head = ("<tr><th class=l>strategy</th><th class=l>flags</th><th>seeds</th><th>final regret (mean)</th>"
            "<th>95% interval</th><th>regret at half the trials</th><th>found the best</th><th>trials stopped</th>"
            "<th>worker-seconds</th></tr>")
    rows = []
    for name in result["ranking"]:
        s = result["strategies"][name]
        lo, hi = s["final_regret_ci"]
        cells = [(name, "l"), (s["flags"], "l"), (str(s["seeds"]), ""), (f"{s['final_regret']:.2%}", ""),
                 (f"[{lo:.2%}, {hi:.2%}]", ""), (f"{s['regret_at_half']:.2%}", ""), (f"{s['found_best']:.0%}", ""),
                 (f"{s['stopped']:.1f}", ""), (f"{s['worker_seconds']:,.0f}", "")]
        rows.append(_classed_row(cells))
    facts = [
        f"<span>table <b>{esc(Path(result['table']).name)}</b> ({result['configurations']:,} configurations of "
        f"{esc(result['dataset'])})</span>",
        f"<span>{result['trials']} trained trials per search ({result['share']:.0%} of the table), "
        f"{result['workers']} workers</span>",
        f"<span>{result['seeds']} seeds per strategy; best mean accuracy {result['best']:.2%}</span>"]
    body = (f'<h2>Final regret, best first</h2>{_table("strategies", head, rows)}<div class="grid">'
            + "".join(_card(F.regret_so_far(curves[x], groups, x=x), f"regret-{x}") for x in ("trained", "seconds"))
            + "</div>")
    return _result_page("simulate", "Strategies over the table", Path(result["table"]).name, body, facts)


def write_simulation(result: Mapping[str, Any], curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
                     groups: Mapping[str, Sequence[str]], path: str | os.PathLike) -> Path:
    """Write the page of a simulation result to `path` atomically."""
    return atomic_write(path, simulation_html(result, curves, groups))
