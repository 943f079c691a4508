"""The winner of a study as a checkpoint: its format, export (with an optional full retrain and quantization),
evaluate, ONNX.

    >>> from tpsearch.search.export import ExportOptions, export, load_checkpoint
    >>> result = export(ExportOptions(out="best.pt", storage="sqlite:///studies.db"))  # doctest: +SKIP
    >>> model, meta = load_checkpoint("best.pt")  # eval mode; meta: space, arch, dataset, metrics  # doctest: +SKIP

A checkpoint holds tensors and plain containers only, so `torch.load(path, weights_only=True)` reads it too.
"""
from tpsearch.search.export._checkpoint import (FORMAT, TRIAL_FORMAT, load_checkpoint, make_checkpoint, read_plain,
                                                save_atomic, save_checkpoint, weights_sha256)
from tpsearch.search.export._evaluate import evaluate_checkpoint
from tpsearch.search.export._export import (RECIPES, SPLITS, ExportOptions, ExportResult, export, export_pareto,
                                            pick_trial, resume_path)
from tpsearch.search.export._formats import FORMATS, sibling, write_onnx, write_pt2, write_torchscript
from tpsearch.search.export._quantize import METHODS as QUANTIZE_METHODS
from tpsearch.search.export._quantize import QuantizeConfig, Quantized, quantize_model
from tpsearch.search.export._trust import checkpoint_space

__all__ = ["FORMAT", "FORMATS", "QUANTIZE_METHODS", "RECIPES", "SPLITS", "TRIAL_FORMAT", "ExportOptions",
           "ExportResult", "QuantizeConfig", "Quantized", "checkpoint_space", "evaluate_checkpoint", "export",
           "export_pareto", "load_checkpoint", "make_checkpoint", "pick_trial", "quantize_model", "read_plain",
           "resume_path", "save_atomic", "save_checkpoint", "sibling", "weights_sha256", "write_onnx", "write_pt2",
           "write_torchscript"]
