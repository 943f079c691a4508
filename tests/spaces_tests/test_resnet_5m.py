"""resnet_5m: the TPSNet network exactly, its published presets, and clear errors for bad architectures."""
from __future__ import annotations

import warnings

import optuna
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

from tpsearch import spaces
from tpsearch.spaces.resnet_5m import max_layers

SPACE = spaces.get("resnet_5m")


@pytest.mark.parametrize("preset, published", [("tpsnet_model1", 4.87e6), ("tpsnet_model2", 4.97e6),
                                               ("tpsnet", 4.96e6)])
def test_published_tpsnet_models(preset, published):
    params = SPACE.count_params(SPACE.presets[preset])
    assert round(params / 1e6, 2) == round(published / 1e6, 2)
    assert params < 5_000_000


def test_tpsnet_structure_matches_the_paper():
    model = SPACE.build(SPACE.presets["tpsnet"])
    stem_conv = model.stem[0]
    assert (stem_conv.in_channels, stem_conv.out_channels, stem_conv.kernel_size, stem_conv.stride,
            stem_conv.padding, stem_conv.bias) == (3, 16, (3, 3), (1, 1), (1, 1), None)
    assert [len(layer) for layer in model.layers] == [13, 13, 13]
    assert [layer[0].conv1.out_channels for layer in model.layers] == [32, 64, 128]
    assert [layer[0].conv1.stride for layer in model.layers] == [(1, 1), (2, 2), (2, 2)]
    for layer in model.layers:
        assert isinstance(layer[0].shortcut, nn.Sequential)  # the width changes in every first block
        assert layer[0].shortcut[0].kernel_size == (1, 1)
        assert all(isinstance(block.shortcut, nn.Identity) for block in layer[1:])
    assert model.pool.kernel_size == 8 and model.fc.in_features == 128 and model.fc.bias is not None


def test_kernels_5_and_7_keep_the_map_size():
    arch = {"layers": 3, "blocks": [1, 1, 1], "channels": 8, "kernels": [7, 5, 3], "skip_kernels": [3, 1, 3],
            "pool": 8}
    model = SPACE.build(arch)
    feats = model.layers(model.stem(torch.zeros(1, 3, 32, 32)))
    assert feats.shape == (1, 64, 8, 8)


def test_four_and_five_layers_fit_32x32():
    assert max_layers(32) == 5
    for n, final in ((4, 4), (5, 2)):
        arch = {"layers": n, "blocks": [1] * n, "channels": 8, "pool": final}
        out = SPACE.build(arch)(torch.zeros(2, 3, 32, 32))
        assert out.shape == (2, 10)


def test_scalar_shorthand_and_defaults():
    arch = SPACE.validate({"layers": 2, "blocks": 2, "channels": 8})
    assert arch == {"layers": 2, "blocks": [2, 2], "channels": 8, "kernels": [3, 3], "skip_kernels": [1, 1],
                    "pool": 16}


@pytest.mark.parametrize("arch, dimension", [
    ({"layers": 3, "blocks": [1, 1, 1], "channels": 8, "pool": 9}, "pool"),
    ({"layers": 3, "blocks": [1, 1, 1], "channels": 0}, "channels"),
    ({"layers": 3, "blocks": [1, 1, 1], "channels": -4}, "channels"),
    ({"layers": 6, "blocks": [1] * 6, "channels": 8}, "kernels"),
    ({"layers": 3, "blocks": [1, 1, 1], "channels": 8, "kernels": [3, 3, 4]}, "kernels"),
    ({"layers": 3, "blocks": [1, 1, 1], "channels": 8, "kernels": [3, 3, 35]}, "kernels"),
    ({"layers": 3, "blocks": [1, 1], "channels": 8}, "blocks"),
    ({"layers": 3, "blocks": [1, 0, 1], "channels": 8}, "blocks"),
    ({"layers": 0, "blocks": [], "channels": 8}, "layers"),
    ({"layers": "3", "blocks": [1, 1, 1], "channels": 8}, "layers"),
    ({"layers": 3, "blocks": [1, 1, 1], "channels": 8, "widths": 3}, "widths"),
    ({"blocks": [1, 1, 1], "channels": 8}, "layers"),
])
def test_unbuildable_architectures_name_their_dimension(arch, dimension):
    for call in (SPACE.validate, SPACE.count_params, SPACE.build):
        with pytest.raises(spaces.ArchError) as info:
            call(arch)
        assert info.value.dimension == dimension
        assert str(info.value).startswith(dimension)


def test_kernel_larger_than_a_small_image():
    with pytest.raises(spaces.ArchError, match="kernels: layer 1: kernel 7 is larger than its 4x4"):
        SPACE.build({"layers": 1, "blocks": [1], "channels": 8, "kernels": [7]}, image_size=4)


@settings(max_examples=200, deadline=None)
@given(layers=st.integers(1, 4), channels=st.integers(1, 24), data=st.data(),
       image_size=st.sampled_from([8, 9, 16, 31, 32]), in_channels=st.integers(1, 4), num_classes=st.integers(1, 20))
def test_count_params_property_over_arbitrary_valid_architectures(layers, channels, data, image_size, in_channels,
                                                                  num_classes):
    side = image_size
    sizes = []
    for i in range(layers):
        sizes.append(side)
        if i >= 1:
            side = (side + 1) // 2
    if min(sizes) < 3:
        return
    arch = {
        "layers": layers, "channels": channels,
        "blocks": data.draw(st.lists(st.integers(1, 4), min_size=layers, max_size=layers)),
        "kernels": [data.draw(st.sampled_from([k for k in (1, 3, 5, 7) if k <= s])) for s in sizes],
        "skip_kernels": [data.draw(st.sampled_from([k for k in (1, 3) if k <= s])) for s in sizes],
        "pool": data.draw(st.integers(1, side)),
    }
    shape = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    model = SPACE.build(arch, **shape)
    assert SPACE.count_params(arch, **shape) == sum(p.numel() for p in model.parameters())
    out = model.eval()(torch.zeros(1, in_channels, image_size, image_size))
    assert out.shape == (1, num_classes)


def test_sampled_widths_are_multiples_of_8_and_given_ones_any_integer():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(200):
        trial = study.ask()
        arch = SPACE.suggest(trial)
        study.tell(trial, 0.0)
        seen.add(arch["channels"])
        assert arch["channels"] % 8 == 0  # so is every layer's width, 2^i * C_1
    assert seen == set(range(8, 65, 8))
    for c1 in (1, 13, 22, 34, 65):  # a file, a preset, an enqueued architecture: any width is an architecture
        assert SPACE.validate({"layers": 2, "blocks": 1, "channels": c1})["channels"] == c1


def test_an_enqueued_width_off_the_grid_is_trained_as_given_and_the_study_stays_usable(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
    arch = SPACE.presets["tpsnet_model1"]  # C_1 = 34
    study.enqueue_trial(SPACE.params_of(arch))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's out-of-grid warning is expected, so silenced by the space
        trial = study.ask()
        assert SPACE.suggest(trial) == arch
    study.tell(trial, 0.5)
    for _ in range(6):  # TPE reads the off-grid observation and still samples on the grid
        trial = study.ask()
        assert SPACE.suggest(trial)["channels"] % 8 == 0
        study.tell(trial, 0.1)
    # Kept as given, in the study and in a copy of it (SQLite to PostgreSQL, say).
    other = f"sqlite:///{tmp_path / 'copy.db'}"
    optuna.copy_study(from_study_name=study.study_name, from_storage=storage, to_storage=other)
    for url in (storage, other):
        assert optuna.load_study(study_name=study.study_name, storage=url).trials[0].params["channels"] == 34
