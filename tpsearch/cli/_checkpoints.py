"""The commands that read exported checkpoints: `tpsearch evaluate` (the test split: accuracy, per class,
the confusion matrix), `tpsearch explain` (SmoothGrad maps on image files or test-split images: PNG
overlays and one page) and `tpsearch delegate` (a small model answers when its prediction's entropy is
low, a large one the rest: accuracy, share delegated and cost per image).

Each command's flags are its options' fields (`ExplainOptions`, `DelegateOptions`), one to one, with the
defaults from there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import add_checkpoint_reading, add_dataset, add_json, emit_json, options_from
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


def _explain_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.checkpoints import EXPLAIN_METHODS as METHODS, ExplainOptions

    d = ExplainOptions("", test_images=1)
    p.add_argument("checkpoint", help="checkpoint file (FILE.pt, written by `tpsearch export`)")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files (any PIL reads), converted to the model's channels and resized to its image size")
    add_dataset(p, None, help="data set whose test split --index and --test-images read (default: the "
                              "checkpoint's)")
    p.add_argument("--index", type=int, nargs="+", default=[], metavar="I",
                   help="explain these images of the test split (positions, from 0)")
    p.add_argument("--test-images", type=int, default=None, metavar="N",
                   help="explain the first N images of the test split")
    p.add_argument("--out", type=Path, default=Path("explain.html"), metavar="FILE.html",
                   help="the page; the PNG overlays go beside it")
    p.add_argument("--method", choices=METHODS, default=d.method,
                   help="smoothgrad, or vanilla: the plain gradient, post-processed the same way")
    p.add_argument("--samples", type=int, default=d.samples, help="noisy copies per image (smoothgrad)")
    p.add_argument("--noise", type=float, default=d.noise,
                   help="sigma of the noise as a fraction of each input's range, max - min (smoothgrad)")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="explain this class (a name or an index) on every image (default: each image's predicted "
                        "class)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the noise")
    add_checkpoint_reading(p)
    add_json(p)


@command(160, "explain", _explain_flags)
def run_explain(args: argparse.Namespace) -> int:
    """SmoothGrad sensitivity maps of an exported checkpoint: PNG overlays and one page

    Which pixels does the model's answer depend on? For each image: the gradient of the predicted (or --target) class
    logit with respect to the input, averaged over --samples copies with Gaussian noise of sigma --noise x (max - min)
    of that input (SmoothGrad, Smilkov et al. 2017); its absolute value clipped at the 99th percentile, summed over
    channels, scaled to 0..1. Writes one PNG overlay per image beside the page (maps.html: maps_0.png, ...).

    Example: tpsearch explain best.pt cat.png dog.jpg --out maps.html; tpsearch explain best.pt --test-images 8 --out
    maps.html
    """
    from tpsearch import dashboards
    from tpsearch.dashboards import captions
    from tpsearch.checkpoints import ExplainOptions, explain

    opts = options_from(ExplainOptions, args, checkpoint=str(args.checkpoint), images=[str(p) for p in args.images])
    result = explain(opts)
    page = write_or_refuse("page", args.out, lambda: dashboards.write_explanation(result, args.out))
    pngs = write_or_refuse("overlays", args.out, lambda: dashboards.write_overlays(result, args.out))
    out = result.to_dict()
    out["html"] = str(page)
    for row, png in zip(out["images"], pngs):
        row["png"] = str(png)
    stream = sys.stderr if args.json else sys.stdout
    settings = (f"{result.samples} samples, noise {result.noise:g}" if result.method == "smoothgrad"
                else "plain gradient")
    print(f"{result.checkpoint} ({result.dataset}): {result.method} maps ({settings}) of {len(pngs)} image(s)",
          file=stream)
    for caption, png in zip(captions(result), pngs):
        print(f"  {caption}  -> {png}", file=stream)
    print(f"wrote {page}", file=sys.stderr)
    if args.json:
        emit_json(out)
    return 0


def _delegate_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.checkpoints import DELEGATE_SPLITS as SPLITS, DelegateOptions

    d = DelegateOptions("", "", sweep=True)
    p.add_argument("small", help="the small model's checkpoint (FILE.pt)")
    p.add_argument("large", help="the large model's checkpoint (FILE.pt)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, metavar="H",
                   help="the small model answers where its prediction's entropy is at most H nats")
    g.add_argument("--sweep", action="store_true",
                   help="every threshold from 0 to the largest entropy (each distinct entropy): a table")
    p.add_argument("--split", choices=SPLITS, default=d.split,
                   help="the images: test, or val (the validation split both were drawn with)")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write accuracy vs cost and vs threshold as a self-contained Plotly page (with "
                        "--threshold too: its point marked on the curve)")
    add_checkpoint_reading(p)
    add_json(p)


@command(170, "delegate", _delegate_flags)
def run_delegate(args: argparse.Namespace) -> int:
    """a small checkpoint that hands its doubtful images to a large one: accuracy vs cost

    Both checkpoints (written by `tpsearch export`, on the same data set) classify the test split (or --split val). The
    small model answers the images where the entropy of its softmax prediction is at most --threshold H, in nats (0:
    certain; ln K: uniform over K classes), and delegates the others to the large model. Reports the accuracy, the share
    delegated and the cost per image in MACs: small's + share delegated x large's (the small model always runs), and its
    ratio to the large model's. --sweep tries every threshold from 0 to the largest entropy.

    Example: tpsearch delegate small.pt large.pt --sweep --html delegate.html
    """
    from tpsearch.checkpoints import DelegateOptions, delegate

    opts = options_from(DelegateOptions, args)
    result = delegate(opts)
    if args.html is not None:
        from tpsearch import dashboards

        result["html"] = str(write_or_refuse("page", args.html, lambda: dashboards.write_delegation(result, args.html)))
    _print_delegation(result, sys.stderr if args.json else sys.stdout)
    if result["small"]["macs"] >= result["large"]["macs"]:
        print(f"note: the small model costs {result['small']['macs']:,.0f} MACs per image, no less than the large "
              f"one's {result['large']['macs']:,.0f}: delegating cannot save anything", file=sys.stderr)
    if result.get("html"):
        print(f"wrote {result['html']}", file=sys.stderr)
    if args.json:
        if not opts.sweep:
            result = {**result, "sweep": None}  # one threshold asked: its point, not the whole curve
        emit_json(result)
    return 0


def _delegation_row(p: dict[str, Any]) -> str:
    return (f"  {p['threshold']:>10.4g}  {p['accuracy']:>8.2%}  {p['delegated']:>9.1%}  "
            f"{p['cost_macs'] / 1e6:>12,.3f}  {p['cost_ratio']:>8.1%}")


def _print_delegation(result: dict[str, Any], stream: TextIO) -> None:
    from tpsearch.dashboards import table_points

    small, large, h = result["small"], result["large"], result["entropy"]
    lines = [f"delegation on {result['dataset']} {result['split']} ({result['images']:,} images); entropy of the "
             f"small model's prediction in nats: {h['min']:.3g} to {h['max']:.3g} (uniform over the classes: "
             f"{h['uniform']:.3g})",
             f"  small {small['checkpoint']}: accuracy {small['accuracy']:.2%}, {small['macs'] / 1e6:,.3f} MMACs",
             f"  large {large['checkpoint']}: accuracy {large['accuracy']:.2%}, {large['macs'] / 1e6:,.3f} MMACs",
             f"  {'threshold':>10}  {'accuracy':>8}  {'delegated':>9}  {'MMACs/image':>12}  {'of large':>8}"]
    if result["point"] is not None:
        lines.append(_delegation_row(result["point"]))
    else:
        sweep = result["sweep"]
        shown = table_points(sweep)
        lines += [_delegation_row(p) for p in shown]
        if len(shown) < len(sweep):
            lines.append(f"  ({len(shown)} of {len(sweep)} thresholds; --json or --html for all)")
    best = result.get("cheapest_matching")
    if best:
        lines.append(f"as accurate as the large model alone from threshold {best['threshold']:.4g} nats: "
                     f"{best['accuracy']:.2%} at {best['cost_ratio']:.1%} of its cost ({best['delegated']:.1%} "
                     f"delegated)")
    print("\n".join(lines), file=stream)
