"""What runs on a Ray Tune worker: build the sampled architecture, train it, report every epoch.

The worker never opens the study storage (only the driver writes it, which keeps SQLite safe with many workers
and on a cluster). It reports plain dicts through Ray Tune; the last report of a completed trial carries its
weights (the bytes of a checkpoint file), which the driver writes: nothing this node writes outlives the trial.

A trial that runs out of memory is trained once more, from scratch, at half the batch size, on the same worker
(after freeing what the first attempt held): on a shared GPU the first failure may be a neighbour's doing, and a
smaller batch may fit. The learning rate follows the optimiser's scaling rule (`TrainConfig.halved`). No retry goes
below the space's smallest batch size. The reports say which batch size trained (`batch_size`) and why it changed
(`oom_retry`); a trial that still runs out of memory ends with `failure: "out of memory"`, one whose loss stopped
being finite with `failure: "diverged"`, and the driver tells the study accordingly.

Where the search asks for latency (`--objectives ...,latency` or `--max-latency-ms`; `times_latency`), the worker
times the model's inference on its own device before training (`trial_latency`: batch 1 and a throughput batch);
every report then carries the figures, and a model slower than `--max-latency-ms` at batch 1 ends there with
`failure: "too slow"`, having cost a fraction of a second instead of a training run. Otherwise nothing is timed:
the two timings cost each trial two more shapes for cuDNN to autotune and a second of GPU time, and no trial then
carries `latency_ms` (the dashboards and `status` draw latency only for studies that measured it).
"""
from __future__ import annotations

import gc
import os
import socket
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

from tpsearch import spaces
from tpsearch.search._options import CHECKPOINT_BYTES, METRIC, RunOptions
from tpsearch.study import TOO_SLOW
from tpsearch.trainers import OUT_OF_MEMORY

THROUGHPUT_BATCH = {"cuda": 256, "cpu": 32}  # images per pass for the throughput figure; small on the CPU: it is slow

if TYPE_CHECKING:
    from tpsearch.trainers import Dataset, TrainConfig, TrainResult


def run_trial(config: dict[str, Any], *, opts: RunOptions, space: spaces.Space) -> None:
    """The Ray Tune function trainable. `config` holds `arch`, `hparams`, `trial_number` and `checkpoint` (whether
    the last report carries the weights), `seed` where the trial has its own (its initial weights and batches;
    else the run's seed, the initial weights offset by the trial's number)."""
    from ray import tune

    from tpsearch import trainers

    torch.set_num_threads(max(1, int(opts.cpus_per_trial)))
    data = trainers.load_dataset(opts.dataset, opts.data_dir, seed=opts.seed)
    device = trial_device(opts)
    trial = _Trial(config, opts, space, data, {"macs": space.count_macs(config["arch"], **data.shape),
                                               **placement(), "device": device})
    train_config = opts.train_config(config["hparams"], device=device,
                                     **({"seed": config["seed"]} if "seed" in config else {}))
    try:
        if times_latency(opts):
            trial.base.update(trial_latency(space, config["arch"], data.shape, device))
        if opts.max_latency_ms is not None and trial.base["latency_ms"] > opts.max_latency_ms:
            tune.report({**trial.base, "epoch": 0, METRIC: 0.0, "status": "failed", "failure": TOO_SLOW,
                         "reason": f"{trial.base['latency_ms']:.3g} ms per image at batch 1 on {device}, over "
                                   f"--max-latency-ms {opts.max_latency_ms:g}"})
            return
        result = trial.train(train_config)
        reason = result.reason
        if result.failure == OUT_OF_MEMORY:
            result, reason = _retry_at_half_batch(trial, train_config, result)
    finally:
        # Whatever ended the trial (done, stopped by ASHA, failed): the next trial of this reused worker, and the
        # neighbours on a shared GPU, get its memory back, and a compiled model's graphs do not pile up.
        free_memory(device)
        if opts.compile:
            torch.compiler.reset()
    if result.status == "failed":
        # No `images` here: ASHA reads only reports that carry its time attribute, and this one is no rung's score.
        tune.report({**trial.base, "epoch": trial.reported, METRIC: result.val_accuracy or 0.0,
                     "status": result.status, "reason": reason, "failure": result.failure})


def times_latency(opts: RunOptions) -> bool:
    """Whether a trial's inference is timed: only where an objective or a limit reads the figure."""
    return "latency" in opts.objectives or opts.max_latency_ms is not None


def trial_latency(space: spaces.Space, arch: dict[str, Any], shape: dict[str, int], device: str) -> dict[str, Any]:
    """The model's inference on `device`, as the trainer runs it there: the median milliseconds of one image
    (`latency_ms`, with its coefficient of variation) and the images per second of a larger batch (`throughput`)."""
    from tpsearch import trainers
    from tpsearch.trainers import native_bf16

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    model = space.build(arch, **shape)
    how = dict(in_channels=shape["in_channels"], image_size=shape["image_size"], device=dev, channels_last=cuda,
               bf16=cuda and native_bf16(dev))
    one = trainers.measure_latency(model, batch=1, repeats=20, **how)
    many = trainers.measure_latency(model, batch=THROUGHPUT_BATCH[dev.type], warmup=1, repeats=5, **how)
    return {"latency_ms": one.median_ms, "latency_cv": one.cv, "throughput": many.images_per_s,
            "throughput_batch": many.batch}


def trial_device(opts: RunOptions) -> str:
    """The device Ray gave this trial: "cuda" (the GPU or fraction it was assigned; Ray hides the others) or "cpu".

    With no GPU assigned the trial runs on the CPU even where CUDA is visible, never on an unaccounted `cuda:0`. A
    fraction of a GPU caps this process's share of its memory, so that neighbours packed on it keep theirs.
    """
    from tpsearch import trainers

    try:
        import ray

        gpus = ray.get_gpu_ids() if ray.is_initialized() else None
    except Exception:  # outside a Ray worker (a test calling run_trial directly)
        gpus = None
    if gpus is None:
        return str(trainers.resolve_device(opts.device))
    if not gpus:
        if opts.device.startswith("cuda"):
            raise RuntimeError(f"--device {opts.device}, but Ray assigned this trial no GPU: give --gpus-per-trial")
        return "cpu"
    if opts.device == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise RuntimeError(f"Ray assigned GPU {gpus} to this trial, but torch sees no CUDA device here (a CPU-only "
                           f"torch build, or a driver problem): the trial cannot use it")
    share = gpu_share()
    if 0 < share < 1:  # Ray's own figure: with --gpus-per-trial auto the options hold no number
        torch.cuda.set_per_process_memory_fraction(share)
    return "cuda"


def gpu_share() -> float:
    """The GPUs Ray assigned to this trial (a fraction where trials share one); 0 outside a Ray worker."""
    try:
        import ray

        return float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
    except Exception:  # outside a Ray worker
        return 0.0


def _retry_at_half_batch(trial: "_Trial", config: "TrainConfig", failed: "TrainResult") -> tuple["TrainResult", str]:
    """The second attempt of a trial that ran out of memory; the result to report and its reason."""
    smallest = trial.space.smallest_batch_size()
    if config.batch_size // 2 < smallest:
        return failed, f"{failed.reason}, the smallest batch size of the space ({smallest}): no smaller one to try"
    free_memory(config.device)
    result = trial.train(config.halved(), oom_retry=failed.reason)
    again = result.failure == OUT_OF_MEMORY
    return result, (f"{result.reason}, after {failed.reason}" if again else result.reason or "")


def free_memory(device: str) -> None:
    """Give back what a failed attempt held: its model and optimiser are unreachable once `train` has returned."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


class _Trial:
    """One trial on this worker: builds, trains and reports an attempt; a retry reports only epochs it has not."""

    def __init__(self, config: dict[str, Any], opts: RunOptions, space: spaces.Space, data: "Dataset",
                 base: dict[str, Any]) -> None:
        self.config, self.opts, self.space, self.data, self.base = config, opts, space, data, base
        self.reported = 0  # epochs reported: what Ray Tune and the study already hold

    def train(self, train_config: "TrainConfig", **extra: Any) -> "TrainResult":
        """Train from scratch under `train_config`; `extra` joins every report (and the failure's)."""
        from ray import tune

        from tpsearch import trainers
        from tpsearch.checkpoints import make_checkpoint, to_bytes

        self.base = {**self.base, **extra, "batch_size": train_config.batch_size}
        torch.manual_seed(self.config["seed"] if "seed" in self.config
                          else self.opts.seed + int(self.config.get("trial_number", 0)))
        arch = self.config["arch"]
        model = self.space.build(arch, **self.data.shape)

        def report(epoch: trainers.EpochReport) -> None:
            if epoch.epoch <= self.reported:  # a retry after an out-of-memory error mid-run: not told twice
                return
            # An epoch that was not scored (only rungs and the last are) carries no accuracy: ASHA and the study
            # then skip the report, and the trial's learning curve has points where trials are compared.
            metrics = {**self.base, **{k: v for k, v in asdict(epoch).items() if v is not None}, "status": "running"}
            if epoch.epoch == self.opts.epochs and self.config.get("checkpoint"):
                # The weights travel with the last report, through Ray: the driver writes the file, so no folder
                # needs to be shared between the nodes, and nothing this node writes needs to outlive the trial.
                metrics[CHECKPOINT_BYTES] = to_bytes(make_checkpoint(
                    model, {"space": self.space.name, "arch": arch, "shape": self.data.shape}, kind="trial"))
            self.reported = epoch.epoch
            tune.report(metrics)

        return trainers.train(model, self.data, train_config, callback=report)


def placement() -> dict[str, str]:
    """Where this trial runs: the node's address and id, and the worker process (a fault test kills it by pid)."""
    try:
        import ray
        import ray.util

        node, node_id = ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (a test calling run_trial directly)
        node, node_id = socket.gethostname(), ""
    return {"node": node, "node_id": node_id, "worker": f"{node}:{os.getpid()}"}
