"""Is a search's fidelity a fair judge? `tpsearch calibrate` on K sampled configurations: the search's own training
(scored at ASHA's rungs and at its end) against a longer one, and the longer one against itself under another seed.

Runs the command itself (`python -m tpsearch calibrate ... --json`) as a user would, and reads its JSON line.
Offline by default: `synthetic-hard` (16x16, 10 classes of 4 shifted fine-grained templates under heavy noise,
1,000 validation images), where small and large networks differ by tens of points; digits would be a weak judge
(143 validation images, one image = 0.7%, and most networks reach 98-100%, so ranks drown in noise).

    python benchmarks/bench_fidelity.py                                      # CPU, offline: about 17 min on a core
    python benchmarks/bench_fidelity.py --dataset cifar10 --device cuda      # the same on CIFAR-10 on a GPU
    python benchmarks/bench_fidelity.py --dataset digits                     # digits, for contrast

The last line is JSON: `spearman`, `kendall`, `topk_overlap`, `low_s`, `high_s`, their intervals, `rungs` and
`ceiling` (as `tpsearch calibrate --json` has them), then the setting and the spread
of the accuracies (the room between architectures, next to what one validation image is worth). Exits 1 when the
end-of-search ranking's Spearman correlation with the longer training is below --min-spearman (default 0: a
fidelity that ranks no better than chance judges nothing), or when calibrate fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from _claims import finish  # this script's folder

# Per data set: a search's fidelity (`tpsearch run`'s --epochs, --train-images, ASHA's rungs after epochs 1 and 3)
# against a longer training that is judged to be the truth. synthetic-hard's is the README's figure: under these
# budgets the 16 draws of seed 1 spread over one, two and three layers (seed 0's over one and two only).
SETTINGS = {
    "synthetic-hard": dict(k=16, seed=1, max_params=1_000_000, max_macs=40_000_000, epochs=4, train_images=1000,
                           high_epochs=8, high_train_images=2000),
    # For contrast only: the weak judge the module docstring describes.
    "digits": dict(k=16, seed=0, max_params=100_000, max_macs=None, epochs=4, train_images=500, high_epochs=8,
                   high_train_images=1295),
    "cifar10": dict(k=16, seed=0, max_params=5_000_000, max_macs=None, epochs=5, train_images=10_000, high_epochs=15,
                    high_train_images=None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic-hard", choices=list(SETTINGS))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    parser.add_argument("--data-dir", default="data", help="where CIFAR-10 is (default: %(default)s)")
    parser.add_argument("--html", default=None, metavar="PAGE", help="also write the calibration page here")
    parser.add_argument("--min-spearman", type=float, default=0.0,
                        help="the end-of-search ranking's least Spearman correlation (default: %(default)s)")
    for key in ("k", "seed", "max_params", "max_macs", "epochs", "train_images", "high_epochs", "high_train_images"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                            help="(default: per data set, see SETTINGS)")
    args = parser.parse_args()
    setting = dict(SETTINGS[args.dataset])
    setting.update({k: getattr(args, k) for k in setting if getattr(args, k) is not None})

    command = [sys.executable, "-m", "tpsearch", "calibrate", "--dataset", args.dataset, "--device", args.device,
               "--data-dir", args.data_dir, "--cpus-per-trial", "1", "--json"]
    for key, value in setting.items():
        if value is not None:
            command += ["--" + key.replace("_", "-"), str(value)]
    if args.html:
        command += ["--html", args.html]
    shown = " ".join(["tpsearch", *command[3:]])
    print(f"running: {shown}", flush=True)
    # Other processes on the machine slow a CPU run: the 1-minute load average before and after says how busy it was.
    load = [round(os.getloadavg()[0], 2)]
    started = time.perf_counter()
    # The progress bar goes straight to this terminal; the JSON line is read from stdout.
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - started
    load.append(round(os.getloadavg()[0], 2))
    if done.returncode != 0:
        raise SystemExit(f"tpsearch calibrate exited with {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])

    rows = result["architectures"]
    high = [r["high_accuracy"] for r in rows]
    low = [r["low_accuracy"] for r in rows]
    val_images = _val_images(args.dataset, args.data_dir, setting["seed"])
    machine = f"{platform.machine()}, {os.cpu_count()} cores" if args.device == "cpu" else _gpu_name(args.device)
    print(f"\n{result['space']} on {result['dataset']}, {result['device']} ({machine}); {result['k']} configurations")
    print(f"low:  {result['low']['epochs']} epochs on {result['low']['images']:,} images  {result['low_s']:8.1f} s")
    print(f"high: {result['high']['epochs']} epochs on {result['high']['images']:,} images  {result['high_s']:8.1f} s")
    print(f"{'#':>3} {'parameters':>11} {'low acc':>8} {'low rank':>8} {'high acc':>8} {'high rank':>9}")
    from tpsearch.study import average_ranks

    low_rank, high_rank = average_ranks([-a for a in low]), average_ranks([-a for a in high])
    for i in sorted(range(len(rows)), key=lambda i: high_rank[i]):
        r = rows[i]
        print(f"{r['index']:>3} {r['params']:>11,} {r['low_accuracy']:>8.2%} {low_rank[i]:>8g} "
              f"{r['high_accuracy']:>8.2%} {high_rank[i]:>9g}")
    for rung in result["rungs"]:
        print(f"rung at epoch {rung['epochs']}: Spearman {rung['spearman']} {rung['spearman_ci']}, Kendall "
              f"{rung['kendall']} {rung['kendall_ci']}, top-{result['top_k']} overlap {rung['topk_overlap']:.0%}")
    if result["ceiling"]:
        c = result["ceiling"]
        print(f"noise ceiling: Spearman {c['spearman']} {c['spearman_ci']}, Kendall {c['kendall']} {c['kendall_ci']}")
    print(f"end: Spearman {result['spearman']}, Kendall {result['kendall']}, top-{result['top_k']} overlap "
          f"{result['topk_overlap']:.0%}; high-fidelity accuracies span {min(high):.1%}..{max(high):.1%} "
          f"(one validation image = {1 / val_images:.2%}); {wall:.0f} s in all")
    spearman = result["spearman"]
    finish({
        "spearman": result["spearman"], "kendall": result["kendall"], "topk_overlap": result["topk_overlap"],
        "low_s": result["low_s"], "high_s": result["high_s"], "top_k": result["top_k"], "k": result["k"],
        "dataset": result["dataset"], "device": result["device"], "machine": machine,
        "spearman_ci": result["spearman_ci"], "kendall_ci": result["kendall_ci"], "rungs": result["rungs"],
        "ceiling": result["ceiling"],
        "low": result["low"], "high": result["high"], "max_params": setting["max_params"], "seed": setting["seed"],
        "high_accuracy_min": min(high), "high_accuracy_max": max(high), "low_accuracy_min": min(low),
        "low_accuracy_max": max(low), "val_images": val_images, "wall_s": round(wall, 1), "load_avg": load,
        "html": result.get("html")},
        [(f"Spearman at the search's end at least {args.min_spearman:+g}, measured {spearman}",
          spearman is not None and spearman >= args.min_spearman)])


def _val_images(dataset: str, data_dir: str, seed: int) -> int:
    from tpsearch.trainers import load_dataset

    return len(load_dataset(dataset, data_dir, seed=seed, download=False).val_y)


def _gpu_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(torch.device(device))


if __name__ == "__main__":
    main()
