"""The search: options, the driver that asks Optuna and trains on Ray Tune, its searcher, worker, scheduler,
samplers and budget, the Ray cluster it runs on, and `simulate` (the same searcher and scheduler replayed over a
table of real learning curves).

    >>> from tpsearch.search import RunOptions, run_search
    >>> summary = run_search(RunOptions(dataset="digits", trials=4, epochs=2, max_params=60_000,
    ...                                 train_images=256, storage="sqlite:///studies.db"))  # doctest: +SKIP
    >>> summary.best_value, summary.counts  # doctest: +SKIP

What a study holds is read through `tpsearch.study`; it is stored through `tpsearch.storages`.
"""
from tpsearch.search._auto import AUTO, GIB_PER_TRIAL, MACS_PER_32X32, MAX_TRIALS_PER_GPU, settled_max_macs
from tpsearch.search._auto import NONE as MAX_MACS_NONE
from tpsearch.search._budget import budget_of
from tpsearch.search._driver import PlannedTrial, enqueued_arch, run_search
from tpsearch.search._options import METRIC, SAMPLERS, SCHEDULERS, RunOptions, RunSummary
from tpsearch.search._worker import trial_latency

__all__ = ["AUTO", "GIB_PER_TRIAL", "MACS_PER_32X32", "MAX_MACS_NONE", "MAX_TRIALS_PER_GPU", "METRIC", "PlannedTrial",
           "RunOptions", "RunSummary", "SAMPLERS", "SCHEDULERS", "budget_of", "enqueued_arch", "run_search",
           "settled_max_macs", "trial_latency"]
