"""`tpsearch explain`: SmoothGrad maps of an exported checkpoint on image files or test-split images: PNG overlays
and one page.

(`tpsearch explain`: its flags are `ExplainOptions`' fields, one to one, with the defaults from there.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tpsearch._files import write_or_refuse
from tpsearch.cli._flags import add_checkpoint_reading, add_dataset, add_json, emit_json, options_from
from tpsearch.cli._registry import command


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
