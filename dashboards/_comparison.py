"""The page of `tpsearch compare`: studies side by side, their best so far against what each spent (grouped over
seeds by `_compare`'s statistics), a table of them, and accuracy against each cost."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import optuna
import pandas as pd

from tpsearch._files import atomic_write
from tpsearch.dashboards import _compare as C
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._dashboard import COST_AXES, _budget
from tpsearch.dashboards._page import _card, _page, _row, _table, esc
from tpsearch.exceptions import UsageError
from tpsearch.study import best_so_far, completed_values, numeric, objectives_of, pareto_rows, trials_frame, trials_of


def comparison_html(studies: Iterable[optuna.Study], *, group_by: str | None = None, x: str = "trained",
                    at: int | None = None) -> str:
    """Several studies on one page: the best so far against what each spent (`x`: trained trials, training seconds
    or Optuna's trial numbers), grouped by the study attribute `group_by` (mean and spread over the group's seeds)
    if given; a table of the best after `at` trained trials (default: as many as the study with fewest trained);
    then accuracy against parameters of each study. Multi-objective studies (all of the same objectives) add their
    hypervolume so far, drawn the same way, and their Pareto fronts overlaid on accuracy against each cost."""
    studies = list(studies)
    names_of = {s.study_name: objectives_of(s) for s in studies}
    if len({tuple(v) for v in names_of.values()}) > 1:
        raise UsageError("compare needs studies of the same objectives, but got "
                         + "; ".join(f"{n}: {','.join(v)}" for n, v in names_of.items()))
    objectives = next(iter(names_of.values()), ["accuracy"])
    read = {s.study_name: list(trials_of(s)) for s in studies}
    frames = {n: trials_frame(ts) for n, ts in read.items()}
    trained = {n: int(f["trained"].max()) if len(f) and f["trained"].notna().any() else 0 for n, f in frames.items()}
    at = at or min(trained.values())
    curves = {n: best_so_far(f, "trained") for n, f in frames.items()}
    groups: dict[str, list[str]] = {}
    if group_by:
        for s in studies:
            groups.setdefault(str(s.user_attrs.get(group_by, "-")), []).append(s.study_name)
        rows = []
        for group, names in groups.items():
            at_n = C.best_at({n: curves[n] for n in names}, at)
            final = [float(completed_values(frames[n]).max()) for n in names]
            span = f"{min(trained[n] for n in names):,}..{max(trained[n] for n in names):,}"
            rows.append(_row([group, str(len(names)), span, _mean_spread(at_n), _mean_spread(final)], left={0}))
        table = _table("groups", f"<tr><th class=l>{esc(group_by)}</th><th>studies</th><th>trained trials</th>"
                                 f"<th>best after {at:,} trained (mean ± sd)</th><th>best (mean ± sd)</th></tr>",
                       rows)
    else:
        rows = []
        for s in studies:
            f = frames[s.study_name]
            best = completed_values(f).max() if len(f) else np.nan
            at_n = C.best_at({s.study_name: curves[s.study_name]}, at)[0]
            cells = [s.study_name, s.user_attrs.get("space", ""), s.user_attrs.get("sampler", ""),
                     s.user_attrs.get("seed", ""), f"{len(f):,}", f"{trained[s.study_name]:,}",
                     "" if np.isnan(at_n) else f"{at_n:.2%}", f"{best:.2%}" if not pd.isna(best) else ""]
            rows.append(_row(cells, left=range(3)))
        table = _table("studies", "<tr><th class=l>study</th><th class=l>space</th><th class=l>sampler</th>"
                                  f"<th>seed</th><th>trials</th><th>trained</th><th>best after {at:,} trained</th>"
                                  "<th>best accuracy</th></tr>", rows)
    cards = [_card(F.best_so_far(frames, x=x, groups=groups), "best")]
    if len(objectives) > 1:
        costs = objectives[1:]
        scales = [_scale(studies, frames, c) for c in costs]
        cards.append(_card(F.hypervolume_so_far(frames, [COST_AXES[c][0] for c in costs], scales, x=x,
                                                groups=groups, labels=[COST_AXES[c][1] for c in costs]),
                           "hypervolume"))
        front = {n: [r["trial"] for r in pareto_rows(ts, objectives)] for n, ts in read.items()}
        for c in costs:
            cards.append(_card(F.fronts(frames, front, COST_AXES[c][0], COST_AXES[c][1]), f"fronts-{c}"))
    for i, s in enumerate(studies):
        fig = F.accuracy_vs(frames[s.study_name], F.PARAMS, label="parameters", budget=_budget(s, None),
                            title=f"{F.esc(s.study_name)}: accuracy vs parameters")
        cards.append(_card(fig, f"params-{i}"))
    names = ", ".join(s.study_name for s in studies)
    body = f"<h1>Comparison: {esc(names)}</h1>{table}<div class=\"grid\">{''.join(cards)}</div>"
    return _page(f"tpsearch: {names}", body)


def _scale(studies: Sequence[optuna.Study], frames: dict[str, pd.DataFrame], cost: str) -> float:
    """What a cost is divided by for the hypervolume: the largest budget of the studies where each has one, else
    the largest cost any of their completed trials had."""
    column, _, attr = COST_AXES[cost]
    budgets = [_budget(s, None, attr) for s in studies]
    if all(b is not None for b in budgets):
        return float(max(budgets))  # type: ignore[type-var]
    seen = [float(numeric(f[f["status"] == "complete"], column).max()) for f in frames.values() if len(f)]
    seen = [v for v in seen if not np.isnan(v)]
    return max(seen) if seen else 1.0


def _mean_spread(values: Sequence[float]) -> str:
    """"98.1% ± 0.4 (n 2)": the mean and the standard deviation (n - 1) over the studies that have a value, n
    said where some have none."""
    seen = np.array([v for v in values if not np.isnan(v)])
    if not len(seen):
        return ""
    return (f"{seen.mean():.2%} ± {100 * float(C.spread(seen)):.2f}"
            + (f" (n {len(seen)})" if len(seen) < len(values) else ""))


def write_comparison(studies: Iterable[optuna.Study], path: str | os.PathLike, **options: Any) -> Path:
    """Write the comparison page of `studies` (options: `comparison_html`'s) to `path` atomically."""
    return atomic_write(path, comparison_html(studies, **options))
