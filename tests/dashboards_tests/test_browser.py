"""The pages in a real browser: headless Chromium, offline, no console errors, every plot drawn with data.

Without Chromium (Debian: `apt-get install chromium`) they fail, unless TPSEARCH_TEST_NO_BROWSER=1 opts out;
TPSEARCH_CHROMIUM names another binary. With TPSEARCH_SCREENSHOTS=DIR the screenshots are kept there.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import optuna
import pytest

from tpsearch import dashboards
from tests.dashboards_tests._browser import Browser, require_chromium

# Dialogs would block the page: record them instead, so an injected alert() shows up as a failure.
HOOKS = """
window.__dialogs = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  window[name] = (message) => { window.__dialogs.push(name + ': ' + String(message)); };
}
"""
# What every plot holds (points per trace) and what it drew (SVG marks with a shape, canvases, parcoords axes).
PLOTS = """[...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
  id: gd.id,
  points: gd._fullData.reduce((n, t) => n + (t._length || 0), 0),
  marks: [...gd.querySelectorAll('.scatterlayer path, .barlayer path, .parcoords .axis')]
           .filter(e => e.tagName !== 'path' || (e.getAttribute('d') || '').length > 8).length
         + gd.querySelectorAll('canvas').length,
  width: gd.getBoundingClientRect().width,
}))"""

# The plots whose title or legend box intersects their modebar's box (present, if transparent, before a hover).
UNDER_THE_MODEBAR = """[...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => {
  const bar = gd.querySelector('.modebar').getBoundingClientRect();
  return [...gd.querySelectorAll('.gtitle, .legend')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.left < bar.right && bar.left < r.right && r.top < bar.bottom && bar.top < r.bottom;
  }).map(e => gd.id + ' ' + e.getAttribute('class'));
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = require_chromium()
    with Browser(binary, timeout=60) as b:
        yield b


def _open(browser: Browser, path: Path) -> list[dict[str, Any]]:
    browser.events.clear()
    browser.open(path, init_script=HOOKS)
    # Scripts run while the page parses; after `load` every plot is drawn, and this evaluation waits for it.
    plots = browser.eval(PLOTS)
    errors = browser.console_errors() + (browser.eval("window.__dialogs") or [])
    assert errors == [], errors
    return plots


def _keep(src: Path, name: str) -> None:
    target = os.environ.get("TPSEARCH_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, Path(target) / name)


def test_dashboard_renders_offline(browser: Browser, small_study: optuna.Study, tmp_path: Path) -> None:
    page = dashboards.write_dashboard(small_study, tmp_path / "small.html")
    plots = _open(browser, page)
    assert [p["id"] for p in plots] == ["fig-history", "fig-params", "fig-macs", "fig-importances", "fig-curves",
                                        "fig-states", "fig-parallel", "fig-timeline"]
    for p in plots:
        assert p["points"] > 0 and p["marks"] > 0 and p["width"] > 300, p
    assert browser.eval("document.querySelectorAll('#top-trials tr').length") == 11
    shot = tmp_path / "dashboard.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    _keep(shot, "dashboard.png")


def test_comparison_renders_offline(browser: Browser, small_study: optuna.Study, markup_study: optuna.Study,
                                    tmp_path: Path) -> None:
    page = dashboards.write_comparison([small_study, markup_study], tmp_path / "compare.html")
    plots = _open(browser, page)
    assert len(plots) == 3
    for p in plots:
        assert p["points"] > 0 and p["marks"] > 0, p
    legend = browser.eval("[...document.querySelectorAll('#fig-best .legendtext')].map(e => e.textContent)")
    assert legend == [small_study.study_name, markup_study.study_name]  # markup shown as the text it is
    # Plotly's toolbar (modebar) covers the top right of each plot: no title or legend runs under it
    overlaps = browser.eval(UNDER_THE_MODEBAR)
    assert overlaps == [], overlaps


def test_markup_renders_as_text(browser: Browser, markup_study: optuna.Study, tmp_path: Path) -> None:
    page = dashboards.write_dashboard(markup_study, tmp_path / "markup.html")
    plots = _open(browser, page)  # no dialog: checked inside
    assert all(p["points"] > 0 for p in plots)
    name = markup_study.study_name
    assert browser.eval("document.getElementById('title').textContent") == f"Study {name}"
    assert name in browser.eval("document.title")
    # Nothing was injected: no image, and no script other than plotly.js, the figures and the resize hook.
    assert browser.eval("document.querySelectorAll('img').length") == 0
    assert browser.eval("document.querySelectorAll('script').length") == 1 + len(plots) + 1
    meta = browser.eval("document.querySelector('.meta').textContent")
    assert '<img src=x onerror="alert(2)">' in meta and "<b>key</b>: &amp; <i>tag</i>" in meta
    ticks = browser.eval("[...document.querySelectorAll('#fig-timeline .ytick text')].map(t => t.textContent)")
    assert ticks and all(t.startswith('<img src=x onerror="alert(3)">') for t in ticks), ticks


def test_the_evaluation_page_fits_a_1000_pixel_window(browser: Browser, tmp_path: Path) -> None:
    """A long checkpoint path and architecture wrap in the header instead of widening the page."""
    classes = [f"class_{i}" for i in range(10)]
    arch = {"layers": 4, "blocks": [2, 3, 4, 2], "channels": 64, "kernels": [3, 3, 5, 3], "skip_kernels": [1] * 4,
            "pool": 4}
    result = {"checkpoint": "/" + "/".join(["a-long-folder-name"] * 6) + "/resnet_5m-cifar10-best.pt",
              "dataset": "cifar10", "split": "test", "images": 10_000, "test_accuracy": 0.93, "classes": classes,
              "per_class_accuracy": {c: 0.93 for c in classes}, "recorded": {"val_accuracy": 0.93, "params": 4_959_770},
              "study": "resnet_5m-cifar10", "trial": 118, "space": "resnet_5m", "arch": arch,
              "confusion_matrix": [[93 if i == j else 1 for j in range(10)] for i in range(10)]}
    page = dashboards.write_evaluation(result, tmp_path / "evaluation.html")
    browser.send("Emulation.setDeviceMetricsOverride", width=1000, height=800, deviceScaleFactor=1, mobile=False)
    try:
        plots = _open(browser, page)
        assert [p["id"] for p in plots] == ["fig-confusion", "fig-per-class"]
        width, window = browser.eval("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width <= window <= 1000
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride")


def test_the_explanation_and_delegation_pages_draw_every_plot(browser: Browser, tmp_path: Path) -> None:
    """Results made by hand (no model): a name with markup in it stays text, every plot has its data."""
    import numpy as np

    from tpsearch.dashboards._delegate import table_points
    from tpsearch.checkpoints import ExplainResult, Explanation
    from tpsearch.checkpoints._delegate import delegation_curve, sweep_thresholds

    rng = np.random.default_rng(0)
    hostile = '<img src=x onerror="alert(1)">.png'
    explanations = [Explanation(source=hostile if i == 0 else f"test[{i}]",
                                image=rng.integers(0, 256, (8, 8, c), dtype=np.uint8),
                                map=rng.random((8, 8)).astype(np.float32), predicted=i, probability=0.9, target=i,
                                target_probability=0.9, label=i) for i, c in enumerate((1, 3))]
    result = ExplainResult(checkpoint=hostile, dataset="digits", classes=[str(i) for i in range(10)],
                           method="smoothgrad", samples=50, noise=0.15, seed=0, device="cpu",
                           explanations=explanations)
    plots = _open(browser, dashboards.write_explanation(result, tmp_path / "explain.html"))
    assert [p["id"] for p in plots] == ["fig-image-0", "fig-image-1"]
    # Image and heatmap traces are drawn as SVG <image> elements: the image, the map and the overlay.
    drawn = browser.eval("[...document.querySelectorAll('.js-plotly-plot')].map(gd => gd.querySelectorAll("
                         "'image').length)")
    assert drawn == [3, 3], drawn
    assert hostile in browser.eval("document.querySelector('#title').textContent")

    h = rng.random(500) * 2
    sweep = delegation_curve(h, h < 1, rng.random(500) < 0.9, sweep_thresholds(h), 1e6, 8e6)
    alone = {"checkpoint": hostile, "space": "resnet_5m", "params": 1000}
    delegation = {"dataset": "digits", "split": "test", "images": 500, "small": {**alone, "accuracy": 0.6,
                  "macs": 1e6}, "large": {**alone, "accuracy": 0.9, "macs": 8e6}, "point": sweep[100],
                  "entropy": {"unit": "nats", "min": float(h.min()), "max": float(h.max()), "mean": 1.0,
                              "uniform": 2.3}, "sweep": sweep, "cheapest_matching": None}
    plots = _open(browser, dashboards.write_delegation(delegation, tmp_path / "delegate.html"))
    assert [p["id"] for p in plots] == ["fig-cost", "fig-threshold"]
    assert plots[0]["points"] == len(sweep) + 3 and plots[1]["points"] == 2 * len(sweep)
    rows = browser.eval("document.querySelectorAll('#sweep tr').length")
    assert rows == 1 + len(table_points(sweep)) == 22


def test_the_simulation_page_draws_every_strategy(browser: Browser, tmp_path: Path) -> None:
    """`tpsearch simulate`'s page over a slice of the shipped table: a mean and a band per strategy on both axes."""
    from tpsearch.cli._simulate import write_page
    from tpsearch.search.simulate import SimulateOptions, Table, compare
    from tpsearch.spaces.resnet_grid import GRID, ResNetGrid

    opts = SimulateOptions(strategies=["random", "tpe+steps"], seeds=3, trials=10)
    space = ResNetGrid({**GRID, "layers": (2, 3), "skip_kernel": (1,), "pool": ("global",), "weight_decay": (5e-4,)})
    result, traces = compare(opts, table=Table.read(opts.table), space=space)
    plots = _open(browser, write_page(result, traces, tmp_path / "simulate.html"))
    assert [p["id"] for p in plots] == ["fig-regret-trained", "fig-regret-seconds"]
    for p in plots:
        assert p["points"] > 0 and p["marks"] >= 2 * 3, p  # per strategy: its mean and its band's two edges
    rows = browser.eval("[...document.querySelectorAll('#strategies tr td:first-child')].map(td => td.textContent)")
    assert sorted(rows) == ["random", "tpe+steps"]
