"""The page of `tpsearch rerank`: the finalists' accuracy over seeds as bars beside the search's scores, then the
table the command prints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tpsearch._files import atomic_write
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._page import _card, _classed_row, _fmt_int, _result_page, _table, esc
from tpsearch.study import trial_label


def rerank_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch rerank` result: the bars beside the search's scores, then the table the command
    prints."""
    head = ("<tr><th>rank</th><th class=l>architecture</th><th>parameters</th><th>search</th><th>search rank</th>"
            "<th>rerank (mean ± std)</th><th>seeds</th><th class=l>accuracies by seed</th></tr>")
    rows = [_classed_row([
        (str(row["rank"] or ""), ""), (trial_label(row["source_trial"], row.get("trained")), "l"),
        (_fmt_int(row["params"]), ""), ("" if row["search_value"] is None else f"{row['search_value']:.2%}", ""),
        (str(row["search_rank"] or ""), ""),
        (f"{row['mean']:.2%} ± {row['std']:.2%}" if row["n"] else "not trained", ""), (str(row["n"]), ""),
        (", ".join(f"{a:.2%}" for a in row["accuracies"]), "l")]) for row in result["rows"]]
    facts = [
        f"<span>study <b>{esc(result['study'])}</b>, re-ranked in <b>{esc(result['rerank_study'])}</b></span>",
        f"<span>data set <b>{esc(result['dataset'])}</b>, {int(result['validation_images']):,} validation "
        f"images</span>",
        f"<span>rerank: {esc(result['seeds'])} seeds of {esc(result['epochs'])} epochs on "
        f"{int(result['train_images']):,} images</span>",
        f"<span>search: {esc(result['search_epochs'])} epochs on {int(result['search_train_images']):,} "
        f"images</span>"]
    return _result_page("rerank", "Rerank", result["study"], _card(F.rerank_bars(result), "rerank")
                        + f"<h2>Architectures, best mean over the seeds first</h2>{_table('rows', head, rows)}", facts)


def write_rerank(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of a rerank result (`tpsearch.planned.rerank(...)`) to `path` atomically."""
    return atomic_write(path, rerank_html(result))
