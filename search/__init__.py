"""The search driver: CLI, Ray Tune wiring, Optuna sampling, the parameter budget, storage and export.

    >>> from search import load_checkpoint
    >>> model, meta = load_checkpoint("best.pt")  # eval mode; meta: space, arch, dataset, metrics  # doctest: +SKIP
"""
from search._checkpoint import load_checkpoint
from search._errors import CheckpointError, UsageError
from search._evaluate import evaluate_checkpoint

__all__ = ["CheckpointError", "UsageError", "evaluate_checkpoint", "load_checkpoint"]
