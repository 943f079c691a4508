"""What runs on a Ray Tune worker: build the sampled architecture, train it, report every epoch.

The worker never opens the study storage (only the driver writes it, which keeps SQLite safe with many workers
and on a cluster). It reports plain dicts through Ray Tune and writes one checkpoint file per completed trial.
"""
from __future__ import annotations

import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tpsearch import spaces
from tpsearch.search._options import METRIC, RunOptions


def run_trial(config: dict[str, Any], *, opts: RunOptions, space: spaces.Space) -> None:
    """The Ray Tune function trainable. `config` holds `arch`, `hparams`, `trial_number` and `checkpoint` (a path
    or None), and `fault` where the fault suite injects one (`tpsearch.trainers.testing.inject_fault`)."""
    from ray import tune

    from tpsearch import trainers
    from tpsearch.search.export import save_checkpoint

    torch.set_num_threads(max(1, int(opts.cpus_per_trial)))
    arch = config["arch"]
    data = trainers.load_dataset(opts.dataset, opts.data_dir, seed=opts.seed)
    device = str(trainers.resolve_device(opts.device))
    base = {"macs": space.count_macs(arch, **data.shape), **placement(), "device": device}

    torch.manual_seed(opts.seed + int(config.get("trial_number", 0)))
    model = space.build(arch, **data.shape)
    if config.get("fault"):
        from tpsearch.trainers.testing import inject_fault

        model = inject_fault(model, config["fault"])
    train_config = opts.train_config(config["hparams"], device=device)

    def report(epoch: trainers.EpochReport) -> None:
        metrics = {**base, **asdict(epoch), "status": "running"}
        if epoch.epoch == opts.epochs and config.get("checkpoint"):
            # Saved before the last report so that the driver, told the trial completed, finds the file.
            try:
                save_checkpoint(model, Path(config["checkpoint"]), {"space": space.name, "arch": arch,
                                                                     "shape": data.shape}, kind="trial")
                metrics["checkpoint"] = config["checkpoint"]
            except OSError as e:  # a full disk costs the weights, never the trained trial
                metrics["checkpoint_error"] = f"{type(e).__name__}: {e.strerror or e}"
        tune.report(metrics)

    result = trainers.train(model, data, train_config, callback=report)
    if result.status == "failed":
        last = result.history[-1] if result.history else None
        tune.report({**base, "epoch": (last.epoch if last else 0), METRIC: (last.val_accuracy if last else 0.0),
                     "status": result.status, "reason": result.reason})


def placement() -> dict[str, str]:
    """Where this trial runs: the node's address and id, and the worker process (a fault test kills it by pid)."""
    try:
        import ray
        import ray.util

        node, node_id = ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (a test calling run_trial directly)
        node, node_id = socket.gethostname(), ""
    return {"node": node, "node_id": node_id, "worker": f"{node}:{os.getpid()}"}
