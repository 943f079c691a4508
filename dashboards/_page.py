"""Self-contained HTML pages: plotly.js inlined once, every figure after it, so a page opens with no network.

Everything taken from a study and written into the HTML here goes through `esc`; figure data is serialised by
Plotly, whose JSON escapes `<`, so neither can close a tag or open a script.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from optuna.trial import FrozenTrial

from tpsearch._files import atomic_write
from tpsearch.dashboards import _compare as C
from tpsearch.dashboards import _figures as F
from tpsearch.exceptions import UsageError
from tpsearch.study import (BUDGET_ATTR, STATUSES, best_so_far, completed_values, numeric, objectives_of,
                            pareto_rows, trial_label, trials_frame, trials_of)

TOP = 10


def esc(text: Any) -> str:
    """Text for the page's own HTML (titles, tables, notes)."""
    return html.escape(str(text), quote=True)

_CONFIG = {"displaylogo": False, "responsive": True}
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1500px; padding: 16px 24px; color: #222; }
h1 { font-size: 22px; margin: 4px 0 8px; overflow-wrap: anywhere; } h2 { font-size: 17px; margin: 24px 0 8px; }
.meta { color: #555; display: flex; flex-wrap: wrap; } .meta span { margin-right: 18px; white-space: nowrap; }
.meta span.w { white-space: normal; overflow-wrap: anywhere; min-width: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); gap: 12px; }
.card { border: 1px solid #e3e3e3; border-radius: 6px; padding: 4px; min-width: 0; }
.note { color: #555; padding: 24px; font-style: italic; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f6f6f6; } td.l, th.l { text-align: left; } td.w { white-space: normal; min-width: 360px; }
"""

# Each plot takes its width when its own script runs, before the cards after it exist; once the whole page is laid
# out, every plot is fitted to its card again.
_FIT = ("window.addEventListener('load', function () { document.querySelectorAll('.js-plotly-plot')"
        ".forEach(function (gd) { Plotly.Plots.resize(gd); }); });")


def _figure_html(fig: go.Figure, key: str) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, config=_CONFIG, div_id=f"fig-{key}",
                       default_height=f"{fig.layout.height or 430}px")


def _card(body: go.Figure | str, key: str) -> str:
    if isinstance(body, str):
        return f'<div class="card" id="note-{key}"><p class="note">{esc(body)}</p></div>'
    return f'<div class="card">{_figure_html(body, key)}</div>'


def _page(title: str, body: str) -> str:
    from plotly.offline import get_plotlyjs

    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style>\n"
            f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head><body>\n{body}\n'
            f"<script>{_FIT}</script></body></html>\n")


def _blank(v: Any) -> Any:
    """Missing cells (an attribute older trials lack, another space's dimension) stay empty."""
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def _fmt_int(v: Any) -> str:
    return f"{int(v):,}" if v is not None and not pd.isna(v) else ""


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
        left = {7, 9, 10, 12, 14}
        rows.append("<tr>" + "".join(f"<td{' class=l' if i in left else ''}>{esc(_blank(c))}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    return f'<table id="top-trials">{head}{"".join(rows)}</table>'


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


# Each cost objective as the frame's column, its axis label and the study attribute holding its budget.
COST_AXES = {"params": (F.PARAMS, "parameters", "max_params"), "macs": (F.MACS, "MACs per image", "max_macs"),
             "latency": (F.LATENCY, "latency (ms per image, batch 1)", "max_latency_ms")}


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
        body.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    return f'<table id="pareto">{head}{"".join(body)}</table>'


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
            cells = [group, str(len(names)), span, _mean_spread(at_n), _mean_spread(final)]
            rows.append("<tr>" + "".join(f"<td{' class=l' if i == 0 else ''}>{esc(c)}</td>"
                                         for i, c in enumerate(cells)) + "</tr>")
        table = (f'<table id="groups"><tr><th class=l>{esc(group_by)}</th><th>studies</th><th>trained trials</th>'
                 f'<th>best after {at:,} trained (mean ± sd)</th><th>best (mean ± sd)</th></tr>{"".join(rows)}'
                 f"</table>")
    else:
        rows = []
        for s in studies:
            f = frames[s.study_name]
            best = completed_values(f).max() if len(f) else np.nan
            at_n = C.best_at({s.study_name: curves[s.study_name]}, at)[0]
            cells = [s.study_name, s.user_attrs.get("space", ""), s.user_attrs.get("sampler", ""),
                     s.user_attrs.get("seed", ""), f"{len(f):,}", f"{trained[s.study_name]:,}",
                     "" if np.isnan(at_n) else f"{at_n:.2%}", f"{best:.2%}" if not pd.isna(best) else ""]
            rows.append("<tr>" + "".join(f"<td{' class=l' if i < 3 else ''}>{esc(c)}</td>"
                                         for i, c in enumerate(cells)) + "</tr>")
        table = ('<table id="studies"><tr><th class=l>study</th><th class=l>space</th><th class=l>sampler</th>'
                 f'<th>seed</th><th>trials</th><th>trained</th><th>best after {at:,} trained</th>'
                 f'<th>best accuracy</th></tr>{"".join(rows)}</table>')
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


def evaluation_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch evaluate` result: its figures, the confusion matrix first."""
    classes = result["classes"]
    per_class = result["per_class_accuracy"]
    recorded = result.get("recorded") or {}
    parts = [f"<span>data set: <b>{esc(result['dataset'])}</b> ({esc(result['split'])}, "
             f"{int(result['images']):,} images)</span>",
             f"<span>test accuracy: <b>{result['test_accuracy']:.2%}</b></span>"]
    if result.get("top5_accuracy") is not None:
        parts.append(f"<span>top-5: <b>{result['top5_accuracy']:.2%}</b></span>")
    if recorded.get("val_accuracy") is not None:
        parts.append(f"<span>validation accuracy at export: {recorded['val_accuracy']:.2%}</span>")
    if recorded.get("params") is not None:
        parts.append(f"<span>parameters: {int(recorded['params']):,}</span>")
    origin = (f"study {result['study']}, trial {result['trial']}" if result.get("study") is not None
              else str(result["checkpoint"]))
    body = (_header(f"Evaluation of {result['checkpoint']}",
                    f'<span class="w">{esc(origin)}</span><span>space {esc(result["space"])}</span>'
                    f'<span class="w">arch {esc(result["arch"])}</span>', "".join(parts))
            + f'<div class="grid">{_card(F.confusion_matrix(result["confusion_matrix"], classes), "confusion")}'
            f'{_card(F.per_class_accuracy(classes, [per_class[c] for c in classes]), "per-class")}</div>')
    return _page(f"tpsearch evaluate: {result['checkpoint']}", body)


def _header(title: str, *metas: str) -> str:
    """A result page's title and its lines of facts (markup, already escaped), the last one dated."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    lines = [*metas[:-1], f"{metas[-1]}<span>written {stamp}</span>"]
    return f'<h1 id="title">{esc(title)}</h1>' + "".join(f'<div class="meta">{line}</div>' for line in lines)


def write_evaluation(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of an evaluation result (see `search.evaluate_checkpoint`) to `path` atomically."""
    return atomic_write(path, evaluation_html(result))


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
        cells = [(str(row["index"]), ""), (row["source"], "l"), (f"{row['params']:,}", ""),
                 *((f"{a:.2%}", "") for a in row.get("low_rungs", [])),
                 (f"{row['low_accuracy']:.2%}", ""), (f"{low_rank[i]:g}", ""), (f"{row['high_accuracy']:.2%}", ""),
                 (f"{high_rank[i]:g}", ""), *([(f"{row['ceiling_accuracy']:.2%}", "")] if ceiling else []),
                 (json.dumps(row["arch"]), "l w"),
                 (f"{hp.get('optimizer', '')} lr {hp.get('lr', 0):.2g} wd {hp.get('weight_decay', 0):.1g} "
                  f"batch {hp.get('batch_size', '')} ls {hp.get('label_smoothing', 0):.2f}", "l")]
        body_rows.append("<tr>" + "".join(f"<td class='{cls}'>{esc(c)}</td>" for c, cls in cells) + "</tr>")
    low, high = result["low"], result["high"]
    meta = " ".join([  # spaces between the spans: the line may wrap there
        f"<span>space <b>{esc(result['space'])}</b></span>", f"<span>data set <b>{esc(result['dataset'])}</b></span>",
        f"<span>device {esc(result['device'])}</span>",
        f"<span>low: {esc(low['epochs'])} epochs, {int(low['images']):,} images, {result['low_s']:.1f} s</span>",
        f"<span>high: {esc(high['epochs'])} epochs, {int(high['images']):,} images, {result['high_s']:.1f} s</span>"])
    body = (_header(f"Fidelity calibration: {result['space']} on {result['dataset']}", meta + " ")
            + (_card(F.calibration_rungs(result), "calibration-rungs") if "rungs" in result else "")
            + f'{_card(F.calibration_scatter(result), "calibration")}'
            f'<h2>Configurations, best at the high fidelity first</h2><table id="configurations">{head}'
            f'{"".join(body_rows)}</table>')
    return _page(f"tpsearch calibrate: {result['space']} on {result['dataset']}", body)


def write_calibration(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of a calibration result (`tpsearch.planned.calibrate(...).to_dict()`) to `path` atomically."""
    return atomic_write(path, calibration_html(result))


def ablation_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch ablate` result: the bars, then the table the command prints."""
    head = ("<tr><th>row</th><th class=l>tricks</th><th>seeds</th><th>accuracy (mean ± std)</th><th>error</th>"
            "<th class=l>accuracies by seed</th></tr>")
    body_rows = []
    for row in result["rows"]:
        if row["seeds"]:
            cells = [str(row["row"]), row["label"], str(row["seeds"]),
                     f"{row['accuracy_mean']:.2%} ± {row['accuracy_std']:.2%}", f"{row['error_mean']:.2%}",
                     ", ".join(f"{a:.2%}" for a in row["accuracies"])]
        else:
            cells = [str(row["row"]), row["label"], "0", "not trained", "", ""]
        body_rows.append("<tr>" + "".join(f"<td class='{'l' if i in (1, 5) else ''}'>{esc(c)}</td>"
                                          for i, c in enumerate(cells)) + "</tr>")
    meta = " ".join([
        f"<span>study <b>{esc(result['study'])}</b></span>",
        f"<span>space {esc(result['space'])}, preset <b>{esc(result['preset'])}</b> "
        f"({int(result['params']):,} parameters)</span>",
        f"<span>data set <b>{esc(result['dataset'])}</b>, {int(result['train_images']):,} training images</span>",
        f"<span>{esc(result['epochs'])} epochs, batch {esc(result['batch_size'])}</span>"])
    body = (_header(f"Ablation: {result['preset']} on {result['dataset']}", meta + " ")
            + f'{_card(F.ablation_bars(result), "ablation")}'
            f'<h2>Rows, each adding one trick to the row above</h2><table id="rows">{head}{"".join(body_rows)}'
            f"</table>")
    return _page(f"tpsearch ablate: {result['preset']} on {result['dataset']}", body)


def write_ablation(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of an ablation result (`tpsearch.planned.ablate(...)`) to `path` atomically."""
    return atomic_write(path, ablation_html(result))


def rerank_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch rerank` result: the bars beside the search's scores, then the table the command
    prints."""
    head = ("<tr><th>rank</th><th class=l>architecture</th><th>parameters</th><th>search</th><th>search rank</th>"
            "<th>rerank (mean ± std)</th><th>seeds</th><th class=l>accuracies by seed</th></tr>")
    body_rows = []
    for row in result["rows"]:
        cells = [str(row["rank"] or ""), trial_label(row["source_trial"], row.get("trained")), _fmt_int(row["params"]),
                 "" if row["search_value"] is None else f"{row['search_value']:.2%}", str(row["search_rank"] or ""),
                 f"{row['mean']:.2%} ± {row['std']:.2%}" if row["n"] else "not trained", str(row["n"]),
                 ", ".join(f"{a:.2%}" for a in row["accuracies"])]
        body_rows.append("<tr>" + "".join(f"<td class='{'l' if i in (1, 7) else ''}'>{esc(c)}</td>"
                                          for i, c in enumerate(cells)) + "</tr>")
    meta = " ".join([
        f"<span>study <b>{esc(result['study'])}</b>, re-ranked in <b>{esc(result['rerank_study'])}</b></span>",
        f"<span>data set <b>{esc(result['dataset'])}</b>, {int(result['validation_images']):,} validation "
        f"images</span>",
        f"<span>rerank: {esc(result['seeds'])} seeds of {esc(result['epochs'])} epochs on "
        f"{int(result['train_images']):,} images</span>",
        f"<span>search: {esc(result['search_epochs'])} epochs on {int(result['search_train_images']):,} "
        f"images</span>"])
    body = (_header(f"Rerank: {result['study']}", meta + " ")
            + f'{_card(F.rerank_bars(result), "rerank")}'
            f'<h2>Architectures, best mean over the seeds first</h2><table id="rows">{head}{"".join(body_rows)}'
            f"</table>")
    return _page(f"tpsearch rerank: {result['study']}", body)


def write_rerank(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of a rerank result (`tpsearch.planned.rerank(...)`) to `path` atomically."""
    return atomic_write(path, rerank_html(result))
