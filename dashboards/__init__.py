"""Plotly figures and self-contained pages built from a study.

    >>> from tpsearch import dashboards
    >>> from tpsearch.testing.dashboards import make_study
    >>> study = make_study(30, seed=1)  # a synthetic study in the driver's format, in memory
    >>> page = dashboards.write_dashboard(study, "my-study.html")
    >>> page.name, len(dashboards.trials_frame(study))  # one row per trial, for pandas
    ('my-study.html', 30)

`write_comparison([study_a, study_b], path)` puts studies side by side; `write_evaluation(result, path)` draws a
`tpsearch evaluate` result, `write_calibration(result, path)` a `tpsearch calibrate` one, `write_ablation(result,
path)` a `tpsearch ablate` one, `write_rerank(result, path)` a `tpsearch rerank` one, `write_explanation(result,
path)` and `write_overlays(result, path)` a `tpsearch explain` one (the page, the PNGs beside it),
`write_delegation(result, path)` a `tpsearch delegate` one, `write_simulation(result, curves, groups, path)` a
`tpsearch simulate` one. Each command's page is its own module, written in `_page`'s shell. The package never opens
storage: callers pass an `optuna.Study` (the CLI opens it through `tpsearch.storages`). `tpsearch.testing.dashboards`
makes synthetic studies for tests and benchmarks.
"""
from __future__ import annotations

import importlib
from typing import Any

# Re-exported on first use: the command line reads the axis names (`X_AXES`) while it builds its parser, and must not
# pay for plotly and pandas then.
_API = {**{name: "tpsearch.study" for name in ("pareto_mask", "STATUSES", "status_of", "trials_frame")},
        "dashboard_html": "_dashboard", "write_dashboard": "_dashboard",
        "comparison_html": "_comparison", "write_comparison": "_comparison",
        "evaluation_html": "_evaluate", "write_evaluation": "_evaluate",
        "calibration_html": "_calibrate", "write_calibration": "_calibrate",
        "ablation_html": "_ablate", "write_ablation": "_ablate", "rerank_html": "_rerank", "write_rerank": "_rerank",
        "delegation_html": "_delegate", "write_delegation": "_delegate", "table_points": "_delegate",
        "X_AXES": "tpsearch.study", "captions": "_explain",
        "simulation_html": "_simulate", "write_simulation": "_simulate",
        "explanation_html": "_explain", "write_explanation": "_explain", "write_overlays": "_explain"}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        where = _API[name]
        return getattr(importlib.import_module(where if "." in where else f"tpsearch.dashboards.{where}"), name)
    raise AttributeError(f"module 'tpsearch.dashboards' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
