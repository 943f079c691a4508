"""The page of `tpsearch delegate`: accuracy against the cost per image, and against the entropy threshold."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tpsearch._files import atomic_write
from tpsearch.dashboards._figures import _LAYOUT, COLORS, GROUP_COLORS, _figure, _percent_axis, _scatter, titled
from tpsearch.dashboards._figures import esc as fig_esc
from tpsearch.dashboards._page import _card, _result_page, esc

TABLE_ROWS = 21  # thresholds in the printed table and the page's: both ends and evenly spaced ones between


def table_points(sweep: Sequence[Mapping[str, float]], rows: int = TABLE_ROWS) -> list[Mapping[str, float]]:
    """At most `rows` points of a sweep for a table: the first, the last, and evenly spaced ones between."""
    if len(sweep) <= rows:
        return list(sweep)
    picks = sorted({round(i * (len(sweep) - 1) / (rows - 1)) for i in range(rows)})
    return [sweep[i] for i in picks]


def _hover(points: Sequence[Mapping[str, float]]) -> list[str]:
    return [f"threshold {p['threshold']:.4g} nats<br>delegated {p['delegated']:.1%}<br>"
            f"{p['cost_macs'] / 1e6:,.3f} MMACs ({p['cost_ratio']:.1%} of large)<br>accuracy {p['accuracy']:.2%}"
            for p in points]


def cost_curve(result: Mapping[str, Any]) -> go.Figure:
    """Accuracy against MMACs per image along the sweep, each model alone and the chosen threshold marked."""
    sweep, small, large = result["sweep"], result["small"], result["large"]
    fig = _figure(f"Accuracy vs cost per image ({fig_esc(result['split'])} split)", "MMACs per image (small + share "
                  "delegated x large)", "accuracy")
    fig.add_trace(_scatter(len(sweep))(
        x=[p["cost_macs"] / 1e6 for p in sweep], y=[p["accuracy"] for p in sweep], mode="lines+markers",
        name="delegating pair", line=dict(color=COLORS["complete"]), marker=dict(size=4),
        text=_hover(sweep), hovertemplate="%{text}<extra></extra>"))
    for label, model, colour in (("small alone", small, GROUP_COLORS[2]), ("large alone", large, GROUP_COLORS[1])):
        fig.add_trace(go.Scatter(
            x=[model["macs"] / 1e6], y=[model["accuracy"]], mode="markers", name=label,
            marker=dict(size=12, symbol="diamond", color=colour),
            hovertemplate=f"{fig_esc(label)}: %{{x:,.3f}} MMACs, %{{y:.2%}}<extra></extra>"))
    if result.get("point"):
        p = result["point"]
        fig.add_trace(go.Scatter(
            x=[p["cost_macs"] / 1e6], y=[p["accuracy"]], mode="markers", name=f"threshold {p['threshold']:g}",
            marker=dict(size=13, symbol="star", color=COLORS["infeasible"]), text=_hover([p]),
            hovertemplate="%{text}<extra></extra>"))
    _percent_axis(fig)
    return fig


def threshold_curve(result: Mapping[str, Any]) -> go.Figure:
    """Accuracy and the share delegated against the threshold, in nats."""
    sweep = result["sweep"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.update_layout(title=titled("Accuracy and share delegated vs threshold"), **_LAYOUT)
    x = [p["threshold"] for p in sweep]
    fig.add_trace(_scatter(len(sweep))(
        x=x, y=[p["accuracy"] for p in sweep], mode="lines", name="accuracy", line=dict(color=COLORS["complete"]),
        line_shape="hv", text=_hover(sweep), hovertemplate="%{text}<extra></extra>"), secondary_y=False)
    fig.add_trace(_scatter(len(sweep))(
        x=x, y=[p["delegated"] for p in sweep], mode="lines", name="share delegated", line_shape="hv",
        line=dict(color=COLORS["infeasible"], dash="dot"), hovertemplate="delegated %{y:.1%}<extra></extra>"),
        secondary_y=True)
    fig.update_xaxes(title_text="threshold: the small model answers where its entropy is at most this (nats)")
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="share delegated to the large model", tickformat=".0%", range=[0, 1], dtick=0.2,
                     secondary_y=True, showgrid=False)
    return fig


def _table(result: Mapping[str, Any]) -> str:
    head = ("<tr><th>threshold (nats)</th><th>accuracy</th><th>delegated</th><th>MMACs per image</th>"
            "<th>of large's cost</th></tr>")
    rows = "".join(
        f"<tr><td>{p['threshold']:.4g}</td><td>{p['accuracy']:.2%}</td><td>{p['delegated']:.1%}</td>"
        f"<td>{p['cost_macs'] / 1e6:,.3f}</td><td>{p['cost_ratio']:.1%}</td></tr>"
        for p in table_points(result["sweep"]))
    return f'<table id="sweep">{head}{rows}</table>'


def delegation_html(result: Mapping[str, Any]) -> str:
    """The page of one `tpsearch delegate` result: both curves, then the sweep as a table."""
    small, large = result["small"], result["large"]
    facts = [
        f"<span>data set <b>{esc(result['dataset'])}</b> ({esc(result['split'])}, {int(result['images']):,} "
        f"images)</span>",
        f'<span class="w">small <b>{esc(small["checkpoint"])}</b>: {small["accuracy"]:.2%}, '
        f'{small["macs"] / 1e6:,.3f} MMACs</span>',
        f'<span class="w">large <b>{esc(large["checkpoint"])}</b>: {large["accuracy"]:.2%}, '
        f'{large["macs"] / 1e6:,.3f} MMACs</span>']
    best = result.get("cheapest_matching")
    match = (f"<span>as accurate as the large model alone ({best['accuracy']:.2%}) from threshold "
             f"{best['threshold']:.4g} nats, at {best['cost_ratio']:.1%} of its cost</span>" if best else
             "<span>no threshold matches the large model's accuracy</span>")
    body = (f'<div class="grid">{_card(cost_curve(result), "cost")}{_card(threshold_curve(result), "threshold")}'
            f"</div><h2>Thresholds</h2>{_table(result)}")
    return _result_page("delegate", "Delegation", f"{small['checkpoint']} to {large['checkpoint']}", body, facts,
                        [match])


def write_delegation(result: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of a delegate result (`tpsearch.checkpoints.delegate(...)`) to `path` atomically."""
    return atomic_write(path, delegation_html(result))
