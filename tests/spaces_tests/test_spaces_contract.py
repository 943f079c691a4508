"""The contract every registered space fulfils, parametrized from the registry (a new space is tested at once)."""
from __future__ import annotations

import json

import optuna
import pytest
import torch

from tpsearch import spaces
SPACES = [spaces.get(n) for n in spaces.names()]


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sampled(space: spaces.Space, n: int, seed: int, **shape) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(n):
        trial = study.ask()
        archs.append(space.suggest(trial, **shape))
        study.tell(trial, 0.0)
    return archs


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_count_params_is_exact_on_500_sampled_configurations(space):
    # Built on the meta device: torch's own modules count every weight, yet nothing is allocated,
    # so configurations of billions of parameters are checked as cheaply as small ones.
    archs = _sampled(space, 500, seed=0)
    assert len({json.dumps(a, sort_keys=True) for a in archs}) > 450
    for arch in archs:
        with torch.device("meta"):
            model = space.build(arch)
        assert space.count_params(arch) == _numel(model), arch


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
@pytest.mark.parametrize("shape", [dict(num_classes=100, in_channels=1, image_size=8),
                                   dict(num_classes=7, in_channels=3, image_size=20),
                                   dict(num_classes=10, in_channels=4, image_size=64)])
def test_count_params_is_exact_for_other_shapes(space, shape):
    archs = _sampled(space, 100, seed=1, in_channels=shape["in_channels"], image_size=shape["image_size"])
    for arch in archs:
        with torch.device("meta"):
            model = space.build(arch, **shape)
        assert space.count_params(arch, **shape) == _numel(model), arch


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_small_sampled_models_run_forward_with_real_weights(space):
    archs = [a for a in _sampled(space, 300, seed=2) if space.count_params(a) < 300_000][:8]
    assert archs, "the space should hold small models"
    for arch in archs:
        model = space.build(arch).eval()
        assert space.count_params(arch) == _numel(model)
        with torch.no_grad():
            out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_presets_are_json_and_exact(space):
    assert space.presets
    for name, arch in space.presets.items():
        assert json.loads(json.dumps(arch)) == arch
        assert space.count_params(arch) == _numel(space.build(arch)), name


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_suggest_is_define_by_run_and_deterministic(space):
    a = _sampled(space, 20, seed=3)
    b = _sampled(space, 20, seed=3)
    assert a == b
    for arch in a:
        assert space.validate(arch) == arch


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_count_params_allocates_nothing(space, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("count_params allocated a tensor")

    arch = next(iter(space.presets.values()))
    monkeypatch.setattr(torch, "empty", refuse)
    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    assert space.count_params(arch) > 0


def test_registry_refuses_duplicates_and_lists_names_for_unknown():
    with pytest.raises(spaces.UnknownSpaceError, match="resnet_5m"):
        spaces.get("resnet_9m")

    space_type = type(spaces.get("resnet_5m"))
    with pytest.raises(ValueError, match="registered already"):
        spaces.register(space_type)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_params_of_inverts_suggest(space):
    for arch in _sampled(space, 50, seed=4) + list(space.presets.values()):
        params = space.params_of(arch)
        assert space.suggest(optuna.trial.FixedTrial(params)) == space.validate(arch)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_smallest_is_a_lower_bound_of_the_space(space):
    floor = space.count_params(space.smallest())
    assert floor <= min(space.count_params(a) for a in _sampled(space, 300, seed=5))
    assert space.suggest(optuna.trial.FixedTrial(space.params_of(space.smallest()))) == space.smallest()
