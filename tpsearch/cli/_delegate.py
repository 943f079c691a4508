"""`tpsearch delegate`: a small exported model answers when its prediction's entropy is low, a large one the rest:
accuracy, share delegated and cost per image at one threshold, or over all of them.

(`tpsearch delegate`: its flags are `DelegateOptions`' fields, one to one, with the defaults from there.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import add_checkpoint_reading, add_json, emit_json, options_from
from tpsearch.cli._registry import command


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
    _print(result, sys.stderr if args.json else sys.stdout)
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


def _row(p: dict[str, Any]) -> str:
    return (f"  {p['threshold']:>10.4g}  {p['accuracy']:>8.2%}  {p['delegated']:>9.1%}  "
            f"{p['cost_macs'] / 1e6:>12,.3f}  {p['cost_ratio']:>8.1%}")


def _print(result: dict[str, Any], stream: TextIO) -> None:
    from tpsearch.dashboards import table_points

    small, large, h = result["small"], result["large"], result["entropy"]
    lines = [f"delegation on {result['dataset']} {result['split']} ({result['images']:,} images); entropy of the "
             f"small model's prediction in nats: {h['min']:.3g} to {h['max']:.3g} (uniform over the classes: "
             f"{h['uniform']:.3g})",
             f"  small {small['checkpoint']}: accuracy {small['accuracy']:.2%}, {small['macs'] / 1e6:,.3f} MMACs",
             f"  large {large['checkpoint']}: accuracy {large['accuracy']:.2%}, {large['macs'] / 1e6:,.3f} MMACs",
             f"  {'threshold':>10}  {'accuracy':>8}  {'delegated':>9}  {'MMACs/image':>12}  {'of large':>8}"]
    if result["point"] is not None:
        lines.append(_row(result["point"]))
    else:
        sweep = result["sweep"]
        shown = table_points(sweep)
        lines += [_row(p) for p in shown]
        if len(shown) < len(sweep):
            lines.append(f"  ({len(shown)} of {len(sweep)} thresholds; --json or --html for all)")
    best = result.get("cheapest_matching")
    if best:
        lines.append(f"as accurate as the large model alone from threshold {best['threshold']:.4g} nats: "
                     f"{best['accuracy']:.2%} at {best['cost_ratio']:.1%} of its cost ({best['delegated']:.1%} "
                     f"delegated)")
    print("\n".join(lines), file=stream)
