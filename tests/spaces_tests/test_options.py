"""Options of the residual spaces (#12): exact counts with every combination, off means absent, factorized convs,
stochastic depth's per-sample drop and linear schedule, refusals that name the option, and unchanged default draws."""
from __future__ import annotations

import itertools
import json

import optuna
import pytest
import torch
import torch.nn as nn

from tpsearch import spaces
from tpsearch.exceptions import UsageError
from tpsearch.spaces import _options
from tpsearch.spaces._layers import DropPath, drop_probs

RESIDUAL = [spaces.get("resnet_5m"), spaces.get("xresnet")]
# The value each option takes when on (stochastic depth keeps the sampled probability).
ON = {"se": True, "act": "mish", "factorized": True}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _blocks(arch: dict) -> int:
    return sum(arch["blocks"]) if isinstance(arch["blocks"], list) else 3 * arch["blocks"]


def _with_options(space: spaces.Space, n: int, seed: int, max_blocks: int = 1000, **shape) -> list[dict]:
    """`n` architectures of `space` (of at most `max_blocks` blocks) with its options drawn by `suggest_options`,
    then switched on and off so that the architectures run through every combination of the options in turn."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    keys = _options.keys(space.options)
    combos = list(itertools.product([False, True], repeat=len(keys)))
    archs: list[dict] = []
    while len(archs) < n:
        trial = study.ask()
        arch, drawn = space.suggest(trial, **shape), space.suggest_options(trial, space.options)
        study.tell(trial, 0.0)
        assert set(drawn) == set(keys)
        if _blocks(arch) > max_blocks:
            continue
        for key, on in zip(keys, combos[len(archs) % len(combos)]):
            if on:
                arch[key] = ON[key] if key in ON else max(drawn[key], 0.01)
        archs.append(arch)
    return archs


@pytest.mark.parametrize("space", RESIDUAL, ids=lambda s: s.name)
@pytest.mark.parametrize("shape", [dict(), dict(num_classes=7, in_channels=1, image_size=11)], ids=["32", "11"])
def test_counts_are_exact_with_every_option_combination(space, shape):
    # 11x11 makes every stride-2 side odd, where the factorized pair's split stride must still round up.
    # 16 draws: each of resnet_5m's 16 combinations once, xresnet's 4 four times; thop's time grows with the
    # number of blocks, so the draws are kept shallow.
    archs = _with_options(space, 16, seed=7, max_blocks=12, image_size=shape.get("image_size", 32))
    for arch in archs:
        with torch.device("meta"):
            model = space.build(arch, **shape)
        assert space.count_params(arch, **shape) == _numel(model), arch
        assert space.count_macs(arch, **shape) == space.measure_macs(arch, **shape), arch


@pytest.mark.parametrize("space", RESIDUAL, ids=lambda s: s.name)
def test_an_architecture_without_options_normalises_to_itself(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    archs = list(space.presets.values())
    for _ in range(20):
        archs.append(space.suggest(study.ask()))
    for arch in archs:
        # Options given as off are dropped, so the architecture is the one it was before options existed.
        off = {**arch, **{k: v for k, v in _options.defaults().items() if k in _options.keys(space.options)}}
        assert json.dumps(space.validate(off)) == json.dumps(space.validate(arch)) == json.dumps(arch)
        assert space.params_of(off) == space.params_of(arch)


def test_resnet_5m_keeps_only_the_options_that_are_on():
    space = spaces.get("resnet_5m")
    tiny = space.presets["tiny"]
    arch = {**tiny, "se": False, "act": "mish", "factorized": False, "drop_path": 0.2}
    assert space.validate(arch) == {**space.validate(tiny), "act": "mish", "drop_path": 0.2}
    assert space.validate({**tiny, "drop_path": 0}) == space.validate(tiny)
    assert space.params_of(arch) == space.params_of(tiny)  # option params are the driver's to add
    assert _options.params_of(arch, space.options) == {"opt_se": False, "opt_act": "mish", "opt_factorized": False,
                                                       "opt_drop_path": 0.2}


@pytest.mark.parametrize("space", RESIDUAL, ids=lambda s: s.name)
def test_option_params_invert_suggest_options(space):
    for arch in _with_options(space, 8, seed=3):
        params = _options.params_of(arch, space.options)
        drawn = space.suggest_options(optuna.trial.FixedTrial(params), space.options)
        assert space.validate({**arch, **drawn}) == space.validate(arch)


def test_factorized_replaces_every_square_branch_conv_with_1xk_and_kx1():
    resnet, xresnet = spaces.get("resnet_5m"), spaces.get("xresnet")
    arch = {"layers": 2, "blocks": [1, 1], "channels": 8, "kernels": [5, 3], "skip_kernels": [3, 1], "pool": 4}
    plain, fact = resnet.build(arch), resnet.build({**arch, "factorized": True})
    assert isinstance(fact.stem[0], nn.Conv2d) and fact.stem[0].kernel_size == (5, 5)  # not a residual branch
    wide, tall = fact.layers[1][0].conv1  # the stride-2 conv: each half strides along its own kernel's axis
    assert (wide.kernel_size, wide.stride, wide.padding) == ((1, 3), (1, 2), (0, 1))
    assert (tall.kernel_size, tall.stride, tall.padding) == ((3, 1), (2, 1), (1, 0))
    assert [c.kernel_size for c in fact.layers[0][0].conv2] == [(1, 5), (5, 1)]
    assert fact.layers[0][0].shortcut[0].kernel_size == (3, 3)  # shortcuts stay square
    branch_convs = [m for layer in fact.layers for block in layer for conv in (block.conv1, block.conv2)
                    for m in conv.modules() if isinstance(m, nn.Conv2d)]
    assert len(branch_convs) == 8 and all(1 in m.kernel_size for m in branch_convs)
    x = torch.zeros(2, 3, 31, 31)
    assert fact.layers(fact.stem(x)).shape == plain.layers(plain.stem(x)).shape == (2, 32, 16, 16)

    bottleneck = xresnet.build({**xresnet.presets["xresnext29_16x2d"], "factorized": True})
    grouped = bottleneck.stages[1][0].residual[3]
    assert [(c.kernel_size, c.stride, c.groups) for c in grouped] == [((1, 3), (1, 2), 16), ((3, 1), (2, 1), 16)]
    basic = xresnet.build({**xresnet.presets["se_mxresnet20"], "factorized": True})
    kernels = {m.kernel_size for m in basic.stages.modules() if isinstance(m, nn.Conv2d)}
    assert kernels == {(1, 3), (3, 1), (1, 1)}  # the 1x1s are the projections


def test_drop_path_zeroes_whole_samples_in_training_keeps_the_expectation_and_is_the_identity_in_eval():
    torch.manual_seed(0)
    drop = DropPath(0.9)
    x = torch.ones(4000, 2, 3, 3)
    out = drop(x)
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 10.0).all(1)).all()  # a sample is dropped whole, or kept
    assert 0.88 < (per_sample == 0).all(1).float().mean() < 0.92
    assert abs(out.mean().item() - 1.0) < 0.1  # kept samples are scaled by 1 / 0.1
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize("space, arch", [
    (spaces.get("resnet_5m"), {"layers": 2, "blocks": [1, 1], "channels": 8, "pool": 4}),
    (spaces.get("xresnet"), {"block": "basic", "blocks": 1, "width": 0.5}),
], ids=["resnet_5m", "xresnet"])
def test_stochastic_depth_in_a_model(space, arch):
    torch.manual_seed(0)
    dropping = space.build({**arch, "drop_path": 0.95}, image_size=16)
    plain = space.build(arch, image_size=16)
    plain.load_state_dict(dropping.state_dict())  # stochastic depth adds no weight
    x = torch.randn(64, 3, 16, 16)
    dropping.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(dropping(x), dropping(x))
        assert torch.equal(dropping(x), plain(x))  # eval: every branch kept, no rescale
    last = [m for m in dropping.modules() if isinstance(m, DropPath)][-1]
    outputs = []
    last.register_forward_hook(lambda m, args, out: outputs.append(out.detach()))
    dropping.train()
    dropping(x).sum().backward()  # and it trains
    zeroed = (outputs[0].flatten(1) == 0).all(1)
    assert 0 < zeroed.sum() < 64 and zeroed.sum() > 32  # the last block drops with p = 0.95, per sample


def test_drop_probabilities_rise_linearly_with_depth():
    assert drop_probs(0.3, 3) == pytest.approx([0.1, 0.2, 0.3])
    resnet = spaces.get("resnet_5m").build({"layers": 3, "blocks": [2, 3, 1], "channels": 8, "drop_path": 0.3})
    probs = [m.p for m in resnet.modules() if isinstance(m, DropPath)]
    assert probs == pytest.approx([0.3 * l / 6 for l in range(1, 7)])  # block l of L = 6, through every layer
    xresnet = spaces.get("xresnet").build({"block": "basic", "blocks": 2, "width": 0.5, "drop_path": 0.12})
    assert [m.p for m in xresnet.modules() if isinstance(m, DropPath)] == pytest.approx([0.02 * l for l in range(1, 7)])


def test_unknown_options_and_options_a_space_does_not_take_are_refused_by_name():
    trial = optuna.create_study().ask()
    for space in RESIDUAL:
        with pytest.raises(UsageError, match=r"unknown option 'dropout'; known options: se, mish, factorized, "
                                             r"stochastic_depth"):
            space.suggest_options(trial, ["se", "dropout"])
    with pytest.raises(ValueError, match=r"option 'se' is not one that space 'xresnet' takes; its options: "
                                         r"factorized, stochastic_depth"):
        spaces.get("xresnet").suggest_options(trial, ["factorized", "se"])
    with pytest.raises(ValueError, match=r"option 'mish' is not one that space 'convnets' takes; its options: none"):
        spaces.get("convnets").suggest_options(trial, "mish")
    with pytest.raises(UsageError, match="unknown option 'swish'"):
        _options.params_of({}, ["swish"])
    assert spaces.get("convnets").suggest_options(trial, []) == {}


@pytest.mark.parametrize("space", RESIDUAL, ids=lambda s: s.name)
@pytest.mark.parametrize("key, value", [("drop_path", 1.0), ("drop_path", -0.1), ("drop_path", True),
                                        ("drop_path", "0.1"), ("factorized", 1), ("factorized", "yes")])
def test_bad_option_values_name_their_key(space, key, value):
    arch = {**next(iter(space.presets.values())), key: value}
    for call in (space.validate, space.count_params, space.count_macs, space.build):
        with pytest.raises(spaces.ArchError) as info:
            call(arch)
        assert info.value.dimension == key


def test_resnet_5m_se_and_act_values_are_checked():
    space = spaces.get("resnet_5m")
    for key, value in (("se", 1), ("act", "gelu")):
        with pytest.raises(spaces.ArchError, match=f"^{key}: "):
            space.validate({**space.presets["tiny"], key: value})


def test_default_seeded_suggest_draws_what_it_drew_before_options():
    # Drawn at 9a5bf31, the commit before options existed: a search that names no option draws the same trials.
    before = {
        "resnet_5m": [
            {"layers": 1, "blocks": [5], "channels": 48, "kernels": [7], "skip_kernels": [1], "pool": 1},
            {"layers": 1, "blocks": [9], "channels": 40, "kernels": [5], "skip_kernels": [1], "pool": 32},
            {"layers": 2, "blocks": [12, 13], "channels": 48, "kernels": [7, 3], "skip_kernels": [3, 3], "pool": 2},
            {"layers": 2, "blocks": [1, 4], "channels": 32, "kernels": [5, 5], "skip_kernels": [3, 3], "pool": 1}],
        "xresnet": [
            {"block": "bottleneck", "blocks": 3, "width": 1.25, "se": True, "act": "relu", "cardinality": 27,
             "bottleneck_width": 2},
            {"block": "bottleneck", "blocks": 8, "width": 1.75, "se": True, "act": "relu", "cardinality": 12,
             "bottleneck_width": 2},
            {"block": "basic", "blocks": 2, "width": 0.5, "se": True, "act": "mish"},
            {"block": "bottleneck", "blocks": 6, "width": 1.0, "se": True, "act": "mish", "cardinality": 12,
             "bottleneck_width": 8}],
    }
    for space in RESIDUAL:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=12))
        drawn = []
        for _ in range(4):
            trial = study.ask()
            drawn.append(space.suggest(trial))
            assert not any(name.startswith("opt_") for name in trial.params)
            study.tell(trial, 0.0)
        assert drawn == before[space.name]


def test_options_are_one_definition():
    assert list(_options.OPTIONS) == ["se", "mish", "factorized", "stochastic_depth"]
    assert _options.defaults() == {"se": False, "act": "relu", "factorized": False, "drop_path": 0.0}
    assert [d.name for d in _options.dimensions()] == ["se", "act", "factorized", "drop_path"]
    assert _options.check_names("stochastic_depth, se") == ("se", "stochastic_depth")  # the flag's order is moot
    assert spaces.get("resnet_5m").options == ("se", "mish", "factorized", "stochastic_depth")
    assert spaces.get("xresnet").options == ("factorized", "stochastic_depth")
