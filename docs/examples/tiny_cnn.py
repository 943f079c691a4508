"""A space of your own: `tpsearch run --space docs/examples/tiny_cnn.py:TinyCNN` (or MODULE:CLASS if importable)."""
import torch.nn as nn

from tpsearch.spaces import ArchError, Counts, Dimension, Space


class TinyCNN(Space):
    name = "tiny_cnn"
    description = "1-3 conv layers (3x3, batch norm, ReLU), then global average pooling and a linear classifier"
    presets = {"small": {"widths": [16, 32]}}

    def dimensions(self):
        return [Dimension("widths", "W", "1-3 layers of 8..64 channels", "output channels of each conv layer")]

    def suggest(self, trial, *, in_channels=3, image_size=32):
        depth = trial.suggest_int("depth", 1, 3)
        return {"widths": [trial.suggest_int(f"width_{i}", 8, 64, step=8) for i in range(depth)]}

    def validate(self, arch, *, in_channels=3, image_size=32):
        widths = arch.get("widths")
        if not (isinstance(widths, list) and 1 <= len(widths) <= 3 and all(type(w) is int and w > 0 for w in widths)):
            raise ArchError("widths", f"must be 1-3 positive integers, but got {widths!r}")
        return {"widths": list(widths)}

    def tally(self, arch, num_classes, in_channels, image_size):
        params, c = 0, in_channels
        for w in arch["widths"]:
            params += c * w * 9 + 2 * w  # conv without bias, then the batch norm's scale and shift
            c = w
        return Counts(params + c * num_classes + num_classes)  # no MACs given: thop measures them

    def build(self, arch, num_classes=10, in_channels=3, image_size=32):
        layers, c = [], in_channels
        for w in arch["widths"]:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def params_of(self, arch, *, in_channels=3, image_size=32):
        return {"depth": len(arch["widths"]), **{f"width_{i}": w for i, w in enumerate(arch["widths"])}}

    def smallest(self, *, in_channels=3, image_size=32):
        return {"widths": [8]}
