"""zoo: every family in one space. The family is the first (categorical) dimension and each family's dimensions are
conditional on it, so a search picks the family itself, under the same exact budgets as the family's own space.

    {"family": "xresnet", "arch": {"block": "basic", "blocks": 3, "width": 1.0, "se": True, "act": "mish"}}

An architecture is the family's name and that family's own architecture dict, nested (convnets has a `family` key of
its own). Everything is delegated to the family's space: validation, the exact parameter count, the analytic MACs,
the network. A family's parameters reach the study named `FAMILY.NAME` (`xresnet.blocks_basic`,
`convnets.family`): each keeps one distribution across trials, as define-by-run samplers need, and no two families'
names collide. Presets are every family's presets, named `FAMILY.PRESET` (`xresnet.se_mxresnet20`).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch.nn as nn

from tpsearch.spaces._base import Space
from tpsearch.spaces._registry import get, register
from tpsearch.spaces._types import Arch, ArchError, Counts, Dimension, check_mapping, one_of

FAMILIES = ("resnet_5m", "xresnet", "convnets", "inception")
_KEYS = ("family", "arch")


class _Prefixed:
    """An Optuna trial as a family's space sees it: each parameter name prefixed with the family's."""

    def __init__(self, trial: Any, family: str) -> None:
        self._trial, self._prefix = trial, f"{family}."

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(self._prefix + name, *args, **kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(self._prefix + name, *args, **kwargs)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._trial.suggest_categorical(self._prefix + name, choices)


@register
class ZooSpace(Space):
    name = "zoo"
    description = ("every family in one space: " + ", ".join(FAMILIES) + "; the family is the first dimension and "
                   "each family's dimensions are conditional on it")

    @property
    def presets(self) -> dict[str, Arch]:  # type: ignore[override]
        return {f"{family}.{name}": {"family": family, "arch": dict(arch)}
                for family in FAMILIES for name, arch in get(family).presets.items()}

    def dimensions(self) -> list[Dimension]:
        dims = [Dimension("family", "fam", " | ".join(FAMILIES), "the family; the dimensions below are its own")]
        for family in FAMILIES:
            dims += [Dimension(f"{family}.{d.name}", d.symbol, d.values, d.meaning)
                     for d in get(family).dimensions()]
        return dims

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        family = trial.suggest_categorical("family", list(FAMILIES))
        arch = get(family).suggest(_Prefixed(trial, family), in_channels=in_channels, image_size=image_size)
        return {"family": family, "arch": arch}

    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        family, inner = self._split(arch)
        return {"family": family, "arch": get(family).validate(inner, in_channels=in_channels, image_size=image_size)}

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        return get(a["family"]).tally(a["arch"], num_classes, in_channels, image_size)

    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        family, inner = self._split(arch)
        return get(family).build(inner, num_classes, in_channels, image_size)

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        family, inner = self._split(arch)
        params = get(family).params_of(inner, in_channels=in_channels, image_size=image_size)
        return {"family": family, **{f"{family}.{k}": v for k, v in params.items()}}

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        # The family whose own smallest is least, in parameters first and MACs next: the floors `tpsearch run`
        # checks a budget against (at 32x32 and on digits that is convnets' on both counts).
        def cost(family: str) -> tuple[int, int]:
            space = get(family)
            least = space.smallest(in_channels=in_channels, image_size=image_size)
            shape = dict(in_channels=in_channels, image_size=image_size)
            return space.count_params(least, **shape), space.count_macs(least, **shape)

        family = min(FAMILIES, key=cost)
        return {"family": family, "arch": get(family).smallest(in_channels=in_channels, image_size=image_size)}

    def smallest_batch_size(self) -> int:
        return min(get(family).smallest_batch_size() for family in FAMILIES)

    @staticmethod
    def _split(arch: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        check_mapping(arch)
        unknown = sorted(set(arch) - set(_KEYS))
        if unknown:
            raise ArchError(unknown[0], f"is not a key of a zoo architecture ({', '.join(_KEYS)}: the family and "
                                        f"its own architecture)")
        family = one_of(arch, "family", FAMILIES)
        inner = arch.get("arch")
        if not isinstance(inner, Mapping):
            raise ArchError("arch", f"must be the {family} architecture as a JSON object, but got {inner!r}")
        return family, inner
