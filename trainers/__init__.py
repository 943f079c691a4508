"""Training one architecture: data sets held on the device as uint8, batched augmentation, the loop and its budgets.

    >>> from trainers import TrainConfig, load_dataset, train
    >>> data = load_dataset("digits")
    >>> result = train(model, data, TrainConfig(epochs=10), callback=print)
    >>> result.status, result.val_accuracy

Knows nothing of Optuna or Ray: it takes a model, a data set, a config and a callback.
"""
from trainers._augment import DeviceLoader, normalize, pad_images
from trainers._data import DATASETS, DataError, Dataset, load_dataset, make_synthetic
from trainers._loop import EpochReport, TrainConfig, TrainResult, evaluate, resolve_device, train

__all__ = ["DATASETS", "DataError", "Dataset", "DeviceLoader", "EpochReport", "TrainConfig", "TrainResult",
           "evaluate", "load_dataset", "make_synthetic", "normalize", "pad_images", "resolve_device", "train"]
