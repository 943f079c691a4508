"""Cost of knowing a configuration's MACs per image: the analytic count against thop's measurement.

Without an analytic count, `Space.measure_macs` builds the model on the meta device (no weights allocated) and lets
thop run one image through it. Both are measured here on the same configurations, sampled from the space at random,
and their largest disagreement is reported (the contract suite holds it under 1%).

    python benchmarks/bench_macs.py [--space resnet_5m] [--configs 60] [--max-error 0.01] [--min-ratio 100]

The last line is JSON: seconds per configuration for each way, their ratio and the largest relative difference.
Exits 1 when the largest difference is above --max-error or the analytic count is not --min-ratio times faster.
"""
from __future__ import annotations

import argparse
import time

import optuna

from tpsearch import spaces

from _claims import finish  # this script's folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="resnet_5m")
    parser.add_argument("--configs", type=int, default=60, help="configurations measured both ways")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-error", type=float, default=0.01,
                        help="largest relative difference allowed, as the contract suite (default: %(default)s)")
    parser.add_argument("--min-ratio", type=float, default=100.0,
                        help="how many times faster the analytic count must be (default: %(default)s)")
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
    finish({"space": space.name, "configs": len(archs), "analytic_s_per_config": analytic_s,
            "thop_s_per_config": thop_s, "ratio": thop_s / analytic_s, "max_relative_error": worst},
           [(f"analytic count within {args.max_error:.2%} of thop's, worst {worst:.2%}", worst <= args.max_error),
            (f"analytic count at least {args.min_ratio:g}x faster than thop, measured {thop_s / analytic_s:.0f}x",
             thop_s / analytic_s >= args.min_ratio)])


if __name__ == "__main__":
    main()
