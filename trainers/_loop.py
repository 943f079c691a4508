"""The training loop: one model, one data set, one budget; a report after every epoch; failures end with a reason.

    result = train(space.build(arch), load_dataset("digits"), TrainConfig(epochs=10))

Steps of a run: 1. move the uint8 data to the device once; 2. per epoch, augment and batch there (`DeviceLoader`),
every training image once, whatever the batch size, in full batches only (the last one is filled up with the first
images of the epoch's order, which it then shows twice: one shape for every step, so cuDNN autotunes once and
torch.compile compiles once; the epoch still counts its own images only), mixup there when asked;
3. SGD with Nesterov momentum or AdamW, the learning rate a function of the images seen (`LRSchedule`: warm-up, then
cosine or step decay, optionally restarted), the loss `training_loss` (cross-entropy, label smoothing, the mixed
labels, the confidence penalty), bf16 autocast and channels_last on CUDA; 4. evaluate on the validation split
(after every epoch, or only after the epochs in `eval_epochs` and the last: a search needs a score only where
trials are compared) and report. A loss that turns NaN or infinite ends the run as "diverged", CUDA running out of
memory as "out of memory at batch size B": the caller gets a `TrainResult`, never an exception.

Why images and not steps: a batch of 64 takes eight steps where a batch of 512 takes one. With the schedule and the
reports counted in images seen, two runs that differ only in batch size are at the same point of their schedule
after the same data, so their accuracies after epoch k can be compared.

A run can be resumed: `checkpoint(state)` receives, after every epoch, the model, optimiser, RNG states and
history as tensors and plain containers (so `torch.load(..., weights_only=True)` reads them back), and
`train(..., resume=state)` continues from there with the same batches a run without the break would have drawn.
"""
from __future__ import annotations

import dataclasses
import gc
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from tpsearch.exceptions import UsageError

from tpsearch.trainers._augment import PAD_MODES, DeviceLoader, normalize
from tpsearch.trainers._data import Dataset

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LR = {"sgd": 0.1, "adamw": 2e-3}  # peak learning rates for batch size 128
SCHEDULES = ("cosine", "step")  # what the learning rate does after its warm-up (`LRSchedule`)
STEP_MILESTONES = (0.5, 0.75)   # step decay: shares of each cycle (after the warm-up) where the rate drops ...
STEP_GAMMA = 0.1                # ... by this factor each time
# What spaces suggest (the last four only for the tricks a search names), and what a trial's `hparams` may hold.
HPARAM_KEYS = ("optimizer", "lr", "weight_decay", "batch_size", "label_smoothing", "mixup_alpha",
               "confidence_penalty", "schedule", "pad_mode")
MAX_WARMUP_SHARE = 0.25  # of the first cycle (the whole run without restarts): most of it must still decay
DIVERGED = "diverged"             # the reason of a run whose training loss stopped being finite
OUT_OF_MEMORY = "out of memory"   # ... and the start of the reason of one that ran out of device memory
_DIVERGENCE_CHECK_EVERY = 16  # batches between looks at the running loss on a GPU (none waits for the device)


@dataclass
class TrainConfig:
    """How to train: budget, optimiser, augmentation, device. Saved as a plain dict with every checkpoint."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"                # "sgd" (Nesterov momentum) or "adamw"
    lr: float | None = None               # peak learning rate; None: 0.1 for SGD, 2e-3 for AdamW
    momentum: float = 0.9                 # SGD only
    weight_decay: float = 5e-4            # on weights only; batch-norm scales and biases are not decayed
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0              # mixup: each batch blended with a permutation of itself, Beta(a, a); 0: off
    confidence_penalty: float = 0.0       # the loss minus this times the mean entropy of the prediction; 0: off
    schedule: str = "cosine"              # after the warm-up: "cosine" to zero, or "step" (x0.1 at 50% and 75%)
    warmup_epochs: float = 1.0            # linear warm-up, capped at a quarter of the first cycle
    restarts: tuple[int, ...] = ()        # epochs at whose end the cosine has reached zero and restarts at the peak
    train_fraction: float = 1.0           # fidelity: train on this share of the training split ...
    train_images: int | None = None       # ... or on exactly this many of its images (the same ones every run)
    crop_padding: int | None = None       # random-crop padding in pixels; None: the data set's default
    pad_mode: str = "reflect"             # "reflect" or "zero"
    flip: bool | None = None              # random horizontal flips; None: the data set's default
    seed: int = 0                         # batch order and augmentation (the caller seeds the model's init)
    device: str = "auto"                  # "auto": CUDA when present, else the CPU
    bf16: bool = True                     # bf16 autocast, CUDA only
    channels_last: bool = True            # CUDA only
    compile: bool = False                 # torch.compile the model for training
    eval_batch_size: int = 1024
    eval_epochs: tuple[int, ...] | None = None  # score the validation split after these epochs and the last; None: all
    tta_flip: bool = False                # score the mean of the logits of each image and its mirror image

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            _check_float("lr", self.lr, 0.0, None, low_open=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, None)
        _check_float("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        _check_float("mixup_alpha", self.mixup_alpha, 0.0, None)
        _check_float("confidence_penalty", self.confidence_penalty, 0.0, None)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_float("warmup_epochs", self.warmup_epochs, 0.0, None)
        self.restarts = _check_restarts(self.restarts, self.epochs)
        _check_float("train_fraction", self.train_fraction, 0.0, 1.0, low_open=True)
        if self.train_images is not None:
            _check_int("train_images", self.train_images, 1)
            if self.train_fraction != 1.0:
                raise ValueError(f"give train_fraction or train_images, not both, but got "
                                 f"train_fraction={self.train_fraction!r}, train_images={self.train_images!r}")
        if self.crop_padding is not None:
            _check_int("crop_padding", self.crop_padding, 0)
        _check_choice("pad_mode", self.pad_mode, PAD_MODES)
        if self.flip is not None:
            _check_bool("flip", self.flip)
        _check_int("seed", self.seed, None)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', but got {self.device!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(f"device must be 'auto' or a torch device such as 'cpu' or 'cuda:0', "
                                 f"but got {self.device!r}") from None
        for name in ("bf16", "channels_last", "compile"):
            _check_bool(name, getattr(self, name))
        _check_int("eval_batch_size", self.eval_batch_size, 1)
        if self.eval_epochs is not None:
            self.eval_epochs = _check_eval_epochs(self.eval_epochs, self.epochs)
        _check_bool("tta_flip", self.tta_flip)

    def evaluates_after(self, epoch: int) -> bool:
        """Whether the validation split is scored after `epoch` (always after the last)."""
        return self.eval_epochs is None or epoch in self.eval_epochs or epoch == self.epochs

    @property
    def peak_lr(self) -> float:
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.optimizer]

    def halved(self) -> "TrainConfig":
        """This config at half the batch size (and half the evaluation batch), the learning rate scaled to keep
        what one image contributes to an update: halved for SGD (the linear scaling rule, Goyal et al. 2017),
        divided by sqrt(2) for AdamW (the square-root rule for adaptive optimisers, Malladi et al. 2022)."""
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 to halve, but got {self.batch_size}")
        scale = 0.5 if self.optimizer == "sgd" else 0.5 ** 0.5
        return dataclasses.replace(self, batch_size=self.batch_size // 2, lr=self.peak_lr * scale,
                                   eval_batch_size=max(1, self.eval_batch_size // 2))

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], **overrides: Any) -> "TrainConfig":
        """A config from the dict that `Space.suggest_training` returns, with `overrides` (any field) on top."""
        if not isinstance(hparams, Mapping):
            raise ValueError(f"training hyperparameters must be a dict, but got {type(hparams).__name__}")
        unknown = sorted(set(hparams) - set(HPARAM_KEYS))
        if unknown:
            raise ValueError(f"unknown training hyperparameter {unknown[0]!r}; known: {', '.join(HPARAM_KEYS)}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(f"unknown TrainConfig field {unknown[0]!r}; fields: {', '.join(fields)}")
        return cls(**{**hparams, **overrides})


def _check_int(name: str, value: Any, low: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, but got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, but got {value}")


def _check_float(name: str, value: Any, low: float, high: float | None, *, low_open: bool = False,
                 high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, but got {value!r}")
    if value < low or (low_open and value == low) or (high is not None and (
            value > high or (high_open and value == high))):
        rule = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and {'<' if high_open else '<='} "
                                                                               f"{high}")
        raise ValueError(f"{name} must be {rule}, but got {value!r}")


def _check_eval_epochs(value: Any, epochs: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"eval_epochs must be a list of epochs, but got {value!r}")
    for e in value:
        _check_int("each of eval_epochs", e, 1)
    if any(e > epochs for e in value):
        raise ValueError(f"eval_epochs must be epochs of the {epochs}-epoch run, but got {list(value)}")
    return tuple(sorted(set(value)))


def _check_restarts(value: Any, epochs: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"restarts must be a list of epochs, but got {value!r}")
    for r in value:
        _check_int("each of restarts", r, 1)
    if list(value) != sorted(set(value)) or (value and value[-1] >= epochs):
        raise ValueError(f"restarts must be increasing epochs below the {epochs} epochs of the run, "
                         f"but got {list(value)}")
    return tuple(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, but got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, but got {value!r}")


@dataclass(frozen=True)
class EpochReport:
    """What the trainer tells its callback after every epoch."""

    epoch: int              # 1-based
    images: int             # training images seen since the start of the run, this epoch's included
    val_accuracy: float | None  # 0..1; None after an epoch that was not scored (see `TrainConfig.eval_epochs`)
    val_loss: float | None      # mean cross-entropy on the validation split, without label smoothing
    train_loss: float       # mean training loss of the epoch (the loss trained: smoothing, mixup, penalty)
    seconds: float          # this epoch, validation included
    images_per_s: float     # training images per second of training time this epoch


@dataclass
class TrainResult:
    """How a run ended. `status` is "completed", "stopped" (the callback asked) or "failed" (with `reason`)."""

    status: str
    reason: str | None
    epochs: int                      # epochs trained to the end
    val_accuracy: float | None       # of the last scored epoch; None if none was
    val_loss: float | None
    train_loss: float | None
    seconds: float                   # the whole call, setup included
    images_per_s: float | None       # mean over the finished epochs
    device: str
    history: list[EpochReport] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        """DIVERGED or OUT_OF_MEMORY for a failed run (the reason adds the batch size); None otherwise."""
        if self.status != "failed" or self.reason is None:
            return None
        return OUT_OF_MEMORY if self.reason.startswith(OUT_OF_MEMORY) else DIVERGED


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate as a share of its peak, by training images seen, so that every batch size follows the
    same curve through the data: a linear warm-up over `warmup` images, then in each cycle either a cosine that
    reaches zero at its end (`kind` "cosine") or step decay (`kind` "step": the peak, then x0.1 from half the cycle
    and x0.01 from three quarters, the classic ResNet schedule placed by images rather than epochs); every cycle
    after the first starts again at the peak (warm restarts, as in SGDR).

    Restarts are for comparing runs early (`tpsearch run` ends a cycle at each of ASHA's rungs): the accuracy at
    the end of a cycle is that of a model whose learning rate has annealed, as it will have at the end of the run,
    not of one caught at its peak learning rate.
    """

    warmup: int              # images
    ends: tuple[int, ...]    # images seen at the end of each cycle; the last is the whole run
    kind: str = "cosine"     # one of SCHEDULES

    def factor(self, seen: int, batch: int) -> float:
        """The factor for the batch of `batch` images that follows the first `seen` images of the run."""
        if seen < self.warmup:
            return min(1.0, (seen + batch) / self.warmup)
        start = max((e for e in self.ends if e <= seen), default=0)
        end = min((e for e in self.ends if e > seen), default=self.ends[-1])
        begin = max(start, self.warmup)
        done = min(1.0, (seen - begin) / max(1, end - begin))
        if self.kind == "step":
            return STEP_GAMMA ** sum(done >= m for m in STEP_MILESTONES)
        return 0.5 * (1 + math.cos(math.pi * done))


def lr_schedule(config: TrainConfig, images_per_epoch: int) -> LRSchedule:
    """The schedule a run under `config` follows when each epoch is `images_per_epoch` images."""
    first_cycle = config.restarts[0] if config.restarts else config.epochs
    warmup = min(config.warmup_epochs, first_cycle * MAX_WARMUP_SHARE)
    return LRSchedule(warmup=round(warmup * images_per_epoch),
                      ends=tuple(e * images_per_epoch for e in (*config.restarts, config.epochs)),
                      kind=config.schedule)


class _Diverged(Exception):
    """Raised inside the loop when the training loss stops being finite."""


class _NonFiniteWatch:
    """Ends a run whose training loss stopped being finite, without making the host wait for the GPU.

    On the CPU the epoch's running loss sum is read after every step (reading it costs nothing there). On a GPU,
    every `_DIVERGENCE_CHECK_EVERY` steps, the sum is copied to pinned host memory asynchronously, and the copy
    made at the previous look is read if the GPU has finished it (`Event.query` does not wait): a NaN or an
    infinity ends the run about 16 to 32 steps after it appears, and the end of the epoch, which waits for the
    device anyway, catches any the looks missed. Reading the sum on the host instead would stall the GPU's queue
    at every look.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pending: torch.cuda.Event | None = None
        if self.cuda:
            with host_sync(device):  # pinned memory is allocated once per epoch, not per look
                self.host = torch.zeros((), pin_memory=True)

    def check(self, loss_sum: torch.Tensor, step: int) -> None:
        if not self.cuda:
            if not math.isfinite(loss_sum.item()):
                raise _Diverged
            return
        if step % _DIVERGENCE_CHECK_EVERY != _DIVERGENCE_CHECK_EVERY - 1:
            return
        if self.pending is not None:
            if not self.pending.query():  # the last copy is still queued: look again next time
                return
            if not math.isfinite(self.host.item()):  # a host tensor: no device sync
                raise _Diverged
        self.host.copy_(loss_sum, non_blocking=True)
        self.pending = torch.cuda.Event()
        self.pending.record()


@dataclass
class _Progress:
    history: list[EpochReport] = field(default_factory=list)
    batch_size: int = 0  # of the phase that is running, for the out-of-memory reason
    images: int = 0      # training images seen


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here")
    return device



def usable_device(name: str) -> torch.device:
    """A --device value as a `torch.device` usable here; a malformed name, or CUDA where there is none, is a
    `UsageError` naming the flag."""
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as e:  # no CUDA here, or a malformed device name
        raise UsageError(f"--device: {e}") from None

def train(model: nn.Module, data: Dataset, config: TrainConfig,
          callback: Callable[[EpochReport], bool | None] | None = None, *,
          checkpoint: Callable[[dict[str, Any]], None] | None = None,
          resume: Mapping[str, Any] | None = None) -> TrainResult:
    """Train `model` in place on `data` under `config`; `callback(report)` after every epoch may return True to stop.

    `checkpoint(state)`, if given, runs after every epoch (before `callback`) with the state to save; it shares
    tensors with the live optimiser, so save it during the call rather than keep it. `resume=state` continues a run
    from such a state: the same config and data are expected (a different number of epochs or steps per epoch
    raises ValueError), and the result's history then holds the resumed epochs too.

    The model ends on the training device. Bad arguments raise ValueError before anything trains; a diverged loss
    or CUDA running out of memory returns a failed result instead of raising.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, but got {type(config).__name__}")
    device = resolve_device(config.device)
    n_train = images_per_epoch(data, config)
    progress = _Progress(batch_size=config.batch_size)
    start = time.perf_counter()
    status, reason = "completed", None
    try:
        if _fit(model, data, config, device, n_train, callback, progress, checkpoint, resume):
            status = "stopped"
    except _Diverged:
        status, reason = "failed", DIVERGED
    except RuntimeError as e:  # torch.OutOfMemoryError derives from RuntimeError; so do cuDNN's allocation failures
        if not _is_out_of_memory(e):
            raise
        status, reason = "failed", f"{OUT_OF_MEMORY} at batch size {progress.batch_size}"
    if reason is not None and reason.startswith(OUT_OF_MEMORY):
        # Here, past the except block, the traceback and the frames that held the batch and the optimiser are gone.
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    history = progress.history
    scored = next((r for r in reversed(history) if r.val_accuracy is not None), None)
    return TrainResult(
        status=status, reason=reason, epochs=len(history),
        val_accuracy=scored.val_accuracy if scored else None, val_loss=scored.val_loss if scored else None,
        train_loss=history[-1].train_loss if history else None, seconds=time.perf_counter() - start,
        images_per_s=sum(r.images_per_s for r in history) / len(history) if history else None,
        device=str(device), history=history)


def _is_out_of_memory(e: RuntimeError) -> bool:
    if isinstance(e, torch.OutOfMemoryError):
        return True
    text = str(e)
    return "out of memory" in text or "ALLOC_FAILED" in text


def images_per_epoch(data: Dataset, config: TrainConfig) -> int:
    """The training images of one epoch under `config`'s fidelity: each is seen once per epoch, at any batch size."""
    available = len(data.train_y)
    if config.train_images is not None:
        if config.train_images > available:
            raise ValueError(f"train_images must be at most the {available} training images of {data.name}, "
                             f"but got {config.train_images}")
        return config.train_images
    return max(1, round(available * config.train_fraction))


def _fit(model: nn.Module, data: Dataset, config: TrainConfig, device: torch.device, n_train: int,
         callback: Callable[[EpochReport], bool | None] | None, progress: _Progress,
         checkpoint: Callable[[dict[str, Any]], None] | None = None,
         resume: Mapping[str, Any] | None = None) -> bool:
    """The epochs; True when the callback asked to stop. Raises _Diverged or out-of-memory errors."""
    cuda = device.type == "cuda"
    channels_last = cuda and config.channels_last
    use_bf16 = cuda and config.bf16 and native_bf16(device)
    torch.manual_seed(config.seed)  # for anything random inside the model (dropout, stochastic depth)
    if cuda:
        # The convolutions are autotuned once per shape, and a run has two: the training batch (every one is full)
        # and the evaluation batch (`evaluate` pads its last one).
        torch.backends.cudnn.benchmark = True

    with host_sync(device):  # the data and the weights move to the device once
        # The training split is already shuffled with a fixed seed, so its first n images are a fixed random
        # subset: every trial at one fidelity sees the same images.
        loader = DeviceLoader(
            data.train_x[:n_train].to(device), data.train_y[:n_train].to(device), batch_size=config.batch_size,
            mean=data.mean, std=data.std,
            padding=data.default_padding if config.crop_padding is None else config.crop_padding,
            pad_mode=config.pad_mode, flip=data.flip if config.flip is None else config.flip, seed=config.seed,
            last="fill", channels_last=channels_last)
        val_x, val_y = data.val_x.to(device), data.val_y.to(device)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
    # Static shapes: every training batch is full (a set smaller than one batch is one batch of its own size).
    net = torch.compile(model, dynamic=False) if config.compile else model

    optimizer = _optimizer(model, config, fused=cuda)
    schedule = lr_schedule(config, n_train)
    first = 1
    if resume is not None:
        first = _restore(resume, model, optimizer, loader, config, device, progress) + 1

    for epoch in range(first, config.epochs + 1):
        progress.batch_size = config.batch_size
        model.train()
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        seen = trained = 0  # this epoch's images, and the samples trained on (a filled last batch repeats some)
        watch = _NonFiniteWatch(device)
        for step, (images, labels) in enumerate(loader):
            new = min(len(labels), n_train - seen)  # the schedule and the reports count each image once an epoch
            lr = config.peak_lr * schedule.factor(progress.images + seen, new)
            for group in optimizer.param_groups:
                group["lr"] = lr
            mix = None
            if config.mixup_alpha > 0:  # no draw at all when off: a run without mixup is the run it always was
                images, partner, weight = loader.mixup(images, labels, config.mixup_alpha)
                mix = (partner, weight)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = net(images)
            loss = training_loss(logits.float(), labels, config, mix)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)  # a NaN or infinity stays in the sum: `watch` looks at it
            seen += new
            trained += len(labels)
            watch.check(loss_sum, step)
        with host_sync(device):
            train_loss = loss_sum.item() / trained  # waits for the device: the epoch's training time ends here
        if not math.isfinite(train_loss):
            raise _Diverged
        train_seconds = time.perf_counter() - epoch_start
        progress.images += seen
        progress.batch_size = config.eval_batch_size
        val_accuracy = val_loss = None
        if config.evaluates_after(epoch):
            # The uncompiled model evaluates: eval mode and a ragged last batch would each cost a recompile.
            with host_sync(device):
                val_accuracy, val_loss = evaluate(model, val_x, val_y, data, batch_size=config.eval_batch_size,
                                                  device=device, bf16=use_bf16, channels_last=channels_last,
                                                  tta_flip=config.tta_flip)
        report = EpochReport(epoch=epoch, images=progress.images, val_accuracy=val_accuracy, val_loss=val_loss,
                             train_loss=train_loss, seconds=time.perf_counter() - epoch_start,
                             images_per_s=seen / train_seconds)
        progress.history.append(report)
        if checkpoint is not None:
            with host_sync(device):
                checkpoint(_state(epoch, model, optimizer, loader, config, device, progress))
        if callback is not None and callback(report) is True:
            return True
    return False


def training_loss(logits: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                  mix: tuple[torch.Tensor, float] | None = None) -> torch.Tensor:
    """The loss the loop minimises: the cross-entropy, label-smoothed as `config` says; under mixup (`mix`: the
    partner's labels and the weight of the image's own) the weighted sum of both labels' cross-entropies, which is
    the cross-entropy against the mixed smoothed targets, since it is linear in the target; minus
    `confidence_penalty` times the mean entropy of the predicted distribution (Pereyra et al. 2017), which
    discourages over-confident predictions."""
    loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
    if mix is not None:
        partner, weight = mix
        loss = weight * loss + (1 - weight) * F.cross_entropy(logits, partner,
                                                               label_smoothing=config.label_smoothing)
    if config.confidence_penalty:
        log_p = F.log_softmax(logits, dim=1)
        entropy = -(log_p.exp() * log_p).sum(dim=1).mean()
        loss = loss - config.confidence_penalty * entropy
    return loss


@contextmanager
def host_sync(device: torch.device) -> Iterator[None]:
    """Marks a deliberate wait for the GPU: the loop's only ones are here (setup, the end of an epoch, its score,
    its checkpoint; the loss checks between them do not wait: `_NonFiniteWatch`). Under `torch.cuda.set_sync_debug_mode("error")` (the cuda tests)
    any other host sync, one that would stall every step, raises."""
    mode = torch.cuda.get_sync_debug_mode() if device.type == "cuda" else 0
    if mode:
        torch.cuda.set_sync_debug_mode(0)
    try:
        yield
    finally:
        if mode:
            torch.cuda.set_sync_debug_mode(mode)


def _state(epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, loader: DeviceLoader,
           config: TrainConfig, device: torch.device, progress: _Progress) -> dict[str, Any]:
    """Everything a resumed run needs after `epoch`, as tensors and plain containers only (the learning rate is
    a function of the images seen, which the history holds)."""
    return {
        "epoch": epoch, "epochs": config.epochs, "steps_per_epoch": len(loader), "restarts": list(config.restarts),
        "schedule": config.schedule,
        "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "loader_rng": loader.get_rng_state(), "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "history": [dataclasses.asdict(r) for r in progress.history],
    }


def _restore(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             loader: DeviceLoader, config: TrainConfig, device: torch.device, progress: _Progress) -> int:
    """Load a `_state` dict into the live run; returns the last finished epoch."""
    missing = sorted({"epoch", "epochs", "steps_per_epoch", "restarts", "model", "optimizer", "loader_rng",
                      "torch_rng", "history"} - set(state))
    if missing:
        raise ValueError(f"resume state lacks {', '.join(missing)}")
    # The schedule is a function of the whole run: resuming under another one would bend the learning rate.
    # (A state saved before step decay existed is a cosine run's.)
    theirs = (state["epochs"], state["steps_per_epoch"], tuple(state["restarts"]), state.get("schedule", "cosine"))
    if theirs != (config.epochs, len(loader), config.restarts, config.schedule):
        raise ValueError(f"resume state is from a run of {theirs[0]} epochs of {theirs[1]} steps restarted at "
                         f"{list(theirs[2])} with {theirs[3]} decay, but this run has {config.epochs} epochs of "
                         f"{len(loader)} steps restarted at {list(config.restarts)} with {config.schedule} decay")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])  # moves the moments to the parameters' device
    loader.set_rng_state(state["loader_rng"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    progress.history = [EpochReport(**r) for r in state["history"]]
    progress.images = progress.history[-1].images if progress.history else 0
    return int(state["epoch"])


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU computes in bf16 natively (compute capability 8.0 on). Before that torch emulates it, slower
    than float32, so the trainer then trains in float32 (not float16, which would need loss scaling)."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def _optimizer(model: nn.Module, config: TrainConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    # Decaying batch-norm scales and biases only fights the normalisation; weight decay is for the weights.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    # On CUDA one fused kernel updates every parameter, instead of a few kernel launches per tensor.
    extra = {"fused": True} if fused else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.peak_lr, momentum=config.momentum, nesterov=True, **extra)
    return torch.optim.AdamW(groups, lr=config.peak_lr, **extra)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: Dataset, *, batch_size: int = 1024,
             device: torch.device | str | None = None, bf16: bool = True,
             channels_last: bool = False, tta_flip: bool = False) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of `model` on uint8 images `x`, normalised as in training, unaugmented.

    `device` defaults to the model's; bf16 autocast applies on CUDA only; `channels_last` feeds the images in the
    layout of a model trained so (else every convolution converts them). `tta_flip` scores the mean of the logits
    of each image and its horizontal mirror (test-time augmentation: worth a few tenths of a percent on CIFAR-10
    for twice the evaluation; only for data whose labels survive a flip). The model's train/eval mode is restored.

    The images go in batches of one size (`eval_batches`), so that cuDNN autotunes one shape: as many batches as
    `batch_size` needs, of equal size, the last padded with a few repeated images whose outputs are dropped.
    """
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need one label per image and at least one image, but got {len(x)} images and "
                         f"{len(y)} labels")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    loss_sum = torch.zeros((), device=device)
    size = eval_batches(len(x), batch_size)
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                             enabled=bf16 and device.type == "cuda"):
            for i in range(0, len(x), size):
                batch = x[i:i + size]
                real = len(batch)
                if real < size:  # in eval mode each image's output is its own: the padding changes no other's
                    batch = torch.cat([batch, x[:size - real]])
                images = normalize(batch.to(device), data.mean, data.std)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                labels = y[i:i + real].to(device)
                logits = model(images).float()
                if tta_flip:
                    logits = 0.5 * (logits + model(images.flip(3)).float())
                logits = logits[:real]
                loss_sum += F.cross_entropy(logits, labels, reduction="sum")
                correct += (logits.argmax(1) == labels).sum()
    finally:
        model.train(was_training)
    return correct.item() / len(x), loss_sum.item() / len(x)


def eval_batches(n: int, batch_size: int) -> int:
    """The one batch size in which `evaluate` scores `n` images under a limit of `batch_size`: the fewest batches
    the limit allows, of equal size, so that padding the last costs fewer images than there are batches (5,000
    CIFAR-10 validation images at 1,024: five batches of 1,000, none padded)."""
    batches = -(-n // batch_size)
    return -(-n // batches)
