"""How far to trust the latency a worker measures, and what measuring it costs a trial.

For each architecture: `trial_latency` (what a search's worker runs before training, and what `--max-latency-ms`
compares) repeated R times; the spread of one measurement (its coefficient of variation over 20 timed passes) and
of the medians across the R measurements (what a user comparing two runs sees). Then one trial trained at the given
fidelity, timed, against one latency check: the check's cost as a share of a trial.

    python benchmarks/bench_latency.py                                   # CPU, CIFAR-shaped synthetic data
    python benchmarks/bench_latency.py --device cuda --dataset cifar10   # on a GPU

The last line is JSON: per architecture `median_ms`, `cv_within` (mean over the measurements), `cv_across` (of the
medians), `check_s`, and `trial_s` with `check_share` (check_s / trial_s) for the trained one. Exits 1 when the
check costs more than --max-check-share of the trial (the claim that makes it affordable in every trial) or a
median latency is not a positive number of milliseconds.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from _claims import finish  # this script's folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", default="synthetic",
                        help="its shape (synthetic: 32x32x3, as CIFAR-10), and the data of the timed trial")
    parser.add_argument("--presets", default="tiny,resnet20", help="presets of resnet_5m, comma-separated")
    parser.add_argument("--repeats", type=int, default=10, help="latency measurements per architecture")
    parser.add_argument("--epochs", type=int, default=3, help="of the timed trial")
    parser.add_argument("--train-images", type=int, default=1024, help="of the timed trial")
    parser.add_argument("--max-check-share", type=float, default=0.10,
                        help="the latency check's largest share of the timed trial (default: %(default)s)")
    args = parser.parse_args()

    from tpsearch import spaces, trainers
    from tpsearch.search._worker import trial_latency

    torch.set_num_threads(1)  # as a search's worker at --cpus-per-trial 1
    space = spaces.get("resnet_5m")
    data = trainers.load_dataset(args.dataset, "data", seed=0)
    shape = data.shape
    rows = {}
    for name in args.presets.split(","):
        arch = space.validate(space.preset(name), in_channels=data.in_channels, image_size=data.image_size)
        checks, started = [], time.perf_counter()
        for _ in range(args.repeats):
            checks.append(trial_latency(space, arch, shape, args.device))
        check_s = (time.perf_counter() - started) / args.repeats
        medians = [c["latency_ms"] for c in checks]
        rows[name] = {"params": space.count_params(arch, **shape), "median_ms": round(statistics.median(medians), 4),
                      "cv_within": round(statistics.fmean(c["latency_cv"] for c in checks), 3),
                      "cv_across": round(statistics.pstdev(medians) / statistics.fmean(medians), 3),
                      "throughput": round(statistics.median(c["throughput"] for c in checks)),
                      "check_s": round(check_s, 4)}
        print(f"{name:>8}: {rows[name]['median_ms']:.3f} ms at batch 1, cv {rows[name]['cv_within']:.2f} within "
              f"a measurement, {rows[name]['cv_across']:.2f} across {args.repeats}; check {check_s:.3f} s", flush=True)

    first = args.presets.split(",")[0]
    arch = space.validate(space.preset(first), in_channels=data.in_channels, image_size=data.image_size)
    torch.manual_seed(0)
    model = space.build(arch, **shape)
    config = trainers.TrainConfig(epochs=args.epochs, train_images=min(args.train_images, len(data.train_y)),
                                  device=args.device, eval_epochs=())
    started = time.perf_counter()
    trainers.train(model, data, config)
    trial_s = time.perf_counter() - started
    rows[first]["trial_s"] = round(trial_s, 3)
    rows[first]["check_share"] = round(rows[first]["check_s"] / trial_s, 4)
    print(f"a {args.epochs}-epoch trial of {first} on {config.train_images} images: {trial_s:.2f} s; the latency "
          f"check is {rows[first]['check_share']:.1%} of it", flush=True)
    share = rows[first]["check_share"]
    finish({"device": args.device, "dataset": args.dataset, "machine": platform.machine(), "architectures": rows},
           [(f"the latency check at most {args.max_check_share:.1%} of a trial, measured {share:.1%}",
             share <= args.max_check_share),
            *((f"{name}: a positive median latency, measured {row['median_ms']} ms", row["median_ms"] > 0)
              for name, row in rows.items())])


if __name__ == "__main__":
    main()
