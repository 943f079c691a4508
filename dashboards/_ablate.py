"""The page of `tpsearch ablate`: each row's accuracy over its seeds as bars, then the table the command prints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tpsearch._files import atomic_write
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._page import _card, _classed_row, _result_page, _table, esc

LEFT = (1, 5)  # the tricks and the accuracies by seed: text, aligned left


def _cells(row: dict[str, Any]) -> list[str]:
    if not row["seeds"]:
        return [str(row["row"]), row["label"], "0", "not trained", "", ""]
    return [str(row["row"]), row["label"], str(row["seeds"]),
            f"{row['accuracy_mean']:.2%} ± {row['accuracy_std']:.2%}", f"{row['error_mean']:.2%}",
            ", ".join(f"{a:.2%}" for a in row["accuracies"])]


def ablation_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch ablate` result: the bars, then the table the command prints."""
    head = ("<tr><th>row</th><th class=l>tricks</th><th>seeds</th><th>accuracy (mean ± std)</th><th>error</th>"
            "<th class=l>accuracies by seed</th></tr>")
    rows = [_classed_row((c, "l" if i in LEFT else "") for i, c in enumerate(_cells(row))) for row in result["rows"]]
    facts = [
        f"<span>study <b>{esc(result['study'])}</b></span>",
        f"<span>space {esc(result['space'])}, preset <b>{esc(result['preset'])}</b> "
        f"({int(result['params']):,} parameters)</span>",
        f"<span>data set <b>{esc(result['dataset'])}</b>, {int(result['train_images']):,} training images</span>",
        f"<span>{esc(result['epochs'])} epochs, batch {esc(result['batch_size'])}</span>"]
    return _result_page("ablate", "Ablation", f"{result['preset']} on {result['dataset']}",
                        _card(F.ablation_bars(result), "ablation")
                        + f"<h2>Rows, each adding one trick to the row above</h2>{_table('rows', head, rows)}", facts)


def write_ablation(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of an ablation result (`tpsearch.planned.ablate(...)`) to `path` atomically."""
    return atomic_write(path, ablation_html(result))
