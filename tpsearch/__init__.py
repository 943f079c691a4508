"""tpsearch: architecture and hyperparameter search for image classifiers under a parameter budget.

    >>> import tpsearch
    >>> summary = tpsearch.run_search(tpsearch.RunOptions(space="resnet_5m", dataset="digits", trials=8, epochs=4,
    ...                                                   max_params=200_000, train_images=512))  # doctest: +SKIP
    >>> result = tpsearch.export(tpsearch.ExportOptions(out="best.pt", study=summary.study))  # doctest: +SKIP
    >>> model, meta = tpsearch.load_checkpoint("best.pt")  # doctest: +SKIP

The rooms (the README's Layout draws them): `tpsearch.spaces` (search spaces and their registry),
`tpsearch.trainers` (data sets and the training loop), `tpsearch.study` (reading a study), `tpsearch.storages`,
`tpsearch.checkpoints` (the format, evaluate, explain, delegate), `tpsearch.search` (options and the driver),
`tpsearch.planned` (calibrate, ablate, rerank), `tpsearch.export`, `tpsearch.dashboards` (Plotly pages from a
study) and `tpsearch.cli`. Names are imported on first use, so `import tpsearch` is cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "RunOptions": "tpsearch.search", "RunSummary": "tpsearch.search", "run_search": "tpsearch.search",
    "Outcome": "tpsearch.study", "best_trial": "tpsearch.study",
    "CalibrateOptions": "tpsearch.planned", "calibrate": "tpsearch.planned",
    "AblateOptions": "tpsearch.planned", "ablate": "tpsearch.planned",
    "RerankOptions": "tpsearch.planned", "rerank": "tpsearch.planned",
    "ExplainOptions": "tpsearch.checkpoints", "explain": "tpsearch.checkpoints",
    "DelegateOptions": "tpsearch.checkpoints", "delegate": "tpsearch.checkpoints",
    "ExportOptions": "tpsearch.export", "ExportResult": "tpsearch.export", "export": "tpsearch.export",
    "load_checkpoint": "tpsearch.checkpoints", "evaluate_checkpoint": "tpsearch.checkpoints",
    "Space": "tpsearch.spaces", "get_space": "tpsearch.spaces",
    "UsageError": "tpsearch.exceptions",
}
_SUBPACKAGES = ("spaces", "trainers", "study", "storages", "checkpoints", "search", "planned", "export",
                "dashboards", "cli", "exceptions")

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
