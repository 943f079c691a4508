"""Training one architecture: data sets held on the device as uint8, batched augmentation, the loop and its budgets.

    >>> from tpsearch import spaces
    >>> from tpsearch.trainers import TrainConfig, load_dataset, train
    >>> data = load_dataset("digits")
    >>> model = spaces.get("resnet_5m").build({"layers": 1, "blocks": [1], "channels": 8}, **data.shape)
    >>> result = train(model, data, TrainConfig(epochs=2))
    >>> result.status
    'completed'

Knows nothing of Optuna or Ray: it takes a model, a data set, a config and a callback.
"""
from tpsearch.trainers._augment import PAD_MODES, DeviceLoader, normalize, pad_images
from tpsearch.trainers._data import (DATASETS, SHAPES, DataError, Dataset, canonical_dataset, dataset_label,
                                     dataset_shape, load_dataset, make_synthetic)
from tpsearch.trainers._latency import Latency, measure_latency
from tpsearch.trainers._loop import (DEFAULT_LR, DIVERGED, HPARAM_KEYS, OPTIMIZERS, OUT_OF_MEMORY, SCHEDULES,
                                     EpochReport, LRSchedule, TrainConfig, TrainResult, evaluate, images_per_epoch,
                                     lr_schedule, native_bf16, resolve_device, train, training_loss, usable_device)

__all__ = ["DATASETS", "DEFAULT_LR", "DIVERGED", "DataError", "Dataset", "DeviceLoader", "EpochReport", "HPARAM_KEYS",
           "LRSchedule", "Latency", "OPTIMIZERS", "OUT_OF_MEMORY", "PAD_MODES", "SCHEDULES", "SHAPES", "TrainConfig",
           "TrainResult", "canonical_dataset", "dataset_label", "dataset_shape", "evaluate", "images_per_epoch",
           "load_dataset", "lr_schedule", "make_synthetic", "measure_latency", "native_bf16", "normalize", "pad_images",
           "resolve_device", "train", "training_loss", "usable_device"]
