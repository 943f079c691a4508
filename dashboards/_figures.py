"""One function per figure of the dashboards; each takes the trials frame (see `_frame`) and returns a Plotly figure.

Strings that come from the study (names, workers, reasons, parameter names) go through `esc` before they reach a
figure: Plotly renders titles, ticks and hover labels as a subset of HTML, so markup in a study name would
otherwise be interpreted. Escaped entities are shown as the characters they stand for.
"""
from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from tpsearch.dashboards import _compare
from tpsearch.study import STATUSES, X_AXES, Outcome, accuracy_of, numeric, outcome_of, pareto_mask
from tpsearch.study import best_so_far as study_best_so_far

GROUP_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
COLORS = {"complete": "#1f77b4", "pruned": "#a0a0a0", "diverged": "#9467bd", "infeasible": "#ff7f0e",
          "failed": "#d62728", "running": "#2ca02c", "waiting": "#bcbd22"}
PARAMS, MACS, LATENCY = "user_attrs_params", "user_attrs_macs", "user_attrs_latency_ms"
# SVG draws one element per marker: past a few thousand points WebGL (scattergl) keeps the page responsive.
GL_ABOVE = 3000
# fANOVA fits a random forest from the parameters to the accuracy and splits the variance it explains among them. With
# fewer than a couple of completed trials per parameter most parameters get one split or none, on noise, and the
# ranking swings from one trial to the next (resnet_5m ranks about ten: its architecture and training dimensions);
# below max(this, 2 x the parameters ranked) the panel says so.
FEW_FOR_IMPORTANCES = 20
MAX_CURVES = (200, 100)  # learning curves drawn: the best completed trials, and pruned trials spread over the run
# Plotly draws its modebar (the toolbar) over the top right of a figure, about 30 px high, on hover. Titles and the
# legend sit below that row, so a long title (a study's name) or a wide legend never runs under the toolbar: the title
# hangs from the top of the figure with the modebar's height as padding, and the top margin holds both rows.
MODEBAR_PX = 34
_LAYOUT = dict(template="plotly_white", height=430, margin=dict(l=60, r=20, t=90, b=50),
               legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))


def titled(text: str) -> dict[str, Any]:
    """A figure's title below the modebar's row (see MODEBAR_PX)."""
    return dict(text=text, yref="container", y=1.0, yanchor="top", pad=dict(t=MODEBAR_PX))


def esc(text: Any) -> str:
    """Text for a Plotly string: plotly.js decodes &amp; &lt; &gt; back to characters, but not &quot;."""
    return html.escape(str(text), quote=False)


def _scatter(n: int) -> type:
    return go.Scattergl if n > GL_ABOVE else go.Scatter


def _figure(title: str, x: str, y: str, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=titled(title), xaxis_title=x, yaxis_title=y, **{**_LAYOUT, **layout})
    return fig


def _percent_axis(fig: go.Figure) -> None:
    fig.update_yaxes(tickformat=".0%")


def history(frame: pd.DataFrame) -> go.Figure:
    """Every feasible trial's validation accuracy by trial number, and the best so far."""
    fig = _figure("Optimization history", "trial", "validation accuracy")
    for status, name in (("pruned", "pruned (accuracy when stopped)"), ("diverged", "diverged (its last score)"),
                         ("failed", "failed"), ("complete", "completed")):
        part = frame[(frame["status"] == status) & frame["accuracy"].notna()]
        if part.empty:
            continue
        trace = _scatter(len(part))
        fig.add_trace(trace(
            x=part["number"].to_numpy(), y=part["accuracy"].to_numpy(), mode="markers", name=name,
            marker=dict(color=COLORS[status], size=5 if status == "complete" else 4,
                        opacity=0.9 if status == "complete" else 0.45),
            hovertemplate="trial %{x}<br>accuracy %{y:.2%}<extra>" + name + "</extra>"))
    best = frame[frame["best_value"].notna()]
    if not best.empty:
        fig.add_trace(go.Scatter(x=best["number"].to_numpy(), y=best["best_value"].to_numpy(), mode="lines",
                                 name="best so far", line=dict(color="#111", width=2, shape="hv"),
                                 hovertemplate="trial %{x}<br>best %{y:.2%}<extra></extra>"))
    _percent_axis(fig)
    return fig


def accuracy_vs(frame: pd.DataFrame, column: str = PARAMS, *, label: str = "parameters",
                budget: float | None = None, title: str | None = None, front: Sequence[int] | None = None,
                joined: bool = True) -> go.Figure:
    """Validation accuracy of completed trials against a cost (parameters, MACs, latency), with the Pareto front:
    of accuracy and this cost, or `front` (trial numbers) where the study has its own over several objectives,
    joined as a staircase when `joined` (a front of accuracy and this cost alone)."""
    fig = _figure(title or f"Validation accuracy vs {label}", label, "validation accuracy")
    cost, acc = numeric(frame, column), frame["value"]
    done = frame[(frame["status"] == "complete") & cost.notna() & acc.notna()]
    stopped = frame[(frame["status"] == "pruned") & cost.notna() & frame["accuracy"].notna()]
    fmt = ",.0f" if column != LATENCY else ".3g"  # counts in full; milliseconds to three figures
    tip = "trial %{customdata}<br>" + label + " %{x:" + fmt + "}<br>accuracy %{y:.2%}<extra>%{fullData.name}</extra>"
    if not stopped.empty:
        fig.add_trace(_scatter(len(stopped))(
            x=numeric(stopped, column).to_numpy(), y=stopped["accuracy"].to_numpy(), mode="markers",
            name="pruned (when stopped)", customdata=stopped["number"].to_numpy(), hovertemplate=tip,
            marker=dict(color=COLORS["pruned"], size=4, opacity=0.35)))
    if not done.empty:
        x, y = numeric(done, column).to_numpy(), done["value"].to_numpy()
        fig.add_trace(_scatter(len(done))(
            x=x, y=y, mode="markers", name="completed", customdata=done["number"].to_numpy(), hovertemplate=tip,
            marker=dict(color=COLORS["complete"], size=5, opacity=0.8)))
        on = pareto_mask(x, y) if front is None else done["number"].isin(list(front)).to_numpy()
        order = np.argsort(x[on], kind="stable")
        fig.add_trace(go.Scatter(
            x=x[on][order], y=y[on][order], mode="lines+markers" if joined else "markers", name="Pareto front",
            customdata=done["number"].to_numpy()[on][order], hovertemplate=tip,
            line=dict(color="#111", width=2, shape="hv"), marker=dict(color="#111", size=7, symbol="diamond")))
    if budget:
        fig.add_vline(x=budget, line=dict(color=COLORS["infeasible"], dash="dash", width=2),
                      annotation_text=f"budget {budget / 1e6:g}M" if budget >= 1e4 else f"budget {budget:g}",
                      annotation_position="top left")
    fig.update_xaxes(type="log")
    _percent_axis(fig)
    return fig


_ARCH_AXES = (("arch_layers", "layers"), ("arch_blocks_total", "blocks (total)"), ("arch_channels", "channels C_1"),
              ("kernel_mean", "kernel (mean)"), ("skip_mean", "skip kernel (mean)"), ("arch_pool", "pool"),
              (PARAMS, "parameters (M)"), ("value", "accuracy"))


def parallel_architecture(frame: pd.DataFrame) -> go.Figure:
    """Architecture dimensions of the completed trials, one line each, coloured by validation accuracy."""
    done = frame[(frame["status"] == "complete") & frame["value"].notna()].copy()
    # Layers differ in number from trial to trial: per-layer kernels are summarised so every line has every axis.
    for name, prefix in (("kernel_mean", "arch_kernels_"), ("skip_mean", "arch_skip_kernels_")):
        cols = [c for c in done.columns if c.startswith(prefix)]
        done[name] = done[cols].apply(pd.to_numeric, errors="coerce").mean(axis=1) if cols else np.nan
    dims = []
    for col, label in _ARCH_AXES:
        values = numeric(done, col)
        if col == PARAMS:
            values = values / 1e6
        if len(done) and values.notna().all():
            dim: dict[str, Any] = dict(label=label, values=values.to_numpy())
            if col == "value":
                dim["tickformat"] = ".0%"
            dims.append(dim)
    fig = _figure("Architectures of completed trials", "", "", height=460, margin=dict(l=70, r=70, t=120, b=40))
    if dims:
        acc = done["value"].to_numpy()
        fig.add_trace(go.Parcoords(dimensions=dims, line=dict(
            color=acc, colorscale="Viridis", showscale=True, cmin=float(acc.min()), cmax=float(acc.max()),
            colorbar=dict(title=dict(text="accuracy"), tickformat=".0%"))))
    return fig


def importances(study: optuna.Study, trials: list[FrozenTrial]) -> go.Figure | str:
    """fANOVA importances of the hyperparameters for validation accuracy, or a note saying why there are none."""
    done = sum(outcome_of(t) is Outcome.COMPLETE for t in trials)
    if done < 2:
        return f"Importances need at least two completed trials; this study has {done}."
    # Shallow trees: fANOVA's cost grows with the leaves of each tree, and depth 8 keeps a 10,000-trial study
    # to about a second with the same ranking as deep trees. The evaluator reads the completed trials again;
    # Optuna's storage cache answers that from memory.
    evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=32, max_depth=8, seed=0)
    try:
        multi = {} if len(study.directions) == 1 else dict(target=accuracy_of)
        scores = optuna.importance.get_param_importances(study, evaluator=evaluator, **multi)
    except (RuntimeError, ValueError) as e:  # a single distinct value, no parameter in common, ...
        return f"Importances are not available for this study: {str(e).splitlines()[0] if str(e) else repr(e)}"
    if not scores:
        return "Importances are not available: the completed trials share no varying parameter."
    names, values = list(scores)[::-1], list(scores.values())[::-1]
    title = f"Hyperparameter importances (fANOVA, {done:,} completed trials)"
    wanted = max(FEW_FOR_IMPORTANCES, 2 * len(names))
    extra = 0
    if done < wanted:
        title += (f"<br><sub>few trials: about {wanted} are needed for a stable ranking; with {done} it can change "
                  f"with every new trial</sub>")
        extra = 20
    fig = _figure(title, "importance", "", height=max(300, 28 * len(names) + 120) + extra,
                  margin={**_LAYOUT["margin"], "t": _LAYOUT["margin"]["t"] + extra})
    fig.add_trace(go.Bar(x=values, y=[esc(n) for n in names], orientation="h", marker_color=COLORS["complete"],
                         hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    return fig


def _curves(rows: pd.DataFrame) -> tuple[list, list, list]:
    """Many curves as one trace: points separated by None, so the browser draws one path instead of hundreds."""
    xs: list = []
    ys: list = []
    ids: list = []
    for number, ivs in zip(rows["number"], rows["intermediate_values"]):
        steps = sorted(ivs)
        xs += steps + [None]
        ys += [ivs[s] for s in steps] + [None]
        ids += [number] * len(steps) + [None]
    return xs, ys, ids


def _images_per_step(budget: Mapping[str, Any] | None) -> int | None:
    """Images seen per intermediate step, from the study's `training_budget` attribute; None without one (a study
    from before it was recorded: its curves stay in epochs)."""
    per_epoch = (budget or {}).get("images_per_epoch")
    if (budget or {}).get("intermediate_step") != "epoch" or not isinstance(per_epoch, int) or per_epoch < 1:
        return None
    return per_epoch


def learning_curves(frame: pd.DataFrame, max_curves: tuple[int, int] = MAX_CURVES, *,
                    budget: Mapping[str, Any] | None = None) -> go.Figure:
    """Validation accuracy after each epoch: the best completed trials solid, pruned trials grey and dashed.

    With the study's `training_budget` (see `tpsearch.search._budget`) the x axis is training images seen, the
    unit ASHA compares trials in, with the end of the warm-up and the rungs marked; else it is the epoch.
    """
    has = frame["intermediate_values"].map(len) > 0
    done = frame[has & (frame["status"] == "complete")].nlargest(max_curves[0], "value")
    pruned = frame[has & (frame["status"] == "pruned")]
    if len(pruned) > max_curves[1]:  # spread over the run: early rungs and late ones
        pruned = pruned.iloc[np.linspace(0, len(pruned) - 1, max_curves[1]).round().astype(int)]
    per_step = _images_per_step(budget)
    unit = "epoch" if per_step is None else "training images seen"
    shown = pd.concat([done, pruned])
    # Without ASHA a trial is scored after its last epoch only: one point each, which a line alone never draws.
    single = not shown.empty and bool((shown["intermediate_values"].map(len) == 1).all())
    why = "; one score per trial: without ASHA's rungs a trial is scored after its last epoch only" if single else ""
    fig = _figure(f"Learning curves ({len(done)} best completed, {len(pruned)} pruned{why})", unit,
                  "validation accuracy")
    for rows, name, line in ((pruned, "pruned", dict(color=COLORS["pruned"], width=1, dash="dot")),
                             (done, "completed", dict(color=COLORS["complete"], width=1.2))):
        if rows.empty:
            continue
        x, y, ids = _curves(rows)
        if per_step is not None:
            x = [None if step is None else step * per_step for step in x]
        fig.add_trace(go.Scatter(x=x, y=y, customdata=ids, mode="lines+markers", name=name, line=line,
                                 marker=dict(color=line["color"], size=4),
                                 opacity=0.8 if name == "completed" else 0.6, connectgaps=False,
                                 hovertemplate="trial %{customdata}<br>" + unit + " %{x:,}<br>%{y:.2%}"
                                               "<extra></extra>"))
    if per_step is not None and budget is not None:
        _mark_budget(fig, budget)
    _percent_axis(fig)
    return fig


def _mark_budget(fig: go.Figure, budget: Mapping[str, Any]) -> None:
    """The end of the warm-up and ASHA's rungs as vertical lines: no trial is compared before the first."""
    warmup = budget.get("warmup")
    if isinstance(warmup, (int, float)) and warmup > 0:
        fig.add_vline(x=warmup, line=dict(color=COLORS["running"], dash="dot", width=1),
                      annotation_text="warm-up ends", annotation_position="bottom right")
    for rung in budget.get("rungs") or []:
        if isinstance(rung, (int, float)):
            fig.add_vline(x=rung, line=dict(color="#555", dash="dash", width=1), annotation_text="rung",
                          annotation_position="top left")


def states(frame: pd.DataFrame) -> go.Figure:
    """How many trials ended each way; infeasible (over the budget, never trained) apart from pruned."""
    counts = frame["status"].value_counts()
    present = [s for s in STATUSES if counts.get(s, 0)]
    reasons = frame.get("user_attrs_reason")
    tips = []
    for s in present:
        tip = f"{s}: {counts[s]}"
        if s in ("failed", "infeasible") and reasons is not None:  # infeasible: over the parameters, or memory
            default = "no reason" if s == "failed" else "over the parameter budget"
            by = reasons[frame["status"] == s].fillna(default).value_counts()
            tip += "<br>" + "<br>".join(f"{esc(r)}: {n}" for r, n in by.items())
        tips.append(tip)
    fig = _figure("Trial states", "", "trials", height=360)
    fig.add_trace(go.Bar(x=present, y=[int(counts[s]) for s in present], text=[int(counts[s]) for s in present],
                         textposition="outside", marker_color=[COLORS[s] for s in present], hovertext=tips,
                         hoverinfo="text", cliponaxis=False))
    return fig


def _lanes(ran: pd.DataFrame) -> pd.Series:
    """Each trial's lane: its worker's name, and where trials of one worker overlapped in time (a node running
    several at once), "worker #k" for the k-th concurrent slot, so that no bar hides another."""
    lane = pd.Series("", index=ran.index, dtype=object)
    for worker, group in ran.groupby(ran["user_attrs_worker"].astype(str), sort=False):
        ends: list[Any] = []  # when each slot of this worker is free again
        slots: dict[Any, int] = {}
        for idx in group.sort_values(["datetime_start", "number"]).index:
            start, end = ran.at[idx, "datetime_start"], ran.at[idx, "end"]
            free = next((k for k, e in enumerate(ends) if e <= start), None)
            if free is None:
                ends.append(end)
                free = len(ends) - 1
            else:
                ends[free] = end
            slots[idx] = free
        for idx, k in slots.items():
            lane[idx] = worker if len(ends) == 1 else f"{worker} #{k + 1}"
    return lane


def timeline(frame: pd.DataFrame) -> go.Figure:
    """When each trial ran and on which worker: one lane per worker (per concurrent slot of a worker that ran
    several trials at once), one bar per trial."""
    worker = frame.get("user_attrs_worker")
    fig = _figure("Timeline of the run", "time", "worker")
    if worker is None:
        return fig
    ran = frame[worker.notna() & frame["datetime_start"].notna()].copy()
    # A trial still running is drawn up to the last moment anything was recorded.
    now = pd.concat([frame["datetime_complete"], frame["datetime_start"]]).max()
    ran["end"] = ran["datetime_complete"].fillna(now)
    ran["lane"] = _lanes(ran)
    lanes = sorted(ran["lane"].unique())
    for status in STATUSES:
        part = ran[ran["status"] == status]
        if part.empty:
            continue
        # Bars as thick line segments, one trace per state separated by None: a single SVG path each.
        x = np.empty(3 * len(part), dtype=object)
        x[0::3], x[1::3], x[2::3] = part["datetime_start"].to_numpy(), part["end"].to_numpy(), None
        y = np.empty(3 * len(part), dtype=object)
        y[0::3] = y[1::3] = part["lane"].map(esc).to_numpy()
        y[2::3] = None
        ids = np.repeat(part["number"].to_numpy().astype(object), 3)
        ids[2::3] = None
        fig.add_trace(go.Scatter(x=x, y=y, customdata=ids, mode="lines", name=status, connectgaps=False,
                                 line=dict(color=COLORS[status], width=max(3, min(14, 240 // max(len(lanes), 1)))),
                                 hovertemplate="trial %{customdata}<br>%{x}<br>%{y}<extra>" + status + "</extra>"))
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[esc(w) for w in lanes])
    fig.update_layout(height=max(300, 26 * len(lanes) + 150))
    return fig


def best_so_far(frames: Mapping[str, pd.DataFrame], *, x: str = "trained",
                groups: Mapping[str, Sequence[str]] | None = None) -> go.Figure:
    """The best validation accuracy so far of several studies against what they spent (`tpsearch.study.X_AXES`): a line
    per study, or per group of studies their mean with a band of one standard deviation."""
    fig = _figure("Best validation accuracy so far", X_AXES[x], "best validation accuracy")
    _progress(fig, {name: study_best_so_far(frame, x) for name, frame in frames.items()}, x, groups,
              "%{x:,.4~r}<br>best %{y:.2%}<extra>%{fullData.name}</extra>")
    _percent_axis(fig)
    return fig


def regret_so_far(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], groups: Mapping[str, Sequence[str]], *,
                  x: str = "trained") -> go.Figure:
    """Simulated searches' regret (the best network's accuracy minus the exported one's) against what they spent,
    drawn as the comparison draws the best so far: per strategy, the mean over its seeds and a band of one
    standard deviation (`_compare.band`)."""
    label = {"trained": "trained trials", "seconds": "worker-seconds (the table's)"}[x]
    fig = _figure(f"Regret of the exported network vs {label}", label, "regret (accuracy points)")
    _progress(fig, curves, x, groups, "%{x:,.4~r}<br>regret %{y:.2%}<extra>%{fullData.name}</extra>")
    fig.update_yaxes(tickformat=".1%", rangemode="tozero")
    return fig


def hypervolume_so_far(frames: Mapping[str, pd.DataFrame], costs: Sequence[str], scales: Sequence[float], *,
                       x: str = "trained", groups: Mapping[str, Sequence[str]] | None = None,
                       labels: Sequence[str] = ()) -> go.Figure:
    """The hypervolume of several multi-objective studies so far (`_compare.hypervolume_so_far`), drawn like the
    best so far: a line per study, or a mean and band per group."""
    scale = ", ".join(f"{esc(label)} / {v:.4g}" for label, v in zip(labels or costs, scales))
    fig = _figure(f"Hypervolume so far (1 - accuracy, {scale})", X_AXES[x], "hypervolume")
    _progress(fig, {n: _compare.hypervolume_so_far(f, costs, scales, x) for n, f in frames.items()}, x, groups,
              "%{x:,.4~r}<br>hypervolume %{y:.4f}<extra>%{fullData.name}</extra>")
    return fig


def fronts(frames: Mapping[str, pd.DataFrame], front: Mapping[str, Sequence[int]], column: str, label: str
           ) -> go.Figure:
    """Several studies' Pareto fronts overlaid on accuracy against one cost, a staircase each."""
    fig = _figure(f"Pareto fronts: validation accuracy vs {label}", label, "validation accuracy")
    for i, (name, frame) in enumerate(frames.items()):
        rows = frame[frame["number"].isin(list(front[name]))]
        x, y = numeric(rows, column).to_numpy(), rows["value"].to_numpy()
        order = np.argsort(x, kind="stable")
        fig.add_trace(go.Scatter(
            x=x[order], y=y[order], mode="lines+markers", name=esc(name),
            customdata=rows["number"].to_numpy()[order], line=dict(width=2, shape="hv",
                                                                   color=GROUP_COLORS[i % len(GROUP_COLORS)]),
            hovertemplate="trial %{customdata}<br>" + esc(label) + " %{x:.4~r}<br>accuracy %{y:.2%}"
                          "<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(type="log")
    _percent_axis(fig)
    return fig


def _progress(fig: go.Figure, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], x: str,
              groups: Mapping[str, Sequence[str]] | None, tip: str) -> None:
    """Curves against spending: a line per study, or per group of studies their mean with a band of one
    standard deviation (`_compare.band`)."""
    if not groups:
        for name, (steps, best) in curves.items():
            fig.add_trace(go.Scatter(x=steps, y=best, mode="lines", name=esc(name), line=dict(width=2, shape="hv"),
                                     hovertemplate=tip))
    for i, (group, names) in enumerate((groups or {}).items()):
        b = _compare.band(group, {n: curves[n] for n in names}, x)
        seen = ~np.isnan(b.mean)
        color = GROUP_COLORS[i % len(GROUP_COLORS)]
        label = f"{esc(group)} (mean of {len(names)})"
        for side, values in (("upper", b.mean + b.std), ("lower", b.mean - b.std)):
            fig.add_trace(go.Scatter(x=b.x[seen], y=values[seen], mode="lines", line=dict(width=0, shape="hv",
                                     color=color), showlegend=False, hoverinfo="skip", legendgroup=label,
                                     name=f"{label} {side}", fill="tonexty" if side == "lower" else None,
                                     fillcolor=_fade(color)))
        fig.add_trace(go.Scatter(x=b.x[seen], y=b.mean[seen], mode="lines", name=label, legendgroup=label,
                                 line=dict(width=2.5, color=color, shape="hv"), hovertemplate=tip))


def _fade(color: str) -> str:
    """A band's fill: the line's colour at a fifth of its opacity."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.2)"


def confusion_matrix(matrix: Any, classes: list[str], *, title: str = "Confusion matrix (test split)") -> go.Figure:
    """Counts [true][predicted] as a heatmap; each cell's hover gives its share of the true class."""
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    names = [esc(c) for c in classes]
    fig = _figure(title, "predicted class", "true class", height=max(430, 60 + 28 * len(classes)))
    fig.add_trace(go.Heatmap(
        z=share, x=names, y=names, customdata=counts, colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title="share of true class", tickformat=".0%"),
        text=counts if len(classes) <= 20 else None, texttemplate="%{text}" if len(classes) <= 20 else None,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} images (%{z:.1%})<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def per_class_accuracy(classes: list[str], accuracy: list[float | None]) -> go.Figure:
    fig = _figure("Accuracy per class (test split)", "class", "accuracy")
    fig.add_trace(go.Bar(x=[esc(c) for c in classes], y=[np.nan if a is None else a for a in accuracy],
                         marker_color=COLORS["complete"], hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.update_xaxes(type="category")
    _percent_axis(fig)
    return fig


def _fidelity_label(fidelity: Mapping[str, Any]) -> str:
    return f"{fidelity['epochs']} epochs, {int(fidelity['images']):,} images"


def calibration_scatter(result: Mapping[str, Any]) -> go.Figure:
    """A `tpsearch calibrate` result: each configuration's validation accuracy at the low fidelity (x) against the
    high one (y), coloured by parameters; the best top-k by the high fidelity are ringed. Points on a rising line
    mean the cheap fidelity ranks as the expensive one does; the correlations are in the title."""
    rows = list(result["architectures"])

    def r(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    title = (f"Spearman {r(result['spearman'])}, Kendall {r(result['kendall'])}, top-{result['top_k']} overlap "
             f"{result['topk_overlap']:.0%} ({len(rows)} configurations)")
    fig = _figure(title, f"validation accuracy, low fidelity ({_fidelity_label(result['low'])})",
                  f"validation accuracy, high fidelity ({_fidelity_label(result['high'])})", height=520,
                  title_font_size=15)
    low = np.array([row["low_accuracy"] for row in rows], dtype=float)
    high = np.array([row["high_accuracy"] for row in rows], dtype=float)
    params = np.array([row["params"] for row in rows], dtype=float)
    # Colour by log parameters, ticked at 1, 2, 3, 5 and 7 of each decade the configurations span.
    ticks = [m * 10 ** e for e in range(int(np.log10(params.min())), int(np.log10(params.max())) + 1)
             for m in (1, 2, 3, 5, 7) if params.min() <= m * 10 ** e <= params.max()] or [float(params.min())]
    best = set(sorted(range(len(rows)), key=lambda i: (-high[i], i))[:int(result["top_k"])])
    text = [esc(f"#{row['index']} {row['source']}: {row['params']:,} parameters<br>"
                + ", ".join(f"{k} {v}" for k, v in row["arch"].items())
                + f"<br>{row['hparams'].get('optimizer', '')} lr {row['hparams'].get('lr', 0):.2g}"
                + f" batch {row['hparams'].get('batch_size', '')}") for row in rows]
    fig.add_trace(go.Scatter(
        x=low, y=high, mode="markers", name="configuration", text=text,
        hovertemplate="%{text}<br>low %{x:.2%}, high %{y:.2%}<extra></extra>",
        marker=dict(size=11, color=np.log10(params), colorscale="Viridis", showscale=True, opacity=0.9,
                    colorbar=dict(title="parameters", tickvals=np.log10(ticks), ticktext=[f"{t:,.0f}" for t in ticks]),
                    line=dict(width=[2.5 if i in best else 0.5 for i in range(len(rows))],
                              color=["#d62728" if i in best else "#333" for i in range(len(rows))]))))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"best {result['top_k']} at high fidelity",
                             marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#d62728"))))
    fig.update_xaxes(tickformat=".0%")
    _percent_axis(fig)
    return fig


def calibration_rungs(result: Mapping[str, Any]) -> go.Figure:
    """A `tpsearch calibrate` result: the agreement with the high fidelity of the search's scores at each of its
    rungs and at its end, by training images seen, Spearman and Kendall each with its 95% interval; the noise
    ceiling (the high fidelity against itself under another seed) as dotted lines: no fidelity can be expected
    to agree with the high one better than the high one agrees with itself."""
    points = [*result.get("rungs", []), {**result, "images": result["low"]["epochs"] * result["low"]["images"]}]
    fig = _figure("Agreement with the high fidelity at the search's rungs and end", "training images seen",
                  "rank correlation", height=420, title_font_size=15)
    names = [f"rung {p['epochs']}" for p in points[:-1]] + ["end"]
    for stat, colour in (("spearman", "#1f77b4"), ("kendall", "#ff7f0e")):
        xs = [p["images"] for p in points if p[stat] is not None]
        ys = [p[stat] for p in points if p[stat] is not None]
        ci = [p.get(f"{stat}_ci") or [p[stat], p[stat]] for p in points if p[stat] is not None]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=stat.capitalize(), line=dict(color=colour),
            text=[n for n, p in zip(names, points) if p[stat] is not None],
            hovertemplate="%{text}: %{y:.2f} after %{x:,} images<extra></extra>",
            error_y=dict(type="data", symmetric=False, array=[hi - y for (lo, hi), y in zip(ci, ys)],
                         arrayminus=[y - lo for (lo, hi), y in zip(ci, ys)])))
        ceiling = result.get("ceiling") or {}
        if ceiling.get(stat) is not None:
            fig.add_hline(y=ceiling[stat], line=dict(color=colour, dash="dot"),
                          annotation_text=f"{stat.capitalize()} ceiling {ceiling[stat]:.2f}")
    fig.update_yaxes(range=[-1, 1.05])
    return fig


def ablation_bars(result: Mapping[str, Any]) -> go.Figure:
    """A `tpsearch ablate` result: each row's mean validation accuracy over its seeds, the error bar one standard
    deviation, every seed's accuracy a dot on its bar; the rows in the chain's order, each adding one trick."""
    rows = [row for row in result["rows"] if row["seeds"]]
    # The figures go under the bars: text on a bar would cross its error bar and dots.
    labels = [f"{esc(row['label'])}<br>{row['accuracy_mean']:.2%} ± {row['accuracy_std']:.2%}" for row in rows]
    fig = _figure(esc(f"{result['preset']} on {result['dataset']}: {result['epochs']} epochs, "
                      f"{result['seeds']} seeds per row"), "tricks, added in turn", "validation accuracy",
                  height=480, showlegend=False)
    fig.add_trace(go.Bar(
        x=labels, y=[row["accuracy_mean"] for row in rows], marker_color=COLORS["complete"], opacity=0.8,
        error_y=dict(type="data", array=[row["accuracy_std"] for row in rows], visible=True, color="#333"),
        hovertemplate="%{x}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[label for label, row in zip(labels, rows) for _ in row["accuracies"]],
        y=[a for row in rows for a in row["accuracies"]], mode="markers", marker=dict(size=7, color="#333"),
        text=[f"seed {t['seed']}, trial {t['number']}" for row in rows for t in row["trials"]],
        hovertemplate="%{text}: %{y:.2%}<extra></extra>"))
    if rows:
        low = min(a for row in rows for a in row["accuracies"])
        high = max(max(row["accuracies"] + [row["accuracy_mean"] + row["accuracy_std"]]) for row in rows)
        # Accuracies of one chain sit within a few points: a zero-based axis would flatten the differences. The top
        # leaves room for the labels and for error bars that pass 100%.
        fig.update_yaxes(range=[max(0.0, low - 0.05), high + 0.015])
    _percent_axis(fig)
    return fig


def rerank_bars(result: Mapping[str, Any]) -> go.Figure:
    """A `tpsearch rerank` result: each architecture's mean validation accuracy over its seeds at the rerank's
    fidelity, the error bar one standard deviation, every seed a dot, in the re-ranked order; beside each bar, a
    diamond at the score the search gave it (its rank in the search in the label), so both orders read at once."""
    rows = [row for row in result["rows"] if row["n"]]
    labels = [f"#{row['rank']}: trial {row['source_trial']}<br>search #{row['search_rank'] or '?'}" for row in rows]
    fig = _figure(esc(f"{result['study']} re-ranked: {result['seeds']} seeds of {result['epochs']} epochs on "
                      f"{result['train_images']:,} images"), "architecture, re-ranked (best mean first)",
                  "validation accuracy", height=480)
    fig.add_trace(go.Bar(
        x=labels, y=[row["mean"] for row in rows], name="rerank: mean ± std over seeds",
        marker_color=COLORS["complete"], opacity=0.8,
        error_y=dict(type="data", array=[row["std"] for row in rows], visible=True, color="#333"),
        hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[label for label, row in zip(labels, rows) for _ in row["accuracies"]],
        y=[a for row in rows for a in row["accuracies"]], mode="markers", name="rerank: one seed",
        marker=dict(size=7, color="#333"),
        text=[f"seed {t['seed']}, trial {t['number']}" for row in rows for t in row["trials"]],
        hovertemplate="%{text}: %{y:.2%}<extra></extra>"))
    searched = [(label, row) for label, row in zip(labels, rows) if row["search_value"] is not None]
    fig.add_trace(go.Scatter(
        x=[label for label, _ in searched], y=[row["search_value"] for _, row in searched], mode="markers",
        name=f"search: one score ({result['search_epochs']} epochs on {result['search_train_images']:,} images)",
        marker=dict(size=11, symbol="diamond", color=COLORS["infeasible"]),
        hovertemplate="search's score %{y:.2%}<extra></extra>"))
    values = [a for row in rows for a in row["accuracies"]] + [row["search_value"] for _, row in searched]
    if values:
        high = max(values + [row["mean"] + row["std"] for row in rows])
        # The architectures sit within a few points: a zero-based axis would flatten the differences.
        fig.update_yaxes(range=[max(0.0, min(values) - 0.05), high + 0.015])
    _percent_axis(fig)
    return fig
