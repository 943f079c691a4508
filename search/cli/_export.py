"""`tpsearch export` and `tpsearch evaluate`: the winner of a study as a checkpoint, and a checkpoint on test data."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from search._errors import UsageError
from search._output import emit_json
from search._storage import DEFAULT_STORAGE


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    from search._export import FORMATS, SPLITS

    p = sub.add_parser(
        "export", help="write the best trial of a study (or trial N) as a checkpoint",
        description="Write a feasible completed trial as one checkpoint: the space and architecture, the weights, "
                    "the data set's classes and normalisation, the validation and test accuracy, parameters and "
                    "MACs, and where it came from. It holds tensors and plain containers only, so "
                    "torch.load(path, weights_only=True) reads it; `from search import load_checkpoint` rebuilds "
                    "the model. The weights are those the search kept for the trial, or with --retrain those of "
                    "a training from scratch at full budget, which resumes after a kill when the same command "
                    "runs again.",
        epilog="Example: tpsearch export --study resnet_5m-cifar10 --out best.pt --retrain --epochs 200 "
               "--on train+val --format onnx")
    p.add_argument("--study", default=None, help="study name (default: the only study in the storage)")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="SQLAlchemy URL of the study storage")
    p.add_argument("--trial", type=int, default=None, metavar="N",
                   help="export trial N (default: the best feasible completed trial)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.pt",
                   help="checkpoint to write; its folder is created")
    p.add_argument("--format", dest="formats", action="append", default=[], choices=FORMATS,
                   help="also write FILE.onnx or FILE.torchscript.pt beside it; repeatable")
    p.add_argument("--data-dir", default="data", help="where the study's data set is read from")
    p.add_argument("--no-test", action="store_true", help="do not measure the test accuracy")
    g = p.add_argument_group("retraining")
    g.add_argument("--retrain", action="store_true",
                   help="train the architecture from scratch with its trial's hyperparameters on the whole "
                        "split, instead of using the search's weights")
    g.add_argument("--epochs", type=int, default=None, help="epochs of the retrain (default: the study's)")
    g.add_argument("--on", default="train", choices=SPLITS,
                   help="train+val trains on the validation images too (validation accuracy then means nothing; "
                        "the test accuracy is the measure)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the data split and the retrain (default: the study's, else 0)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from search._export import ExportOptions, export

    try:
        result = export(ExportOptions(
            out=str(args.out), study=args.study, storage=args.storage, trial=args.trial, data_dir=args.data_dir,
            test=not args.no_test, retrain=args.retrain, epochs=args.epochs, on=args.on, seed=args.seed,
            device=args.device, formats=list(dict.fromkeys(args.formats)), progress=not args.no_progress))
    except KeyboardInterrupt:
        hint = "; run the same command again to resume the retrain from its last finished epoch" if args.retrain \
            else ""
        print(f"tpsearch export: interrupted, nothing exported{hint}", file=sys.stderr)
        return 130
    if args.json:
        emit_json(asdict(result))
        return 0
    acc = [f"{name} accuracy {v:.4f}" for name, v in (("validation", result.val_accuracy),
                                                      ("test", result.test_accuracy)) if v is not None]
    print(f"wrote {result.path}: trial {result.trial} of {result.study!r} ({result.source}, {result.epochs} epochs), "
          f"{result.params:,} parameters, {', '.join(acc) or 'accuracy not measured'}")
    for path in (result.onnx, result.torchscript):
        if path:
            print(f"wrote {path}")
    return 0


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    from trainers import DATASETS

    p = sub.add_parser(
        "evaluate", help="test accuracy, per-class accuracy and confusion matrix of an exported checkpoint",
        description="Evaluate a checkpoint written by `tpsearch export` on the test split of its data set (or "
                    "--dataset), normalised as it was trained. The file is read with weights_only=True and its "
                    "weights' SHA-256 checked: a file holding pickled code, truncated or altered is refused.")
    p.add_argument("checkpoint", type=Path, help="checkpoint file (FILE.pt)")
    p.add_argument("--dataset", default=None, choices=list(DATASETS),
                   help="data set to test on (default: the one recorded in the checkpoint)")
    p.add_argument("--data-dir", default="data", help="where the data set is read from")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write the confusion matrix as a self-contained Plotly page")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from search._evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, data_dir=args.data_dir, device=args.device)
    if args.html is not None:
        import dashboards

        try:
            result["html"] = str(dashboards.write_evaluation(result, args.html))
        except OSError as e:
            raise UsageError(f"cannot write the page {str(args.html)!r}: {e.strerror or e}") from None
    if args.json:
        emit_json(result)
        return 0
    print(f"{result['checkpoint']} on {result['dataset']} test ({result['images']:,} images): "
          f"accuracy {result['test_accuracy']:.4f}")
    width = max(len(c) for c in result["classes"])
    for c, acc in result["per_class_accuracy"].items():
        print(f"  {c:<{width}}  {'-' if acc is None else f'{acc:.4f}'}")
    if result.get("html"):
        print(f"wrote {result['html']}", file=sys.stderr)
    return 0
