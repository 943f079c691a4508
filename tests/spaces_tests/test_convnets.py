"""convnets: the cifar10-experiments project's four families, their published counts matched exactly, each family's
shape, any input size, clear errors. The contract suite checks the counts on sampled architectures."""
from __future__ import annotations

import json
import warnings

import optuna
import pytest
import torch
import torch.nn as nn

from tpsearch import spaces
from tpsearch.spaces.convnets import DenseNetLike, ResNetLike, ResNeXtLike, VGGLike

SPACE = spaces.get("convnets")
DIGITS = dict(num_classes=10, in_channels=1, image_size=8)

# The project's published parameter counts (10 classes, 3x32x32), which ours equal exactly.
PUBLISHED = {
    "vgglike": 1_110_826,
    "resnetlike": 310_474,
    "resnetlike_large": 3_921_994,
    "resnextlike": 1_087_114,
    "resnextlike_large": 3_090_058,
    "densenetlike": 508_447,
    "densenetlike_large": 1_098_724,
}
# One small architecture per family, for the checks that run real weights.
SMALL = {
    "vgg": {"family": "vgg", "channels": 8, "blocks": 2},
    "resnet": {"family": "resnet", "channels": 8, "vanilla_chunks": 1, "vanilla_blocks": 2, "bottleneck_chunks": 2,
               "bottleneck_blocks": 1},
    "resnext": {"family": "resnext", "channels": 16, "chunks": 2, "cardinality": 4, "bottleneck_width": 2},
    "densenet": {"family": "densenet", "growth": 4, "chunks": 2, "layers": 3},
}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_presets_equal_the_published_counts_exactly():
    assert set(SPACE.presets) == set(PUBLISHED)
    for name, arch in SPACE.presets.items():
        with torch.device("meta"):
            built = _numel(SPACE.build(arch))
        assert SPACE.count_params(arch) == built == PUBLISHED[name], name


def test_preset_macs_equal_thop_exactly():
    for name, arch in SPACE.presets.items():
        assert SPACE.count_macs(arch) == SPACE.measure_macs(arch), name
    assert SPACE.count_macs(SPACE.presets["vgglike"]) == 88_737_024


@pytest.mark.parametrize("shape", [DIGITS, dict(num_classes=3, in_channels=2, image_size=1)])
def test_every_family_runs_on_any_image_and_counts_exactly(shape):
    # 1x1 and odd sides: the ceil-mode pools keep every side >= 1, so VGG's flatten and the strided convs agree.
    for arch in SMALL.values():
        model = SPACE.build(arch, **shape)
        out = model(torch.randn(2, shape["in_channels"], shape["image_size"], shape["image_size"]))
        assert out.shape == (2, shape["num_classes"])
        out.sum().backward()
        assert SPACE.count_params(arch, **shape) == _numel(model), arch
        assert SPACE.count_macs(arch, **shape) == SPACE.measure_macs(arch, **shape), arch


def test_vgglike_structure():
    model = SPACE.build(SPACE.presets["vgglike"])
    assert isinstance(model, VGGLike)
    conv, bn, _ = model.stem
    assert conv.kernel_size == (5, 5) and conv.out_channels == 32 and isinstance(bn, nn.BatchNorm2d)
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    for block, c in zip(model.blocks, [32, 64, 128]):
        convs = [m for m in block if isinstance(m, nn.Conv2d)]
        assert [(m.in_channels, m.out_channels) for m in convs] == [(c, c), (c, 2 * c)]
        assert isinstance(block[3], nn.Dropout2d) and isinstance(block[-1], nn.MaxPool2d)
    fc1, fc2 = [m for m in model.head if isinstance(m, nn.Linear)]
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (256 * 4 * 4, 128, 10)
    # On digits the three pools give 4, 2, 1; a fourth block would keep 1x1 instead of vanishing.
    assert SPACE.build(SPACE.presets["vgglike"], **DIGITS).head[1].in_features == 256
    deeper = {"family": "vgg", "channels": 8, "blocks": 4}
    assert SPACE.build(deeper, **DIGITS).head[1].in_features == 128


def test_resnetlike_chunks_and_shortcuts():
    model = SPACE.build(SPACE.presets["resnetlike"])
    assert isinstance(model, ResNetLike)
    assert [len(chunk) for chunk in model.chunks] == [3, 3, 3]
    for chunk, c in zip(model.chunks, [32, 64, 128]):
        # The last block doubles the width and halves the map, in its branch and its shortcut.
        assert [m.stride for m in chunk[-1].branch if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
        assert chunk[-1].shortcut[0].in_channels == c and chunk[-1].shortcut[0].stride == (2, 2)
        for block in chunk:  # every block projects its shortcut, with a BN
            conv, bn = block.shortcut
            assert conv.kernel_size == (1, 1) and isinstance(bn, nn.BatchNorm2d)
    vanilla, bottleneck = model.chunks[0][0], model.chunks[1][-1]
    assert [m.kernel_size for m in vanilla.branch if isinstance(m, nn.Conv2d)] == [(3, 3), (3, 3)]
    convs = [m for m in bottleneck.branch if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(64, 32), (32, 32), (32, 128)]  # out/4
    assert convs[1].stride == (2, 2) and model.fc.in_features == 256
    with torch.no_grad():
        assert model.chunks(model.stem(torch.randn(2, 3, 32, 32))).shape == (2, 256, 4, 4)


def test_resnextlike_grouped_blocks_and_chunk_shortcut():
    torch.manual_seed(0)
    model = SPACE.build(SPACE.presets["resnextlike"]).eval()
    assert isinstance(model, ResNeXtLike) and len(model.chunks) == 3
    for chunk, c in zip(model.chunks, [64, 128, 256]):
        for block, out in zip(chunk.blocks, [c, 2 * c]):
            grouped = block.branch[3]
            assert (grouped.groups, grouped.in_channels, block.branch[6].out_channels) == (64, 256, out)
        assert chunk.shortcut.stride == (2, 2) and chunk.shortcut.out_channels == 2 * c
    chunk = model.chunks[0]
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        assert torch.allclose(chunk(x), chunk.blocks(x) + chunk.shortcut(x))
        assert chunk(x).shape == (2, 128, 5, 5)  # odd sides round up, in the blocks and the shortcut alike


def test_densenetlike_growth_and_transitions():
    model = SPACE.build(SPACE.presets["densenetlike"])
    assert isinstance(model, DenseNetLike) and model.stem[0].out_channels == 48  # 4 x growth
    widths, c = [], 48
    for chunk in model.chunks:
        dense, conv = chunk[0], chunk[1]
        assert len(dense.layers) == 8
        assert (dense.layers[0][0].out_channels, dense.layers[0][3].out_channels) == (48, 12)  # 4k, then k
        c += 8 * 12
        assert (conv.in_channels, conv.out_channels) == (c, c // 2) and isinstance(chunk[-1], nn.AvgPool2d)
        c //= 2
        widths.append(c)
    assert widths == [72, 84, 90, 93] and model.fc.in_features == 93 + 8 * 12
    with torch.no_grad():  # 8x8 halved four times: 4, 2, 1 and 1 again (ceil mode), never 0
        assert model.dense(model.chunks(model.stem(torch.randn(2, 3, 8, 8)))).shape == (2, 189, 1, 1)


def test_params_of_round_trips_every_preset_and_an_enqueued_arch_off_the_grid():
    for name, arch in SPACE.presets.items():
        params = SPACE.params_of(arch)
        assert all(key == "family" or key.endswith("_" + arch["family"]) for key in params), name
        assert SPACE.suggest(optuna.trial.FixedTrial(params)) == arch, name
    off_grid = {"family": "resnet", "channels": 20, "vanilla_chunks": 0, "bottleneck_chunks": 2,
                "bottleneck_blocks": 6}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
    study.enqueue_trial(SPACE.params_of(off_grid))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's out-of-range warning is expected, so silenced by the space
        trial = study.ask()
        assert SPACE.suggest(trial) == off_grid
    study.tell(trial, 0.5)
    with torch.device("meta"):
        assert SPACE.count_params(off_grid) == _numel(SPACE.build(off_grid))


def test_validate_normalises_and_is_json():
    a = SPACE.validate({"bottleneck_chunks": 0, "vanilla_blocks": 2, "channels": 16, "family": "resnet",
                        "vanilla_chunks": 1})
    assert list(a) == ["family", "channels", "vanilla_chunks", "vanilla_blocks", "bottleneck_chunks"]
    assert json.loads(json.dumps(a)) == a
    assert SPACE.smallest() == {"family": "resnext", "channels": 16, "chunks": 1, "cardinality": 4,
                                "bottleneck_width": 1}


@pytest.mark.parametrize("arch, dimension", [
    ({"channels": 32, "blocks": 3}, "family"),
    ({"family": "mobilenet"}, "family"),
    ({"family": "vgg", "channels": 32}, "blocks"),
    ({"family": "vgg", "channels": 32, "blocks": 0}, "blocks"),
    ({"family": "vgg", "channels": 32.0, "blocks": 3}, "channels"),
    ({"family": "vgg", "channels": 32, "blocks": 3, "growth": 12}, "growth"),
    ({"family": "vgg", "channels": 32, "blocks": 3, "depth": 8}, "depth"),
    ({"family": "resnet", "channels": 32, "vanilla_chunks": 0, "bottleneck_chunks": 0}, "bottleneck_chunks"),
    ({"family": "resnet", "channels": 32, "vanilla_chunks": 1, "bottleneck_chunks": 0}, "vanilla_blocks"),
    ({"family": "resnet", "channels": 32, "vanilla_chunks": 0, "vanilla_blocks": 2, "bottleneck_chunks": 1,
      "bottleneck_blocks": 1}, "vanilla_blocks"),
    ({"family": "resnet", "channels": 2, "vanilla_chunks": 0, "bottleneck_chunks": 1, "bottleneck_blocks": 1},
     "channels"),
    ({"family": "resnext", "channels": 64, "chunks": 3, "cardinality": 0, "bottleneck_width": 4}, "cardinality"),
    ({"family": "resnext", "channels": 64, "chunks": 3, "cardinality": 8}, "bottleneck_width"),
    ({"family": "densenet", "growth": 12, "chunks": 4, "layers": True}, "layers"),
    ({"family": "densenet", "growth": 12, "chunks": 4, "layers": 8, "channels": 24}, "channels"),
])
def test_unbuildable_architectures_name_their_dimension(arch, dimension):
    for call in (SPACE.validate, SPACE.count_params, SPACE.count_macs, SPACE.build):
        with pytest.raises(spaces.ArchError) as info:
            call(arch)
        assert info.value.dimension == dimension
        assert str(info.value).startswith(dimension)
