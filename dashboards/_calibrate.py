"""The page of `tpsearch calibrate`: how far the search's fidelity ranks configurations as a longer training does."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tpsearch._files import atomic_write
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._page import _card, _classed_row, _result_page, _table, esc


def calibration_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch calibrate` result: the agreement at each rung and at the end against the noise
    ceiling, the scatter, then every configuration ranked at both fidelities (an older result without rungs: the
    scatter and the table)."""
    from tpsearch.study import average_ranks

    rows = result["architectures"]
    # Rank 1 is the best: ranks of the negated accuracies, ties sharing their average rank as the statistics do.
    low_rank = average_ranks([-row["low_accuracy"] for row in rows])
    high_rank = average_ranks([-row["high_accuracy"] for row in rows])
    order = sorted(range(len(rows)), key=lambda i: (high_rank[i], i))
    rung_epochs = [rung["epochs"] for rung in result.get("rungs", [])]
    ceiling = result.get("ceiling")
    head = ("<tr><th>#</th><th class=l>source</th><th>parameters</th>"
            + "".join(f"<th>rung {e}</th>" for e in rung_epochs) + "<th>low accuracy</th><th>low rank</th>"
            "<th>high accuracy</th><th>high rank</th>" + ("<th>high again</th>" if ceiling else "")
            + "<th class=l>architecture</th><th class=l>training</th></tr>")
    body_rows = []
    for i in order:
        row = rows[i]
        hp = row["hparams"]
        body_rows.append(_classed_row([
            (str(row["index"]), ""), (row["source"], "l"), (f"{row['params']:,}", ""),
            *((f"{a:.2%}", "") for a in row.get("low_rungs", [])),
            (f"{row['low_accuracy']:.2%}", ""), (f"{low_rank[i]:g}", ""), (f"{row['high_accuracy']:.2%}", ""),
            (f"{high_rank[i]:g}", ""), *([(f"{row['ceiling_accuracy']:.2%}", "")] if ceiling else []),
            (json.dumps(row["arch"]), "l w"),
            (f"{hp.get('optimizer', '')} lr {hp.get('lr', 0):.2g} wd {hp.get('weight_decay', 0):.1g} "
             f"batch {hp.get('batch_size', '')} ls {hp.get('label_smoothing', 0):.2f}", "l")]))
    low, high = result["low"], result["high"]
    facts = [
        f"<span>space <b>{esc(result['space'])}</b></span>", f"<span>data set <b>{esc(result['dataset'])}</b></span>",
        f"<span>device {esc(result['device'])}</span>",
        f"<span>low: {esc(low['epochs'])} epochs, {int(low['images']):,} images, {result['low_s']:.1f} s</span>",
        f"<span>high: {esc(high['epochs'])} epochs, {int(high['images']):,} images, {result['high_s']:.1f} s</span>"]
    cards = ((_card(F.calibration_rungs(result), "calibration-rungs") if "rungs" in result else "")
             + _card(F.calibration_scatter(result), "calibration"))
    return _result_page("calibrate", "Fidelity calibration", f"{result['space']} on {result['dataset']}",
                        cards + "<h2>Configurations, best at the high fidelity first</h2>"
                        + _table("configurations", head, body_rows), facts)


def write_calibration(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of a calibration result (`tpsearch.planned.calibrate(...).to_dict()`) to `path` atomically."""
    return atomic_write(path, calibration_html(result))
