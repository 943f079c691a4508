"""The page of `tpsearch dashboard`: one study's history, accuracy against each cost with the budgets and the front,
architectures, importances, learning curves, states, the timeline of the run and the ten best trials."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from tpsearch._files import atomic_write
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._page import _card, _fmt_int, _page, _row, _table, esc
from tpsearch.study import (BUDGET_ATTR, STATUSES, completed_values, objectives_of, pareto_rows, trial_label,
                            trials_frame, trials_of)

TOP = 10

# Each cost objective as the frame's column, its axis label and the study attribute holding its budget.
COST_AXES = {"params": (F.PARAMS, "parameters", "max_params"), "macs": (F.MACS, "MACs per image", "max_macs"),
             "latency": (F.LATENCY, "latency (ms per image, batch 1)", "max_latency_ms")}


def _blank(v: Any) -> Any:
    """Missing cells (an attribute older trials lack, another space's dimension) stay empty."""
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def _fmt_list(row: pd.Series, prefix: str) -> str:
    values = [row[c] for c in row.index if c.startswith(prefix) and c[len(prefix):].isdigit() and not pd.isna(row[c])]
    return " ".join(str(int(v)) for v in values)


def _top_table(frame: pd.DataFrame, n: int = TOP) -> str:
    done = frame[(frame["status"] == "complete") & frame["value"].notna()].nlargest(n, "value")
    if done.empty:
        return '<p class="note">No completed trial yet.</p>'
    head = ("<tr><th>rank</th><th>trial</th><th>trained</th><th>accuracy</th><th>parameters</th><th>MACs</th>"
            "<th>layers</th><th class=l>blocks</th><th>channels</th><th class=l>kernels</th>"
            "<th class=l>skip kernels</th><th>pool</th><th class=l>optimizer</th><th>lr</th>"
            "<th class=l>worker</th></tr>")
    rows = []
    for rank, (_, r) in enumerate(done.iterrows(), start=1):
        lr = next((r[c] for c in ("params_lr_sgd", "params_lr_adamw", "params_lr") if c in r and not pd.isna(r[c])),
                  None)
        cells = [
            str(rank), str(int(r["number"])), _fmt_int(r.get("trained")), f"{r['value']:.2%}",
            _fmt_int(r.get(F.PARAMS)), _fmt_int(r.get(F.MACS)), _fmt_int(r.get("arch_layers")),
            _fmt_list(r, "arch_blocks_"), _fmt_int(r.get("arch_channels")), _fmt_list(r, "arch_kernels_"),
            _fmt_list(r, "arch_skip_kernels_"),
            _fmt_int(r.get("arch_pool")), r.get("params_optimizer", ""), f"{lr:.2g}" if lr is not None else "",
            r.get("user_attrs_worker", "")]
        rows.append(_row(map(_blank, cells), left={7, 9, 10, 12, 14}))
    return _table("top-trials", head, rows)


def _summary(study: optuna.Study, frame: pd.DataFrame) -> str:
    counts = frame["status"].value_counts() if len(frame) else pd.Series(dtype=int)
    parts = [f"<span>{len(frame):,} trials</span>"]
    parts += [f"<span>{esc(s)}: {int(counts[s]):,}</span>" for s in STATUSES if counts.get(s, 0)]
    done = completed_values(frame) if len(frame) else pd.Series(dtype=float)
    best = done.max() if len(frame) else np.nan
    if not pd.isna(best):
        row = frame.loc[done.idxmax()]
        index = None if pd.isna(row["trained"]) else int(row["trained"])
        parts.append(f"<span>best accuracy: <b>{best:.2%}</b> ({trial_label(int(row['number']), index)})</span>")
    # The settings of the search; bookkeeping (kept checkpoint paths, the driver's lease) is structured, not shown.
    attrs = "".join(f"<span>{esc(k)}: <b>{esc(v)}</b></span>" for k, v in sorted(study.user_attrs.items())
                    if isinstance(v, (str, int, float, bool)))
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (f'<h1 id="title">Study {esc(study.study_name)}</h1><div class="meta">{attrs}</div>'
            f'<div class="meta">{"".join(parts)}<span>written {stamp}</span></div>')


def _pareto_table(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """The study's front over all its objectives, most accurate first."""
    if not rows:
        return '<p class="note">No completed trial yet: no Pareto front.</p>'
    costs = list(names[1:])
    head = ("<tr><th>trial</th><th>trained</th><th>accuracy</th>"
            + "".join(f"<th>{esc(COST_AXES[c][1])}</th>" for c in costs) + "</tr>")
    body = []
    for r in rows:
        cells = [str(r["trial"]), _fmt_int(r["trained"]), f"{r['accuracy']:.2%}"]
        cells += [f"{r[c]:.3g}" if c == "latency" else _fmt_int(r[c]) for c in costs]
        body.append(_row(cells))
    return _table("pareto", head, body)


def _budget(study: optuna.Study, given: float | None, key: str = "max_params") -> float | None:
    """The budget given, else the study's attribute `key` (the last run's); None where there is none."""
    if given is not None:
        return given
    value = study.user_attrs.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _training_budget(study: optuna.Study) -> dict[str, Any] | None:
    """The unit and rungs the driver recorded (`training_budget`), or None for a study without them."""
    value = study.user_attrs.get(BUDGET_ATTR)
    return value if isinstance(value, dict) else None


def dashboard_html(study: optuna.Study, *, max_params: float | None = None, max_macs: float | None = None,
                   trials: Sequence[FrozenTrial] | None = None) -> str:
    """The dashboard page of one study as a string; `trials` saves re-reading them when the caller has them.

    A multi-objective study (`tpsearch run --objectives`) gets its Pareto front as a table and marked on accuracy
    against each of its costs (a latency card too where latency is one)."""
    names = objectives_of(study)
    trials = list(trials_of(study) if trials is None else trials)
    frame = trials_frame(trials)
    given = {"params": max_params, "macs": max_macs, "latency": None}
    rows = pareto_rows(trials, names) if len(names) > 1 else None
    front = None if rows is None else [r["trial"] for r in rows]
    costs = ["params", "macs"] + [c for c in names[1:] if c not in ("params", "macs")]
    fronts = []
    for cost in costs:
        column, label, attr = COST_AXES[cost]
        mine = front if cost in names else None  # a cost the study does not optimise: the 2-D front of the two
        fronts.append(_card(F.accuracy_vs(frame, column, label=label, budget=_budget(study, given[cost], attr),
                                          front=mine, joined=mine is None or len(names) == 2), cost))
    cards = [
        _card(F.history(frame), "history"),
        *fronts,
        _card(F.importances(study, trials), "importances"),
        _card(F.learning_curves(frame, budget=_training_budget(study)), "curves"),
        _card(F.states(frame), "states"),
    ]
    pareto = ("" if rows is None else
              f"<h2>Pareto front: {esc(', '.join(names))}</h2>{_pareto_table(names, rows)}")
    body = (_summary(study, frame) + pareto
            + f'<div class="grid">{"".join(cards)}</div>'
            + f"<h2>Architectures</h2>{_card(F.parallel_architecture(frame), 'parallel')}"
            + f"<h2>Run</h2>{_card(F.timeline(frame), 'timeline')}"
            + f"<h2>Ten best trials</h2>{_top_table(frame)}")
    return _page(f"tpsearch: {study.study_name}", body)


def write_dashboard(study: optuna.Study, path: str | os.PathLike, *, max_params: float | None = None,
                    max_macs: float | None = None, trials: Sequence[FrozenTrial] | None = None) -> Path:
    """Write the dashboard of `study` to `path` atomically (safe to call again and again during a run).

    `max_params` and `max_macs` draw the budget lines; by default they are the study's user attributes of those
    names (a study searched without a MACs budget has no MACs line).
    """
    return atomic_write(path, dashboard_html(study, max_params=max_params, max_macs=max_macs, trials=trials))
