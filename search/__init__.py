"""The search: options, the driver that asks Optuna and trains on Ray Tune, a trial's outcome, and its rooms.

    >>> from tpsearch.search import RunOptions, run_search
    >>> summary = run_search(RunOptions(dataset="digits", trials=4, epochs=2, max_params=60_000,
    ...                                 train_images=256, storage="sqlite:///studies.db"))  # doctest: +SKIP
    >>> summary.best_value, summary.counts  # doctest: +SKIP

`calibrate(CalibrateOptions(RunOptions(...), ...))` trains the same configurations as that search trains its trials
and at a higher fidelity, and says how far the rankings agree at each ASHA rung and at the end (Spearman and
Kendall with 95% intervals, top-k overlap) beside the high fidelity's agreement with itself under another seed. `ablate(AblateOptions(...))` trains one
preset bare and with training tricks added in turn, several seeds each, as a small study;
`rerank(RerankOptions(...))` retrains a search's best trials over several seeds at a higher fidelity, as a study
linked to the search's, and `export` then takes its winner.
On an exported checkpoint, `explain(ExplainOptions(...))` draws SmoothGrad maps of its images and
`delegate(DelegateOptions(...))` measures a small model that hands its doubtful images to a large one.

Subpackages: `cli` (the `tpsearch` command), `storages` (opening, retries, the driver lease), `export`
(the checkpoint format, export, evaluate, ONNX/TorchScript); `testing` holds the fault cases that tests and
benchmarks share.
"""
from tpsearch.search._ablate import AblateOptions, ablate
from tpsearch.search._calibrate import (CalibrateOptions, CalibrationResult, average_ranks, calibrate, kendall,
                                       spearman, topk_overlap)
from tpsearch.search._delegate import DelegateOptions, delegate
from tpsearch.search._driver import run_search
from tpsearch.search._explain import ExplainOptions, ExplainResult, Explanation, explain, smoothgrad
from tpsearch.search._objectives import OBJECTIVES, objectives_of, pareto_front
from tpsearch.search._options import METRIC, SAMPLERS, SCHEDULERS, RunOptions, RunSummary
from tpsearch.search._outcome import Outcome, accuracy_of, best_trial, count_outcomes, is_trained, outcome_of, ranked
from tpsearch.search._rerank import RerankOptions, rerank, rerank_winner, reranked

__all__ = ["AblateOptions", "CalibrateOptions", "CalibrationResult", "DelegateOptions", "ExplainOptions",
           "ExplainResult", "Explanation", "METRIC", "OBJECTIVES", "Outcome", "RerankOptions", "RunOptions",
           "RunSummary", "SAMPLERS", "SCHEDULERS", "ablate", "accuracy_of", "average_ranks", "best_trial", "calibrate",
           "count_outcomes", "delegate", "explain", "is_trained", "kendall", "objectives_of", "outcome_of",
           "pareto_front", "ranked", "rerank", "rerank_winner", "reranked", "run_search", "smoothgrad", "spearman",
           "topk_overlap"]
