"""Export: a study's chosen trial (the best, one named, a rerank's winner or a Pareto front) as a checkpoint file,
from the weights its search kept or trained again (`--retrain`), optionally quantized; `tpsearch.checkpoints`
holds the format.

    >>> from tpsearch.export import ExportOptions, export
    >>> result = export(ExportOptions(out="best.pt", storage="sqlite:///studies.db"))  # doctest: +SKIP
"""
from tpsearch.export._choice import pick_trial
from tpsearch.export._export import ExportResult, export, export_pareto
from tpsearch.export._options import DEFAULT_MAX_LOSS, RECIPES, SPLITS, ExportOptions
from tpsearch.export._retrain import resume_path

__all__ = ["DEFAULT_MAX_LOSS", "ExportOptions", "ExportResult", "RECIPES", "SPLITS", "export", "export_pareto",
           "pick_trial", "resume_path"]
