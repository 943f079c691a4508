"""Studies of planned trainings: configurations chosen in advance, trained and recorded as a study of their own.
`calibrate` (a search's fidelity against a higher one), `ablate` (a preset with training tricks added in turn),
`rerank` (a search's best trials retrained over seeds at a higher fidelity); each runs through the search's driver.

    >>> from tpsearch.planned import RerankOptions, rerank  # doctest: +SKIP
"""
from tpsearch.planned._ablate import AblateOptions, ablate, space_with_preset
from tpsearch.planned._calibrate import CalibrateOptions, CalibrationResult, calibrate
from tpsearch.planned._rerank import DEFAULT_TOP, RerankOptions, rerank, rerank_winner, reranked

__all__ = ["AblateOptions", "CalibrateOptions", "CalibrationResult", "DEFAULT_TOP", "RerankOptions", "ablate",
           "calibrate", "rerank", "rerank_winner", "reranked", "space_with_preset"]
