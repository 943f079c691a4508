"""`tpsearch export --quantize`: the exported model quantized (ternary and binary fine-tuned by the same trainer under
the hyperparameters that trained its weights, int8 calibrated on training images), measured as its full-precision
self was, and refused when it falls more than --max-loss points below it."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from tpsearch import trainers
from tpsearch.checkpoints import BATCH_NORM_IMAGES, CALIBRATION_IMAGES, quantize_model, sealed
from tpsearch.exceptions import QuantizationLossError, UsageError
from tpsearch.export._options import DEFAULT_MAX_LOSS, ExportOptions, quantize_config
from tpsearch.export._training import epoch_bar, train_config, training_data


def quantize(model: torch.nn.Module, training: dict[str, Any], data: trainers.Dataset, shape: dict[str, int],
             opts: ExportOptions, seed: int, val_accuracy: float | None, test_accuracy: float | None
             ) -> tuple[torch.nn.Module, dict[str, Any], float | None, float | None]:
    """(the model the checkpoint stores, its quantization record, validation and test accuracy of the quantized
    model). Ternary and binary fine-tune with the trainer under the hyperparameters that trained the weights (the
    trial's, or the retrain's recipe), on the same split, for --quantize-epochs; int8 calibrates on training
    images. The full-precision accuracies go into the record."""
    config = quantize_config(opts)
    meaningful = bool(training.get("val_accuracy_meaningful", True))
    on = training.get("on", "train")

    def finetune(net: torch.nn.Module) -> dict[str, Any]:
        hparams = training.get("hparams")
        if not isinstance(hparams, dict):
            raise UsageError("the trial records no training hyperparameters to fine-tune the quantized model "
                             "with: add --retrain")
        settings = train_config(hparams, epochs=config.epochs, seed=seed, device=opts.device)
        bar, on_epoch = epoch_bar(f"fine-tune {config.method} weights", config.epochs, 0, opts.progress)
        try:
            result = trainers.train(net, training_data(data, on), settings, callback=on_epoch)
        finally:
            bar.close()
        if result.status != "completed":
            raise UsageError(f"fine-tuning the {config.method} weights failed: {result.reason}; nothing exported")
        return {"epochs": result.epochs, "hparams": hparams, "on": on, "device": result.device,
                "history": [dataclasses.asdict(r) for r in result.history]}

    images = CALIBRATION_IMAGES if config.method == "int8" else BATCH_NORM_IMAGES
    calibration = trainers.normalize(data.train_x[:images], data.mean, data.std)
    cpu = torch.device("cpu")
    device = cpu if config.method == "int8" else trainers.resolve_device(opts.device)
    # The validation accuracy that --max-loss compares when there is no test figure: both models measured alike
    # (the trial's recorded score may come from another evaluation, flipped test-time augmentation say).
    fp_val = trainers.evaluate(model, data.val_x, data.val_y, data, device=device, bf16=False)[0] \
        if meaningful and not opts.test else None
    q = quantize_model(model, config, shape, finetune=finetune, calibration=calibration)
    # Measured on the final model: the fine-tune's last score predates the baked weights' batch-norm statistics.
    q_val = trainers.evaluate(q.model, data.val_x, data.val_y, data, device=device, bf16=False)[0] \
        if meaningful else None
    q_test = None
    if opts.test:
        q_test, _ = trainers.evaluate(q.model, data.test_x, data.test_y, data, device=device, bf16=False)
    full = {"val_accuracy": val_accuracy, "test_accuracy": test_accuracy,
            **({"val_accuracy_at_export": fp_val} if fp_val is not None else {})}
    record = sealed({**q.record, "full_precision": full})
    return q.float_model, record, q_val, q_test


def check_loss(record: dict[str, Any], opts: ExportOptions, val_accuracy: float | None,
               test_accuracy: float | None) -> None:
    """Refuse (nothing written) a quantized model that lost more than --max-loss points of accuracy: test
    accuracy, or with --no-test validation accuracy, both models measured alike."""
    if opts.accept_loss:
        return
    full = record["full_precision"]
    if test_accuracy is not None and full.get("test_accuracy") is not None:
        split, quantized, reference = "test", test_accuracy, full["test_accuracy"]
    elif val_accuracy is not None and full.get("val_accuracy_at_export") is not None:
        split, quantized, reference = "validation", val_accuracy, full["val_accuracy_at_export"]
    else:  # check_options refuses the one combination that measures nothing
        raise UsageError("no accuracy to check the quantized model against: drop --no-test, or add --accept-loss")
    bound = DEFAULT_MAX_LOSS if opts.max_loss is None else float(opts.max_loss)
    lost = 100 * (reference - quantized)
    if lost > bound:
        raise QuantizationLossError(
            f"{record['method']} weights lose {lost:.2f} points of {split} accuracy ({quantized:.2%} against "
            f"{reference:.2%} in full precision), more than --max-loss {bound:g}; nothing written: add --accept-loss "
            f"to write it anyway", method=record["method"], split=split, quantized=quantized,
            full_precision=reference, bound=bound)
