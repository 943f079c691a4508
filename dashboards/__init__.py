"""Plotly figures and self-contained pages built from a study.

    >>> import dashboards
    >>> dashboards.write_dashboard(study, "dashboards/my-study.html")      # doctest: +SKIP
    >>> dashboards.write_comparison([study_a, study_b], "dashboards/a-vs-b.html")  # doctest: +SKIP
    >>> dashboards.trials_frame(study)  # one row per trial, for pandas     # doctest: +SKIP
    >>> dashboards.write_evaluation(result, "eval.html")  # a `tpsearch evaluate` result  # doctest: +SKIP

The package never opens storage: callers pass an `optuna.Study` (the CLI opens it through `search`).
`dashboards.testing.make_study` makes synthetic studies in the driver's format for tests and benchmarks.
"""
from tpsearch.dashboards._figures import pareto_mask
from tpsearch.dashboards._frame import STATUSES, status_of, trials_frame
from tpsearch.dashboards._page import (comparison_html, dashboard_html, evaluation_html, write_comparison, write_dashboard,
                              write_evaluation)

__all__ = ["STATUSES", "comparison_html", "dashboard_html", "evaluation_html", "pareto_mask", "status_of",
           "trials_frame", "write_comparison", "write_dashboard", "write_evaluation"]
