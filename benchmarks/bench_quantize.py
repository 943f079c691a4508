"""What quantizing a trained model costs in accuracy and saves in size: full precision, ternary, binary, int8.

One architecture is trained to the end in this process and kept as a one-trial study (`trained_study`, as a search
keeps its best trial); `tpsearch export` then writes it four times, plain and with `--quantize ternary|binary|int8`
(ternary and binary fine-tuned for --quantize-epochs under the same hyperparameters), and `tpsearch evaluate`
measures each file as a user would, over S seeds of the whole pipeline.

    python benchmarks/bench_quantize.py                              # digits, resnet_5m 1 layer x 16 channels
    python benchmarks/bench_quantize.py --seeds 3 --quantize-epochs 5

The last line is JSON: per method the test accuracy (mean and per seed), its drop from full precision in points,
parameters, quantized weights, packed bytes and the ratio to the full-precision bytes. Exits 1 when a method's
mean drop exceeds its bound (--max-drop METHOD=POINTS; by default the tests' bounds: ternary 4, binary 6, int8 2)
or a quantized method packs no smaller than full precision.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _claims import finish  # this script's folder

METHODS = ("full", "ternary", "binary", "int8")
MAX_DROP_POINTS = {"ternary": 4.0, "binary": 6.0, "int8": 2.0}  # as tests/search_tests/export_tests/test_quantize.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--arch", default='{"layers": 1, "blocks": [1], "channels": 16}',
                        help="a resnet_5m architecture, as JSON")
    parser.add_argument("--hparams", default='{"optimizer": "adamw", "batch_size": 64}',
                        help="its training hyperparameters, as JSON (those of the fine-tune too)")
    parser.add_argument("--epochs", type=int, default=10, help="of the full-precision training")
    parser.add_argument("--quantize-epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="of the training and fine-tunes (int8 runs on the CPU)")
    parser.add_argument("--max-drop", action="append", default=[], metavar="METHOD=POINTS",
                        help="a method's largest mean accuracy drop, in points (default: %s)"
                             % ", ".join(f"{k}={v:g}" for k, v in MAX_DROP_POINTS.items()))
    args = parser.parse_args()
    max_drop = dict(MAX_DROP_POINTS)
    for item in args.max_drop:
        method, _, points = item.partition("=")
        if method not in max_drop:
            parser.error(f"--max-drop: the method must be one of {', '.join(max_drop)}, but got {method!r}")
        max_drop[method] = float(points)

    from tpsearch.cli import main as cli
    from tpsearch.testing.search import trained_study

    torch.set_num_threads(1)  # as a search's worker at --cpus-per-trial 1; steadier on a shared machine
    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    for seed in range(args.seeds):
        tmp = Path(tempfile.mkdtemp(prefix="bench_quantize_"))
        started = time.perf_counter()
        storage, _ = trained_study(tmp, json.loads(args.arch), json.loads(args.hparams), epochs=args.epochs,
                                   dataset=args.dataset, seed=seed, device=args.device)
        trained_s = time.perf_counter() - started
        for method in METHODS:
            out = tmp / f"{method}.pt"
            flags = [] if method == "full" else ["--quantize", method]
            if method in ("ternary", "binary"):
                flags += ["--quantize-epochs", str(args.quantize_epochs)]
            started = time.perf_counter()
            exported = _json(cli, ["export", "--storage", storage, "--out", str(out), "--data-dir",
                                   str(tmp / "data"), "--runs-dir", str(tmp / "runs"), "--device", args.device,
                                   "--no-progress", "--json", *flags])
            seconds = time.perf_counter() - started
            evaluated = _json(cli, ["evaluate", str(out), "--json", "--device", args.device])
            q = evaluated["quantization"] or {}
            full_bytes = sum(t.numel() * t.element_size()
                             for t in torch.load(out, weights_only=True)["state_dict"].values())
            runs[method].append({"accuracy": evaluated["test_accuracy"], "params": exported["params"],
                                 "quantized_weights": q.get("quantized_weights", 0),
                                 "bytes": q.get("packed_bytes", full_bytes), "ratio": q.get("ratio", 1.0),
                                 "zero_fraction": q.get("zero_fraction"), "export_s": round(seconds, 2)})
        print(f"seed {seed}: trained in {trained_s:.1f} s; "
              + ", ".join(f"{m} {runs[m][-1]['accuracy']:.4f}" for m in METHODS), flush=True)

    full = statistics.fmean(r["accuracy"] for r in runs["full"])
    rows = {}
    print(f"{'':>8} {'accuracy':>9} {'drop':>6} {'params':>8} {'quantized':>9} {'bytes':>8} {'ratio':>6}")
    for m in METHODS:
        accs = [r["accuracy"] for r in runs[m]]
        last = runs[m][-1]
        rows[m] = {"accuracy": round(statistics.fmean(accs), 4), "per_seed": [round(a, 4) for a in accs],
                   "drop_points": round(100 * (full - statistics.fmean(accs)), 2),
                   "max_drop_points": round(100 * max(f["accuracy"] - r["accuracy"]
                                                      for f, r in zip(runs["full"], runs[m])), 2),
                   "params": last["params"], "quantized_weights": last["quantized_weights"],
                   "bytes": last["bytes"], "ratio": round(last["ratio"], 2),
                   "export_s": round(statistics.fmean(r["export_s"] for r in runs[m]), 2)}
        if last["zero_fraction"] is not None:
            rows[m]["zero_fraction"] = round(statistics.fmean(r["zero_fraction"] for r in runs[m]), 4)
        r = rows[m]
        print(f"{m:>8} {r['accuracy']:>9.4f} {r['drop_points']:>6.2f} {r['params']:>8,} "
              f"{r['quantized_weights']:>9,} {r['bytes']:>8,} {r['ratio']:>5.1f}x")
    claims = []
    for m, bound in max_drop.items():
        claims.append((f"{m} within {bound:g} points of full precision, dropped {rows[m]['drop_points']:g}",
                       rows[m]["drop_points"] <= bound))
        claims.append((f"{m} packs smaller than full precision, {rows[m]['bytes']:,} against "
                       f"{rows['full']['bytes']:,} bytes", rows[m]["bytes"] < rows["full"]["bytes"]))
    finish({"dataset": args.dataset, "arch": json.loads(args.arch), "epochs": args.epochs,
            "quantize_epochs": args.quantize_epochs, "seeds": args.seeds, "device": args.device, "methods": rows},
           claims)


def _json(cli, argv: list[str]) -> dict:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = cli(argv)
    if rc != 0:
        raise SystemExit(f"tpsearch {argv[0]} failed ({rc})")
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


if __name__ == "__main__":
    main()
