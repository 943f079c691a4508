"""What runs on a Ray Tune worker: build the sampled architecture, train it, report every epoch.

The worker never opens the study storage (only the driver writes it, which keeps SQLite safe with many workers
and on a cluster). It reports plain dicts through Ray Tune and writes one checkpoint file per completed trial.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import spaces

METRIC = "val_accuracy"


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a trial needs beyond its sampled config; the same for every trial of a run."""

    space: str
    dataset: str
    data_dir: str
    epochs: int
    seed: int = 0
    train_fraction: float = 1.0
    train_images: int | None = None
    device: str = "auto"
    compile: bool = False
    threads: int = 1
    noop: bool = False  # benchmark hook: report every epoch at once without data or training (orchestration cost)
    train_overrides: dict[str, Any] = field(default_factory=dict)


def count_macs(space: spaces.Space, arch: dict[str, Any], num_classes: int, in_channels: int,
               image_size: int) -> int:
    """Multiply-accumulates of one image, measured by thop on the meta device: exact, and nothing allocated."""
    from thop import profile

    with torch.device("meta"):
        model = space.build(arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size)
        macs, _ = profile(model, inputs=(torch.zeros(1, in_channels, image_size, image_size),), verbose=False)
    return int(macs)


def run_trial(config: dict[str, Any], settings: WorkerSettings) -> None:
    """The Ray Tune function trainable. `config` holds `arch`, `hparams` and `checkpoint` (a path or None)."""
    from ray import tune

    import trainers

    torch.set_num_threads(max(1, settings.threads))
    space = spaces.get(settings.space)
    arch = config["arch"]
    if settings.noop:
        return _noop_trial(config, settings)
    data = trainers.load_dataset(settings.dataset, settings.data_dir, seed=settings.seed)
    shape = dict(num_classes=data.num_classes, in_channels=data.in_channels, image_size=data.image_size)
    node = _node()
    device = resolve_device(settings.device)
    base = {"macs": count_macs(space, arch, **shape), "node": node, "node_id": _node_id(),
            "worker": f"{node}:{os.getpid()}", "device": device}
    fault = config.get("fault")  # the fault suite's hook: a trial that raises on its worker
    if fault == "raise":
        raise RuntimeError("injected fault: the trial raised")
    if fault == "hang":  # a trial that never reports again (a deadlock, a stuck device)
        while True:
            time.sleep(1.0)

    torch.manual_seed(settings.seed + int(config.get("trial_number", 0)))
    model = space.build(arch, **shape)
    train_config = trainers.TrainConfig.from_hparams(
        config["hparams"], epochs=settings.epochs, seed=settings.seed, train_fraction=settings.train_fraction,
        train_images=settings.train_images, device=device, compile=settings.compile,
        **settings.train_overrides, **({"fault": fault} if fault else {}))

    def report(epoch: trainers.EpochReport) -> None:
        metrics = {**base, **asdict(epoch), "status": "running"}
        if epoch.epoch == settings.epochs and config.get("checkpoint"):
            # Saved before the last report so that the driver, told the trial completed, finds the file.
            try:
                save_weights(model, Path(config["checkpoint"]), space=space.name, arch=arch, shape=shape)
                metrics["checkpoint"] = config["checkpoint"]
            except OSError as e:  # a full disk costs the weights, never the trained trial
                metrics["checkpoint_error"] = f"{type(e).__name__}: {e.strerror or e}"
        tune.report(metrics)

    result = trainers.train(model, data, train_config, callback=report)
    if result.status == "failed":
        last = result.history[-1] if result.history else None
        tune.report({**base, "epoch": (last.epoch if last else 0), METRIC: (last.val_accuracy if last else 0.0),
                     "status": "failed", "reason": result.reason})


def _noop_trial(config: dict[str, Any], settings: WorkerSettings) -> None:
    """Everything of a trial but the data and the training: what orchestration alone costs."""
    from ray import tune

    node = _node()
    # A made-up but arch-dependent score, so that ASHA and TPE have something to rank.
    score = 1.0 / (1.0 + abs(config["arch"].get("channels", 16) - 24) / 24)
    for epoch in range(1, settings.epochs + 1):
        tune.report({"epoch": epoch, METRIC: score * epoch / settings.epochs, "val_loss": 1.0, "train_loss": 1.0,
                     "seconds": 0.0, "images_per_s": 0.0, "node": node, "node_id": _node_id(),
                     "worker": f"{node}:{os.getpid()}", "device": "cpu", "macs": 0, "status": "running"})


def save_weights(model: torch.nn.Module, path: Path, **meta: Any) -> None:
    """Weights and the architecture, tensors and plain containers only, written atomically."""
    from search._checkpoint import save_atomic

    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    save_atomic({"state_dict": state, **meta}, path)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    # Ray hides the GPUs a trial did not ask for, so "cuda" here is the (fraction of a) GPU it was given.
    return "cuda" if torch.cuda.is_available() else "cpu"


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:
        return ""


def _node() -> str:
    try:
        import ray.util

        return ray.util.get_node_ip_address()
    except Exception:  # outside Ray (a test calling run_trial directly)
        return socket.gethostname()
