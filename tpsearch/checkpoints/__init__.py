"""Checkpoints: the format (tensors and plain containers only, so `torch.load(path, weights_only=True)` reads one
too) and whom it trusts with code, evaluation, ONNX/TorchScript/pt2 files, quantization, and what is measured on
a checkpoint: `explain` (SmoothGrad maps) and `delegate` (a small model handing its doubtful images to a large one).

    >>> from tpsearch.checkpoints import evaluate_checkpoint, load_checkpoint
    >>> model, meta = load_checkpoint("best.pt")  # eval mode; meta: space, arch, dataset, metrics  # doctest: +SKIP
"""
from tpsearch.checkpoints._checkpoint import (FORMAT, TRIAL_FORMAT, build_model, json_safe, load_checkpoint,
                                              make_checkpoint, read_plain, save_atomic, save_checkpoint, to_bytes,
                                              weights_sha256)
from tpsearch.checkpoints._delegate import SPLITS as DELEGATE_SPLITS
from tpsearch.checkpoints._delegate import DelegateOptions, delegate
from tpsearch.checkpoints._evaluate import evaluate_checkpoint
from tpsearch.checkpoints._explain import METHODS as EXPLAIN_METHODS
from tpsearch.checkpoints._explain import ExplainOptions, ExplainResult, Explanation, explain, smoothgrad
from tpsearch.checkpoints._formats import FORMATS, WRITERS, need_onnx, sibling, write_onnx, write_pt2, write_torchscript
from tpsearch.checkpoints._quantize import METHODS as QUANTIZE_METHODS
from tpsearch.checkpoints._quantize import summary as quantize_summary
from tpsearch.checkpoints._quantize import (BATCH_NORM_IMAGES, CALIBRATION_IMAGES, DEFAULT_EPOCHS, DEFAULT_THRESHOLD,
                                           QuantizeConfig, Quantized, quantize_model, sealed)
from tpsearch.checkpoints._trust import checkpoint_space

__all__ = ["BATCH_NORM_IMAGES", "CALIBRATION_IMAGES", "DEFAULT_EPOCHS", "DEFAULT_THRESHOLD", "DELEGATE_SPLITS",
           "DelegateOptions", "EXPLAIN_METHODS", "ExplainOptions", "ExplainResult", "Explanation", "FORMAT", "FORMATS",
           "QUANTIZE_METHODS", "QuantizeConfig", "Quantized", "TRIAL_FORMAT", "WRITERS", "build_model",
           "checkpoint_space", "delegate", "evaluate_checkpoint", "explain", "json_safe", "load_checkpoint",
           "make_checkpoint", "need_onnx", "quantize_model", "quantize_summary", "read_plain", "save_atomic",
           "save_checkpoint", "sealed", "sibling", "smoothgrad", "to_bytes", "weights_sha256", "write_onnx",
           "write_pt2", "write_torchscript"]
