"""tpsearch: architecture and hyperparameter search for image classifiers under a parameter budget.

    >>> import tpsearch
    >>> summary = tpsearch.run_search(tpsearch.RunOptions(space="resnet_5m", dataset="digits", trials=8, epochs=4,
    ...                                                   max_params=200_000, train_images=512))  # doctest: +SKIP
    >>> result = tpsearch.export(tpsearch.ExportOptions(out="best.pt", study=summary.study))  # doctest: +SKIP
    >>> model, meta = tpsearch.load_checkpoint("best.pt")  # doctest: +SKIP

The rooms: `tpsearch.spaces` (search spaces and their registry), `tpsearch.trainers` (data sets and the training
loop), `tpsearch.search` (options, the driver, a trial's outcome; `.cli`, `.storages`, `.export`) and
`tpsearch.dashboards` (Plotly pages from a study). Names are imported on first use, so `import tpsearch` is cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "RunOptions": "tpsearch.search", "RunSummary": "tpsearch.search", "run_search": "tpsearch.search",
    "Outcome": "tpsearch.search", "best_trial": "tpsearch.search",
    "CalibrateOptions": "tpsearch.search", "calibrate": "tpsearch.search",
    "AblateOptions": "tpsearch.search", "ablate": "tpsearch.search",
    "RerankOptions": "tpsearch.search", "rerank": "tpsearch.search",
    "ExplainOptions": "tpsearch.search", "explain": "tpsearch.search",
    "DelegateOptions": "tpsearch.search", "delegate": "tpsearch.search",
    "ExportOptions": "tpsearch.search.export", "ExportResult": "tpsearch.search.export",
    "export": "tpsearch.search.export", "load_checkpoint": "tpsearch.search.export",
    "evaluate_checkpoint": "tpsearch.search.export",
    "Space": "tpsearch.spaces", "get_space": "tpsearch.spaces",
    "UsageError": "tpsearch.exceptions",
}
_SUBPACKAGES = ("spaces", "trainers", "search", "dashboards", "exceptions")

__all__ = sorted([*_API, *_SUBPACKAGES])


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"tpsearch.{name}")
    if name in _API:
        module = importlib.import_module(_API[name])
        return getattr(module, "get" if name == "get_space" else name)
    raise AttributeError(f"module 'tpsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
