"""Build (or extend) the strategy table: every configuration of `resnet_grid`, trained to the full budget under a
search's real schedule, under two seeds, its validation accuracy recorded at every rung and at the end.

Each run is what a trial of `tpsearch run --space resnet_grid --dataset D --epochs E --train-images T` trains on a
worker (`RunOptions.train_config`: the warm-up, the cosine restarting at ASHA's rungs, scoring at the rungs and the
end), with the trial's initial weights and batches from the table's seed. The simulator (`tpsearch simulate`)
replays searches over the result.

    python benchmarks/build_table.py                      # synthetic-hard on this machine's CPU cores (hours)
    python benchmarks/build_table.py --workers 1 --limit 8    # a few more runs, then stop
    python benchmarks/build_table.py --dataset cifar10 --device cuda --train-images 10000 --out cifar.csv  # a GPU
    python benchmarks/build_table.py --grid '{"lr": [1e6], "layers": [2, 3], "skip_kernel": [3], "weight_decay": [0.0005]}' \
        --out search/simulate/tables/resnet_grid-synthetic-hard-lr1e6.csv  # the guard's diverging runs

Resumable: runs go to TABLE.partK.csv as each finishes (K: the worker), every start skips what the table and its
parts hold, and the end of a build folds the parts into TABLE.csv and rewrites TABLE.json (the schedule, the
machine, the commit, the hours); `--merge` does the same while a build runs, keeping the parts, so a partial table
can be committed as it grows (the parts are never committed). Configurations go in
a fixed shuffled order, both seeds at a time, the weight decay of 5e-4 first: a partial table is a uniform sample of
the grid, and the slice of one weight decay is complete half-way. The last line is JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tpsearch.search.simulate._table import COLUMNS, DEFAULT_TABLE, RUN_KEYS, meta_path
from tpsearch.spaces.resnet_grid import GRID, ResNetGrid, config_id

RUN = dict(dataset="synthetic-hard", epochs=9, train_images=1024, warmup_epochs=0.25, grace_epochs=1,
           reduction_factor=3)


def tasks(seeds: list[int], grid: dict = GRID) -> list[tuple[dict, int]]:
    """Every run, in build order: the configurations of the grid's first weight decay first (a slice that is
    complete long before the whole table is), each slice in a fixed shuffled order, both seeds at a time."""
    order = []
    for decay in grid["weight_decay"][::-1]:
        configs = list(ResNetGrid({**grid, "weight_decay": (decay,)}).configurations())
        random.Random(0).shuffle(configs)
        order += configs
    return [(params, seed) for params in order for seed in seeds]


def parts(table: Path) -> list[Path]:
    return sorted(table.parent.glob(table.stem + ".part*.csv"))


def done(table: Path) -> set[tuple[str, int]]:
    seen: set[tuple[str, int]] = set()
    for path in ([table] if table.is_file() else []) + parts(table):
        rows = pd.read_csv(path, usecols=["config", "seed"])
        seen |= set(zip(rows["config"], rows["seed"].astype(int)))
    return seen


def train_one(params: dict, seed: int, data, opts, device: str) -> list[dict]:
    """One run of one configuration: a row per scoring point (the rungs and the end), or up to where it failed."""
    import torch

    from tpsearch import spaces, trainers

    space = spaces.get("resnet_grid")
    arch = space.arch_of(params, image_size=data.shape["image_size"])
    torch.manual_seed(seed)
    model = space.build(arch, **data.shape)
    config = opts.train_config(space.hparams_of(params), device=device, seed=seed)
    rows, stage = [], [0.0, 0.0]  # seconds of the stage so far, seconds since the start
    base = {"config": config_id(params), "seed": seed, **params,
            "params": space.count_params(arch, **data.shape), "macs": space.count_macs(arch, **data.shape)}

    def report(epoch: trainers.EpochReport) -> None:
        stage[0] += epoch.seconds
        stage[1] += epoch.seconds
        if epoch.val_accuracy is not None:
            rows.append({**base, "epoch": epoch.epoch, "images": epoch.images, "accuracy": epoch.val_accuracy,
                         "seconds": round(stage[0], 4), "elapsed": round(stage[1], 4), "failure": ""})
            stage[0] = 0.0

    result = trainers.train(model, data, config, report)
    if result.status == "failed":
        epoch = result.epochs + 1  # the epoch it failed in
        rows.append({**base, "epoch": epoch, "images": epoch * opts.train_images, "accuracy": "",
                     "seconds": round(stage[0], 4), "elapsed": round(stage[1], 4), "failure": result.failure})
    return rows


def worker(k: int, workers: int, todo: list[tuple[dict, int]], table: str, run: dict, device: str,
           data_dir: str) -> None:
    import torch

    from tpsearch import trainers
    from tpsearch.search._options import RunOptions

    torch.set_num_threads(1)
    opts = RunOptions(space="resnet_grid", **run, device=device, data_dir=data_dir)
    data = trainers.load_dataset(opts.dataset, data_dir, seed=0)
    part = Path(table).parent / f"{Path(table).stem}.part{k}.csv"
    new = not part.exists()
    with part.open("a", newline="") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            out.writeheader()
        for i, (params, seed) in enumerate(todo):
            if i % workers != k:
                continue
            for row in train_one(params, seed, data, opts, device):
                out.writerow(row)
            f.flush()


def merge(table: Path, run: dict, device: str, wall: float, keep_parts: bool = False, grid: dict = GRID) -> dict:
    frames = [pd.read_csv(p, keep_default_na=False) for p in ([table] if table.is_file() else []) + parts(table)]
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(["config", "seed", "epoch"])
    rows = rows.sort_values(["config", "seed", "epoch"]).reset_index(drop=True)[list(COLUMNS)]
    rows.to_csv(table, index=False)
    for p in ([] if keep_parts else parts(table)):  # while a build still appends to them, they stay
        p.unlink()
    old = json.loads(meta_path(table).read_text()) if meta_path(table).is_file() else {}
    from tpsearch import trainers

    data = trainers.load_dataset(run["dataset"], "data", seed=0) if run["dataset"] != "cifar10" else None
    runs = rows.groupby(["config", "seed"]).ngroups
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    import torch

    meta = {
        "space": "resnet_grid", "grid": {k: list(v) for k, v in grid.items()},
        "run": run, "seeds": sorted(int(s) for s in rows["seed"].unique()),
        "shape": old.get("shape") or (data.shape if data else {"num_classes": 10, "in_channels": 3, "image_size": 32}),
        "val_images": old.get("val_images") or (len(data.val_y) if data else 5000),
        "configurations": int(rows["config"].nunique()), "of": len(ResNetGrid(grid)), "runs": runs,
        "cpu_hours": round(rows.groupby(["config", "seed"])["elapsed"].max().sum() / 3600, 3),
        "wall_hours": round(old.get("wall_hours", 0.0) + wall / 3600, 3),
        "device": device, "threads_per_run": 1,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
                   f"{platform.system()} {platform.release()}".replace("  ", " "),
        "torch": torch.__version__, "commits": sorted(set(old.get("commits", [])) | {commit}),
        "built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    meta_path(table).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DEFAULT_TABLE), help="the table (default: the one tpsearch ships)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (one thread each)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--limit", type=int, default=None, help="stop after this many more runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--grid", type=json.loads, default={},
                        help='a slice of the grid to build instead of all of it, as JSON: {"lr": [1e6], ...}')
    parser.add_argument("--merge", action="store_true",
                        help="only fold the parts into the table, keeping them (a build may be appending to them)")
    for key in RUN_KEYS:
        parser.add_argument("--" + key.replace("_", "-"), type=type(RUN[key]), default=RUN[key])
    args = parser.parse_args()
    run = {k: getattr(args, k) for k in RUN_KEYS}
    table = Path(args.out)
    grid = ResNetGrid(args.grid).grid  # refuses values outside the grid (and resnet_grid.BEYOND)
    if meta_path(table).is_file():
        recorded = json.loads(meta_path(table).read_text())["run"]
        if recorded != run:
            sys.exit(f"build_table.py: {table} was built with {recorded}, not {run}: give another --out")
    start = time.time()
    if not args.merge:
        seen = done(table)
        todo = [t for t in tasks(args.seeds, grid) if (config_id(t[0]), t[1]) not in seen][:args.limit]
        print(f"{len(seen)} runs in the table, {len(todo)} to train on {args.workers} workers", file=sys.stderr)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=worker, args=(k, args.workers, todo, str(table), run, args.device, args.data_dir))
                 for k in range(args.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    meta = merge(table, run, args.device, 0.0 if args.merge else time.time() - start, keep_parts=args.merge, grid=grid)
    rows = pd.read_csv(table, keep_default_na=False, na_values={"accuracy": [""]})
    print(json.dumps({"table": str(table), "configurations": meta["configurations"], "of": meta["of"],
                      "runs": meta["runs"], "rows": len(rows), "cpu_hours": meta["cpu_hours"]}))


if __name__ == "__main__":
    main()
