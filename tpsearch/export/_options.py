"""What `tpsearch export` takes (`ExportOptions`), the retrain's recipes and splits, and the checks that refuse a
combination of options before anything is opened or written."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpsearch.checkpoints import DEFAULT_EPOCHS, DEFAULT_THRESHOLD, FORMATS, QuantizeConfig, need_onnx, sibling
from tpsearch.checkpoints import QUANTIZE_METHODS as METHODS
from tpsearch.exceptions import UsageError
from tpsearch.storages import DEFAULT_STORAGE
from tpsearch.trainers import usable_device

SPLITS = ("train", "train+val")
# The retrain's recipes. "long" suits a 200-300 epoch run of a CIFAR ResNet whatever won the short race: SGD with
# Nesterov momentum at 0.1 per 128 images, weight decay 5e-4 (a search of 15 epochs can favour 1e-5, which
# overfits 300), label smoothing 0.1, 5 warm-up epochs then cosine to zero. "trial" reuses the trial's own.
RECIPES: dict[str, dict[str, Any]] = {
    "long": {"optimizer": "sgd", "lr": 0.1, "batch_size": 128, "weight_decay": 5e-4, "label_smoothing": 0.1,
             "warmup_epochs": 5.0},
    "trial": {},
}
# How far, in points of accuracy, a quantized model may fall below its full-precision self before export refuses to
# write it (--max-loss). The measured price on digits is 0-3 points (README: "Quantized export"); a model that fell
# further has usually broken (the ternary collapse of issue 26 lost 67), and one that is merely worse should be a
# choice the user makes (--accept-loss), not a file that looks like the model they searched for.
DEFAULT_MAX_LOSS = 5.0


@dataclass
class ExportOptions:
    """Everything `tpsearch export` takes; the CLI maps its flags one to one onto these fields."""

    out: str | None = None            # the checkpoint to write; or, with `pareto`, None
    pareto: str | None = None         # a folder: write one checkpoint per trial on the study's Pareto front
    study: str | None = None
    storage: str = DEFAULT_STORAGE
    trial: int | None = None          # None: the re-ranked winner if STUDY-rerank holds one, else the best trial
    space: str | None = None          # the study's space of your own, where its record does not find it from here
    data_dir: str = "data"
    runs_dir: str = "runs"            # the search's; the study records kept weights relative to it
    test: bool = True                 # measure the test accuracy before writing
    retrain: bool = False             # train the architecture from scratch instead of using the kept weights
    epochs: int | None = None         # of a retrain; None: the study's epochs
    on: str = "train"                 # what a retrain trains on: "train", or "train+val" (no validation left)
    recipe: str = "long"              # of a retrain: "long" (RECIPES) or "trial" (the trial's hyperparameters)
    seed: int | None = None           # of the data split and a retrain; None: the study's seed, else 0
    device: str = "auto"              # of a retrain and the test evaluation
    formats: list[str] = field(default_factory=list)  # also write these of FORMATS beside `out`
    quantize: str | None = None       # one of METHODS: ternary (TTQ), binary, int8
    quantize_epochs: int | None = None  # ternary, binary: fine-tune epochs; None: DEFAULT_EPOCHS
    ternary_threshold: float | None = None  # ternary: delta = t x max|w| per layer; None: DEFAULT_THRESHOLD
    quantize_first_last: bool = False  # ternary, binary: also the first conv and the last linear layer
    max_loss: float | None = None     # points of accuracy the quantized model may lose; None: DEFAULT_MAX_LOSS
    accept_loss: bool = False         # write the quantized model whatever it lost
    progress: bool = True


def check_options(opts: ExportOptions) -> None:
    if not opts.out:
        raise UsageError("give --out FILE.pt (or --pareto DIR for every trial of a multi-objective study's front)")
    if opts.on not in SPLITS:
        raise UsageError(f"--on must be one of {', '.join(SPLITS)}, but got {opts.on!r}")
    if opts.recipe not in RECIPES:
        raise UsageError(f"--recipe must be one of {', '.join(RECIPES)}, but got {opts.recipe!r}")
    if not opts.retrain and (opts.epochs is not None or opts.on != "train" or opts.recipe != "long"):
        raise UsageError("--epochs, --on and --recipe choose how --retrain trains; add --retrain")
    if opts.epochs is not None and opts.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, but got {opts.epochs}")
    for fmt in opts.formats:
        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, but got {fmt!r}")
    if "onnx" in opts.formats:
        need_onnx()
    usable_device(opts.device)
    out = Path(opts.out)
    if out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a directory; give a file name such as {str(out / 'best.pt')!r}")
    if any(sibling(out, fmt) == out for fmt in opts.formats):
        raise UsageError(f"--out {str(out)!r} would be overwritten by its own --format file; use a .pt name")
    if opts.quantize is None:
        if opts.quantize_epochs is not None or opts.ternary_threshold is not None or opts.quantize_first_last:
            raise UsageError("--quantize-epochs, --ternary-threshold and --quantize-first-last choose how "
                             "--quantize quantizes; add --quantize ternary|binary")
        if opts.max_loss is not None or opts.accept_loss:
            raise UsageError("--max-loss and --accept-loss bound what --quantize may cost; add --quantize")
        return
    if opts.max_loss is not None and not (isinstance(opts.max_loss, (int, float)) and 0 <= opts.max_loss <= 100):
        raise UsageError(f"--max-loss must be in points of accuracy, 0 to 100, but got {opts.max_loss!r}")
    if opts.max_loss is not None and opts.accept_loss:
        raise UsageError("--accept-loss writes the quantized model whatever it loses, --max-loss bounds the loss: "
                         "give one of them")
    if not opts.test and not opts.accept_loss and opts.on == "train+val":
        raise UsageError("--no-test with --on train+val leaves no accuracy to check the quantized model against: "
                         "drop --no-test, or add --accept-loss")
    if opts.quantize not in METHODS:
        raise UsageError(f"--quantize must be one of {', '.join(METHODS)}, but got {opts.quantize!r}")
    if opts.ternary_threshold is not None and opts.quantize != "ternary":
        raise UsageError(f"--ternary-threshold is for --quantize ternary, not {opts.quantize}")
    if opts.quantize == "int8":
        if opts.quantize_epochs is not None or opts.quantize_first_last:
            raise UsageError("--quantize int8 is post-training quantization of every layer: --quantize-epochs and "
                             "--quantize-first-last are for ternary and binary")
        if opts.formats:
            raise UsageError("--format writes a float model; an int8 model runs in PyTorch (load_checkpoint) only")
    quantize_config(opts)  # its own checks of the epochs and the threshold


def quantize_config(opts: ExportOptions) -> QuantizeConfig:
    return QuantizeConfig(
        opts.quantize or "", epochs=DEFAULT_EPOCHS if opts.quantize_epochs is None else opts.quantize_epochs,
        threshold=DEFAULT_THRESHOLD if opts.ternary_threshold is None else opts.ternary_threshold,
        first_last=opts.quantize_first_last)
