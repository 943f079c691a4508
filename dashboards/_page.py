"""The shell every page is written in: plotly.js inlined once, every figure after it, so a page opens with no
network; its cards, its header of facts and its tables.

Everything taken from a study or a result and written into the HTML goes through `esc`; figure data is serialised
by Plotly, whose JSON escapes `<`, so neither can close a tag or open a script.
"""
from __future__ import annotations

import datetime as dt
import html
from typing import Any, Container, Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio


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


def _header(title: str, *metas: str) -> str:
    """A result page's title and its lines of facts (markup, already escaped), the last one dated."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    lines = [*metas[:-1], f"{metas[-1]}<span>written {stamp}</span>"]
    return f'<h1 id="title">{esc(title)}</h1>' + "".join(f'<div class="meta">{line}</div>' for line in lines)


def _result_page(command: str, heading: str, subject: str, body: str, *facts: Sequence[str]) -> str:
    """The page of one `tpsearch COMMAND` result, titled "HEADING: SUBJECT" over its lines of facts (each a list of
    spans, already escaped, with spaces between them where a line may wrap), then `body`."""
    return _page(f"tpsearch {command}: {subject}",
                 _header(f"{heading}: {subject}", *(" ".join(spans) + " " for spans in facts)) + body)


def _fmt_int(v: Any) -> str:
    return f"{int(v):,}" if v is not None and not pd.isna(v) else ""


def _row(cells: Iterable[Any], left: Container[int] = ()) -> str:
    """A table row of text cells (escaped here), the columns whose indices are in `left` aligned left."""
    return ("<tr>" + "".join(f"<td{' class=l' if i in left else ''}>{esc(c)}</td>" for i, c in enumerate(cells))
            + "</tr>")


def _classed_row(cells: Iterable[tuple[Any, str]]) -> str:
    """A table row of (text, class) cells, the text escaped here; each cell says its class, "" where it has none."""
    return "<tr>" + "".join(f"<td class='{cls}'>{esc(c)}</td>" for c, cls in cells) + "</tr>"


def _table(key: str, head: str, rows: Iterable[str]) -> str:
    """A table of rows (markup) under its `head` (markup), its id `key`."""
    return f'<table id="{key}">{head}{"".join(rows)}</table>'
