"""Cost of knowing a configuration's parameter count: the analytic count against build-and-count.

Two baselines. The naive one builds each sampled model and sums `p.numel()`, which allocates and initialises every
weight. The fair one is what tpsearch's own tests do: build on `torch.device("meta")` (shapes only, no storage, no
initialisation) and sum `numel()`. All three are measured here on the same configurations, sampled from the space
at random, and must agree on every configuration's count (and so its feasibility): a count that is off passes a
feasibility check whenever no sampled configuration lies between it and the truth.

    python benchmarks/bench_constraint.py [--space resnet_5m] [--configs 60] [--max-build-params 12000000]

The last line is JSON: seconds per configuration for each way, and the ratios `ratio_meta` (the fair baseline
over the analytic count) and `ratio` (the naive one over it). Exits 1 when the counts or the feasibility they give
disagree on a configuration, or the analytic count is not --min-ratio times faster than the meta-device count.
"""
from __future__ import annotations

import argparse
import time

import optuna
import torch

from tpsearch import spaces

from _claims import finish  # this script's folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="resnet_5m")
    parser.add_argument("--configs", type=int, default=60, help="configurations measured both ways")
    parser.add_argument("--max-params", type=int, default=5_000_000, help="the budget")
    parser.add_argument("--max-build-params", type=int, default=12_000_000,
                        help="configurations measured are drawn below this size, so that building them stays "
                             "affordable; the space's larger ones would only favour the analytic count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-ratio", type=float, default=10.0,
                        help="how many times faster than the meta-device count the analytic count must be "
                             "(default: %(default)s)")
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
        counted = [space.count_params(a) for a in archs]
    analytic_s = (time.perf_counter() - t0) / (repeats * len(archs))
    analytic = [c <= args.max_params for c in counted]

    t0 = time.perf_counter()
    built_counts = [sum(p.numel() for p in space.build(a).parameters()) for a in archs]
    build_s = (time.perf_counter() - t0) / len(archs)
    built = [c <= args.max_params for c in built_counts]

    t0 = time.perf_counter()
    meta_counts = []
    for a in archs:
        with torch.device("meta"):
            model = space.build(a)
        meta_counts.append(sum(p.numel() for p in model.parameters()))
    meta_s = (time.perf_counter() - t0) / len(archs)
    meta = [c <= args.max_params for c in meta_counts]
    off = sum(c != b for c, b in zip(counted, built_counts))
    off_meta = sum(c != m for c, m in zip(counted, meta_counts))
    worst = max(abs(c - b) / b for c, b in zip(counted, built_counts))

    feasible = sum(analytic)
    print(f"space {space.name}: {len(archs)} configurations ({feasible} under {args.max_params:,} parameters)")
    print(f"analytic count            {analytic_s * 1e6:10.1f} us per configuration")
    print(f"build on meta and count   {meta_s * 1e6:10.1f} us per configuration   "
          f"({meta_s / analytic_s:.0f}x the analytic count: the fair baseline)")
    print(f"build for real and count  {build_s * 1e6:10.1f} us per configuration   "
          f"({build_s / analytic_s:.0f}x: weights allocated and initialised)")
    finish({"space": space.name, "configs": len(archs), "feasible": feasible, "analytic_s_per_config": analytic_s,
            "meta_s_per_config": meta_s, "build_s_per_config": build_s, "ratio_meta": meta_s / analytic_s,
            "ratio": build_s / analytic_s, "counts_differing": off, "max_relative_error": worst},
           [(f"the analytic count equals the built model's on every configuration, {off} of {len(archs)} differ "
             f"(worst by {worst:.2%})", off == 0),
            (f"the analytic count equals the meta-device count on every configuration, {off_meta} differ",
             off_meta == 0),
            ("the analytic count and the built model agree on feasibility", analytic == built),
            ("the analytic count and the meta-device count agree on feasibility", analytic == meta),
            (f"analytic count at least {args.min_ratio:g}x faster than the meta-device count, measured "
             f"{meta_s / analytic_s:.0f}x", meta_s / analytic_s >= args.min_ratio)])


if __name__ == "__main__":
    main()
