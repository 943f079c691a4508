"""The zoo space: every family behind one categorical dimension, each family's parameters under its own prefix,
every count delegated exactly to the family's space."""
from __future__ import annotations

import optuna
import pytest
import torch

from tpsearch import spaces
from tpsearch.spaces.zoo import FAMILIES

ZOO = spaces.get("zoo")


def test_every_familys_presets_are_zoo_presets_with_the_same_counts():
    assert len(ZOO.presets) == sum(len(spaces.get(f).presets) for f in FAMILIES)
    for family in FAMILIES:
        space = spaces.get(family)
        for name, arch in space.presets.items():
            nested = ZOO.preset(f"{family}.{name}")
            assert nested == {"family": family, "arch": arch}
            assert ZOO.count_params(nested, num_classes=7) == space.count_params(arch, num_classes=7)
            assert ZOO.count_macs(nested) == space.count_macs(arch)


def test_the_family_is_drawn_first_and_each_familys_names_are_its_own():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        arch = ZOO.suggest(trial)
        family = arch["family"]
        seen.add(family)
        assert list(trial.params)[0] == "family" and trial.params["family"] == family
        assert all(name.startswith(f"{family}.") for name in list(trial.params)[1:])
        study.tell(trial, 0.0)
    assert seen == set(FAMILIES)


def test_the_network_is_the_familys_own():
    arch = ZOO.preset("xresnet.se_mxresnet20")
    with torch.device("meta"):
        model, own = ZOO.build(arch), spaces.get("xresnet").build(arch["arch"])
    assert type(model) is type(own) and str(model) == str(own)


@pytest.mark.parametrize("arch, key", [({"family": "vgg", "arch": {}}, "family"),
                                       ({"family": "xresnet"}, "arch"),
                                       ({"family": "xresnet", "arch": {}, "extra": 1}, "extra"),
                                       ({"family": "xresnet", "arch": {"block": "wide"}}, "block")])
def test_a_bad_architecture_names_what_is_wrong(arch, key):
    with pytest.raises(spaces.ArchError) as info:
        ZOO.validate(arch)
    assert info.value.dimension == key
