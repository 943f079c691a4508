"""Cost of knowing a configuration's MACs per image: the analytic count against thop's measurement.

Without an analytic count, `Space.measure_macs` builds the model on the meta device (no weights allocated) and lets
thop run one image through it. Both are measured here on the same configurations, sampled from the space at random,
and their largest disagreement is reported (the contract suite holds it under 1%).

    python benchmarks/bench_macs.py [--space resnet_5m] [--configs 60]

The last line is JSON: seconds per configuration for each way, their ratio and the largest relative difference.
"""
from __future__ import annotations

import argparse
import json
import time

import optuna

from tpsearch import spaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="resnet_5m")
    parser.add_argument("--configs", type=int, default=60, help="configurations measured both ways")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    space = spaces.get(args.space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    archs: list[dict] = []
    for _ in range(args.configs):
        trial = study.ask()
        archs.append(space.suggest(trial))
        study.tell(trial, 0.0)

    repeats = 20  # the analytic count is microseconds: repeat it to rise above the timer's resolution
    t0 = time.perf_counter()
    for _ in range(repeats):
        counted = [space.count_macs(a) for a in archs]
    analytic_s = (time.perf_counter() - t0) / (repeats * len(archs))

    t0 = time.perf_counter()
    measured = [space.measure_macs(a) for a in archs]
    thop_s = (time.perf_counter() - t0) / len(archs)

    worst = max(abs(c - m) / m for c, m in zip(counted, measured))
    print(f"space {space.name}: {len(archs)} configurations, {min(measured):,} to {max(measured):,} MACs per image")
    print(f"analytic count     {analytic_s * 1e6:10.1f} us per configuration")
    print(f"thop (meta device) {thop_s * 1e6:10.1f} us per configuration")
    print(f"ratio              {thop_s / analytic_s:10.0f}x")
    print(f"largest difference {worst:10.2%}")
    print(json.dumps({"space": space.name, "configs": len(archs), "analytic_s_per_config": analytic_s,
                      "thop_s_per_config": thop_s, "ratio": thop_s / analytic_s, "max_relative_error": worst}))


if __name__ == "__main__":
    main()
