"""`tpsearch evaluate`: an exported checkpoint on the test split: accuracy, per class, the confusion matrix."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import add_checkpoint_reading, add_dataset, add_json, emit_json
from tpsearch.cli._registry import command


MAX_TABLE_CLASSES = 20  # the confusion matrix is printed as a table up to this many classes


def _evaluate_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="checkpoint file (FILE.pt)")
    add_dataset(p, None,
                help="data set to test on (default: the one recorded in the checkpoint)")
    add_checkpoint_reading(p)
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write the confusion matrix as a self-contained Plotly page")
    add_json(p)


@command(150, "evaluate", _evaluate_flags)
def run_evaluate(args: argparse.Namespace) -> int:
    """test accuracy, per-class accuracy and confusion matrix of an exported checkpoint

    Evaluate a checkpoint written by `tpsearch export` on the test split of its data set (or --dataset), normalised as
    it was trained; above 10 classes the top-5 accuracy too. The file is read with weights_only=True and its weights'
    SHA-256 checked: a file holding pickled code, truncated or altered is refused. A quantized checkpoint (export
    --quantize) is evaluated with its quantized weights, beside the full-precision accuracy and size it recorded at
    export.
    """
    from tpsearch.checkpoints import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, data_dir=args.data_dir, device=args.device,
                                 space=args.space)
    if args.html is not None:
        from tpsearch import dashboards
        result["html"] = str(write_or_refuse("page", args.html, lambda: dashboards.write_evaluation(result, args.html)))
    if args.json:
        emit_json(result)
        return 0
    top5 = "" if result["top5_accuracy"] is None else f", top-5 {result['top5_accuracy']:.4f}"
    print(f"{result['checkpoint']} on {result['dataset']} test ({result['images']:,} images): "
          f"accuracy {result['test_accuracy']:.4f}{top5}")
    if result.get("quantization"):
        from tpsearch.cli._export import quantization_line

        print(quantization_line(result["quantization"], result["test_accuracy"]))
    classes = result["classes"]
    width = max(len(c) for c in classes)
    for c, acc in result["per_class_accuracy"].items():
        print(f"  {c:<{width}}  {'-' if acc is None else f'{acc:.4f}'}")
    if len(classes) > MAX_TABLE_CLASSES:
        print(f"confusion matrix: {len(classes)} classes, too many for a table; see --json or --html")
    else:
        confusion = result["confusion_matrix"]
        cell = max(len(str(n)) for row in confusion for n in row)
        cols = [c[:max(cell, 4)] for c in classes]  # column heads cut to the cells' width, at least 4
        cell = max(cell, *(len(c) for c in cols))
        print("confusion matrix (rows: true class, columns: predicted):")
        print(f"  {'':<{width}}" + "".join(f" {c:>{cell}}" for c in cols))
        for c, row in zip(classes, confusion):
            print(f"  {c:<{width}}" + "".join(f" {n:>{cell}}" for n in row))
    if result.get("html"):
        print(f"wrote {result['html']}", file=sys.stderr)
    return 0
