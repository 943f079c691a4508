"""Write a feasible completed trial as one checkpoint: the space and architecture, the weights, the data set's
classes and normalisation, the validation and test accuracy, parameters and MACs, and where it came from. It holds
tensors and plain containers only, so torch.load(path, weights_only=True) reads it; `from tpsearch import
load_checkpoint` rebuilds the model. The weights are those the search kept for the trial, or with --retrain those
of a training from scratch at full budget, which resumes after a kill when the same command runs again. With
--quantize the weights are ternary (TTQ) or binary and fine-tuned, or int8; the checkpoint records the packed size
and the full-precision accuracy beside the quantized one, and a quantized model more than --max-loss points below
full precision is not written unless --accept-loss.

(`tpsearch export`: its flags are `ExportOptions`' fields, one to one.)
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from tpsearch.study import trial_label
from tpsearch.cli._flags import (add_data_dir, add_device, add_json, add_progress, add_runs_dir,
                                        add_storage, add_study, emit_json, options_from)
from tpsearch.cli._registry import command

if TYPE_CHECKING:
    from tpsearch.export import ExportResult


def _export_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.checkpoints import DEFAULT_EPOCHS, DEFAULT_THRESHOLD, FORMATS, QUANTIZE_METHODS
    from tpsearch.export import DEFAULT_MAX_LOSS, RECIPES, SPLITS

    add_study(p)
    add_storage(p)
    p.add_argument("--trial", type=int, default=None, metavar="N",
                   help="export trial N (default: the re-ranked winner where `tpsearch rerank` has run, else the "
                        "most accurate feasible completed trial)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="FILE.pt", help="checkpoint to write; its folder is created")
    where.add_argument("--pareto", type=Path, metavar="DIR",
                       help="a study searched with several --objectives: write every trial of its Pareto front, "
                            "DIR/trial_N.pt each")
    p.add_argument("--format", dest="formats", action="append", default=[], choices=FORMATS,
                   help="also write FILE.pt2 (torch.export: what PyTorch prefers for deployment), FILE.onnx or "
                        "FILE.torchscript.pt (deprecated by PyTorch; for runtimes that load only it) beside it; "
                        "repeatable")
    p.add_argument("--space", default=None, metavar="FILE.py:CLASS",
                   help="the study's space of your own, where the FILE.py:CLASS it records (relative to where "
                        "`tpsearch run` ran) does not load from here; the checkpoint then records this one")
    add_data_dir(p)
    add_runs_dir(p)
    p.add_argument("--no-test", dest="test", action="store_false", help="do not measure the test accuracy")
    g = p.add_argument_group("retraining")
    g.add_argument("--retrain", action="store_true",
                   help="train the architecture from scratch on the whole split (see --recipe), instead of using "
                        "the search's weights")
    g.add_argument("--epochs", type=int, default=None, help="epochs of the retrain (default: the study's)")
    g.add_argument("--recipe", default="long", choices=list(RECIPES),
                   help="long (default): SGD+Nesterov 0.1 per 128 images, weight decay 5e-4, label smoothing 0.1, "
                        "5 warm-up epochs then cosine, a recipe for 200-300 epochs; trial: the trial's own "
                        "hyperparameters, tuned for the search's short budget")
    g.add_argument("--on", default="train", choices=SPLITS,
                   help="train+val trains on the validation images too (validation accuracy then means nothing; "
                        "the test accuracy is the measure)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the data split and the retrain (default: the study's, else 0)")
    add_device(g)
    q = p.add_argument_group("quantization")
    q.add_argument("--quantize", default=None, choices=QUANTIZE_METHODS,
                   help="ternary: trained ternary quantization (TTQ: -Wn, 0, +Wp per layer, 2 bits a weight); "
                        "binary: mean|w| x sign(w) per layer, 1 bit a weight; both keep the first conv and the last "
                        "linear layer in float32 and are fine-tuned; int8: torch.ao static quantization of every "
                        "layer, calibrated on training images, CPU only")
    q.add_argument("--quantize-epochs", type=int, default=None, metavar="E",
                   help=f"ternary, binary: epochs of the fine-tune, under the hyperparameters that trained the "
                        f"weights (default: {DEFAULT_EPOCHS})")
    q.add_argument("--ternary-threshold", type=float, default=None, metavar="T",
                   help=f"ternary: weights within T x max|w| of zero become 0 (default: {DEFAULT_THRESHOLD})")
    q.add_argument("--quantize-first-last", action="store_true",
                   help="ternary, binary: quantize the first conv and the last linear layer too")
    bound = q.add_mutually_exclusive_group()
    bound.add_argument("--max-loss", type=float, default=None, metavar="POINTS",
                       help=f"refuse (write nothing, exit 2) a quantized model whose test accuracy (validation "
                            f"with --no-test) is more than POINTS below full precision (default: "
                            f"{DEFAULT_MAX_LOSS:g})")
    bound.add_argument("--accept-loss", action="store_true",
                       help="write the quantized model whatever accuracy it lost")
    add_progress(p)
    add_json(p)


@command(140, "export", _export_flags,
         description=__doc__.split("\n\n")[0])
def run_export(args: argparse.Namespace) -> int:
    """write the best trial of a study (or trial N) as a checkpoint

    Example: tpsearch export --study resnet_5m-cifar10 --out best.pt --retrain --epochs 200 --on train+val --format onnx
    """
    from tpsearch.export import ExportOptions, export, export_pareto

    opts = options_from(ExportOptions, args, out=None if args.out is None else str(args.out),
                        pareto=None if args.pareto is None else str(args.pareto),
                        formats=list(dict.fromkeys(args.formats)))
    try:
        results = export_pareto(opts) if opts.pareto is not None else [export(opts)]
    except KeyboardInterrupt:
        hint = "; run the same command again to resume the retrain from its last finished epoch" if args.retrain \
            else ""
        print(f"tpsearch export: interrupted, nothing exported{hint}", file=sys.stderr)
        return 130
    if args.json:
        emit_json({"pareto": [asdict(r) for r in results]} if opts.pareto is not None else asdict(results[0]))
        return 0
    for result in results:
        _say(result)
    return 0


def _say(result: ExportResult) -> None:
    acc = [f"{name} accuracy {v:.4f}" for name, v in (("validation", result.val_accuracy),
                                                      ("test", result.test_accuracy)) if v is not None]
    print(f"wrote {result.path}: {trial_label(result.trial, result.trained)} of {result.study!r} ({result.source}, "
          f"{result.epochs} epochs), "
          f"{result.params:,} parameters, {', '.join(acc) or 'accuracy not measured'}"
          + (f"; chosen by rerank: {result.rerank['mean']:.2%} ± {result.rerank['std']:.2%} over "
             f"{result.rerank['n']} seeds in {result.rerank['study']!r}" if result.rerank else ""))
    q = result.quantization
    if q:
        print(quantization_line(q, result.test_accuracy))
    for path in (result.pt2, result.onnx, result.torchscript):
        if path:
            print(f"wrote {path}")


def quantization_line(q: dict, accuracy: float | None) -> str:
    """One line: the quantized model's size and accuracy beside the full-precision model's (export, evaluate)."""
    fp = (q.get("full_precision") or {}).get("test_accuracy")
    if accuracy is None:
        acc = "test accuracy not measured"
    else:
        acc = f"test accuracy {accuracy:.4f} against " + (
            f"{fp:.4f} in full precision ({_points(fp - accuracy)})" if fp is not None else
            "full precision's, not measured at export (--no-test)")
    zeros = f", {q['zero_fraction']:.1%} zeros" if "zero_fraction" in q else ""
    return (f"{q['method']} ({q['bits']}-bit) weights in {q['quantized_layers']} layers{zeros}: {acc}; "
            f"{q['packed_bytes']:,} bytes packed against {q['full_precision_bytes']:,} "
            f"({q['ratio']:.1f}x smaller)")


def _points(lost: float) -> str:
    return f"{100 * lost:.2f} points lost" if lost >= 0 else f"{-100 * lost:.2f} points gained"
