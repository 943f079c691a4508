"""The backbones space: torchvision's networks with a head for the data, their counts exact at the shapes of real data
sets, the small-image stem, and the images too small for a network refused before anything is built."""
from __future__ import annotations

import optuna
import pytest
import torch
from torchvision import models

from tpsearch import spaces
from tpsearch.spaces.backbones import MODELS, STEMS, min_image_size

SPACE = spaces.get("backbones")
DIGITS = dict(num_classes=10, in_channels=1, image_size=8)
CALTECH = dict(num_classes=256, in_channels=3, image_size=64)


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_published_counts_at_256_classes():
    # The Caltech-256 project's figures for torchvision's networks with a 256-class head.
    published = {"resnet18": 11_307_840, "densenet121": 7_216_256, "squeezenet1_1": 853_824}
    for model, count in published.items():
        assert SPACE.count_params(SPACE.preset(model), num_classes=256) == count


@pytest.mark.parametrize("shape", [DIGITS, CALTECH], ids=["digits", "caltech256"])
def test_every_preset_is_counted_exactly_or_refused(shape):
    for name, arch in SPACE.presets.items():
        if arch["stem"] == "cifar" or shape["image_size"] >= min_image_size(arch["model"], "imagenet"):
            with torch.device("meta"):
                built = SPACE.build(arch, **shape)
            assert SPACE.count_params(arch, **shape) == _numel(built), name
            assert SPACE.count_macs(arch, **shape) == SPACE.measure_macs(arch, **shape), name
        else:  # DenseNet's and SqueezeNet's ImageNet stems leave no pixel of a digit for their pools
            with pytest.raises(spaces.ArchError, match=f"at least .*use the stem 'cifar' \\(preset {name}_cifar\\)"):
                SPACE.count_params(arch, **shape)


def test_it_is_torchvisions_network_with_the_stem_swapped_in_place():
    # The same layer names as torchvision's own (the max pool an Identity), so its state dicts line up.
    with torch.device("meta"):
        for model in MODELS:
            own = getattr(models, model)(weights=None, num_classes=7)
            for stem in STEMS:
                built = SPACE.build(SPACE.preset(model if stem == "imagenet" else f"{model}_cifar"), num_classes=7,
                                    in_channels=1)
                assert set(built.state_dict()) == set(own.state_dict()), (model, stem)
                first = next(m for m in built.modules() if isinstance(m, torch.nn.Conv2d))
                assert first.in_channels == 1 and first.stride == ((1, 1) if stem == "cifar" else (2, 2))
                # MobileNet-V3's too: torchvision's 0.01 leaves a short trial's evaluation at chance (the module).
                assert {m.momentum for m in built.modules() if isinstance(m, torch.nn.BatchNorm2d)} <= {0.1}


@pytest.mark.parametrize("model", ["densenet121", "squeezenet1_1"])
def test_the_smallest_image_each_stem_takes_runs_and_one_less_is_refused(model):
    for stem in STEMS:
        least = min_image_size(model, stem)
        arch = {"model": model, "stem": stem}
        net = SPACE.build(arch, num_classes=3, in_channels=1, image_size=least).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 1, least, least)).shape == (1, 3)
        with pytest.raises(spaces.ArchError) as info:
            SPACE.validate(arch, image_size=least - 1)
        assert f"at least {least}x{least}" in str(info.value)
    assert (min_image_size(model, "cifar"), min_image_size(model, "imagenet")) == \
        {"densenet121": (8, 29), "squeezenet1_1": (4, 17)}[model]


def test_suggest_draws_only_what_fits_the_image():
    for image_size, expected in [(32, set(MODELS)), (8, set(MODELS)), (5, set(MODELS) - {"densenet121"}),
                                 (3, {"resnet18", "resnet34", "mobilenet_v3_small", "mobilenet_v3_large"})]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        seen = set()
        for _ in range(60):
            trial = study.ask()
            arch = SPACE.suggest(trial, in_channels=1, image_size=image_size)
            SPACE.validate(arch, in_channels=1, image_size=image_size)  # raises if it does not fit
            seen.add((arch["model"], arch["stem"]))
            study.tell(trial, 0.0)
        assert {m for m, _ in seen} == expected
        assert ("densenet121", "imagenet") in seen if image_size == 32 else ("densenet121", "imagenet") not in seen


@pytest.mark.parametrize("arch, key", [({"model": "vgg16"}, "model"),
                                       ({"model": "resnet18", "width": 0.5}, "width"),
                                       ({"model": "resnet18", "stem": "tiny"}, "stem"),
                                       ({"model": "squeezenet1_1", "dropout": 1.0}, "dropout"),
                                       ({"model": "mobilenet_v3_small", "width": 0}, "width"),
                                       ({"model": "resnet34", "zero_init": 1}, "zero_init")])
def test_a_bad_architecture_names_what_is_wrong(arch, key):
    with pytest.raises(spaces.ArchError) as info:
        SPACE.validate(arch)
    assert info.value.dimension == key


def test_the_defaults_are_torchvisions():
    assert SPACE.validate({"model": "squeezenet1_1"}) == {"model": "squeezenet1_1", "stem": "imagenet",
                                                          "dropout": 0.5}
    assert SPACE.validate({"model": "mobilenet_v3_large"})["dropout"] == 0.2
