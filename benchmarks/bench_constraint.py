"""Cost of knowing a configuration's parameter count: the analytic count against build-and-count.

A user without an analytic count would build each sampled model and sum `p.numel()`: that allocates and
initialises every weight. Both are measured here on the same configurations, sampled from the space at random.

    python benchmarks/bench_constraint.py [--space resnet_5m] [--configs 60] [--max-build-params 12000000]

The last line is JSON: seconds per configuration for each way, and their ratio.
"""
from __future__ import annotations

import argparse
import json
import time

import optuna
import torch

from tpsearch import spaces
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="resnet_5m")
    parser.add_argument("--configs", type=int, default=60, help="configurations measured both ways")
    parser.add_argument("--max-params", type=int, default=5_000_000, help="the budget")
    parser.add_argument("--max-build-params", type=int, default=12_000_000,
                        help="configurations measured are drawn below this size, so that building them stays "
                             "affordable; the space's larger ones would only favour the analytic count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.manual_seed(args.seed)

    space = spaces.get(args.space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    archs: list[dict] = []
    while len(archs) < args.configs:
        trial = study.ask()
        arch = space.suggest(trial)
        study.tell(trial, 0.0)
        if space.count_params(arch) <= args.max_build_params:
            archs.append(arch)

    repeats = 20
    t0 = time.perf_counter()
    for _ in range(repeats):
        analytic = [space.count_params(a) <= args.max_params for a in archs]
    analytic_s = (time.perf_counter() - t0) / (repeats * len(archs))

    t0 = time.perf_counter()
    built = [sum(p.numel() for p in space.build(a).parameters()) <= args.max_params for a in archs]
    build_s = (time.perf_counter() - t0) / len(archs)

    assert analytic == built, "the analytic count and the built model disagree on feasibility"
    feasible = sum(analytic)
    print(f"space {space.name}: {len(archs)} configurations ({feasible} under {args.max_params:,} parameters)")
    print(f"analytic count   {analytic_s * 1e6:10.1f} us per configuration")
    print(f"build and count  {build_s * 1e6:10.1f} us per configuration")
    print(f"ratio            {build_s / analytic_s:10.0f}x")
    print(json.dumps({"space": space.name, "configs": len(archs), "feasible": feasible,
                      "analytic_s_per_config": analytic_s, "build_s_per_config": build_s,
                      "ratio": build_s / analytic_s}))


if __name__ == "__main__":
    main()
