"""Architecture options of the residual spaces, as data: one definition of each option's arch key, its off value,
its values, what it does and how Optuna samples it.

An option is searched only when a run names it (`tpsearch run --options se,mish,factorized,stochastic_depth`):
a space's own `suggest` never draws one, so a seeded search without options draws exactly the trials it drew
before options existed. A space lists the options it honours in `Space.options`; `Space.suggest_options` samples
them, and the caller merges the result into the architecture the space suggested. In an architecture an option is
absent when off, and a space's `validate` keeps only the options that are on, so architectures, presets and
studies from before stay byte-identical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from tpsearch.exceptions import UsageError
from tpsearch.spaces._layers import ACTIVATIONS
from tpsearch.spaces._types import ArchError, Dimension

DROP_PATH_RANGE = (0.0, 0.3)  # sampled; a given architecture may hold any drop_path in [0, 1)


def _bool(key: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ArchError(key, f"must be true or false, but got {value!r}")
        return value
    return check


def _act(value: Any) -> str:
    if value not in ACTIVATIONS:
        raise ArchError("act", f"must be one of {', '.join(ACTIVATIONS)}, but got {value!r}")
    return value


def _drop_path(value: Any) -> float:
    # 1 itself would drop the last block always and divide its kept samples by 0.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value < 1.0:
        raise ArchError("drop_path", f"must be a probability in [0, 1) (the last block's chance of being dropped), "
                                     f"but got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Option:
    """One option: `name` is what a run names, `key` the architecture's key, `default` its value when off."""

    name: str
    key: str
    default: Any
    symbol: str
    values: str
    meaning: str
    param: str  # the Optuna param name
    sample: Callable[[Any, str], Any]  # (trial, param) -> value
    check: Callable[[Any], Any]  # value -> normalised value, or ArchError

    def dimension(self) -> Dimension:
        return Dimension(self.key, self.symbol, self.values, f"{self.meaning} (--options {self.name})")


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("se", "se", False, "SE", "off | on",
           "squeeze-excite (ratio 16, at least 1 hidden unit) on every residual branch, before the addition",
           "opt_se", lambda trial, p: trial.suggest_categorical(p, [False, True]), _bool("se")),
    Option("mish", "act", "relu", "act", " | ".join(ACTIVATIONS), "activation of the whole network",
           "opt_act", lambda trial, p: trial.suggest_categorical(p, list(ACTIVATIONS)), _act),
    Option("factorized", "factorized", False, "fact", "off | on",
           "every kxk conv (k > 1) of a residual branch becomes a 1xk then a kx1 conv, nothing between them",
           "opt_factorized", lambda trial, p: trial.suggest_categorical(p, [False, True]), _bool("factorized")),
    Option("stochastic_depth", "drop_path", 0.0, "p_L",
           f"{DROP_PATH_RANGE[0]:g}..{DROP_PATH_RANGE[1]:g} (any in [0, 1) if given)",
           "stochastic depth: block l of L drops its residual branch per sample in training with p_l = p_L l / L",
           "opt_drop_path", lambda trial, p: trial.suggest_float(p, *DROP_PATH_RANGE), _drop_path),
)}


def check_names(names: Iterable[str] | str) -> tuple[str, ...]:
    """The named options in `OPTIONS`' order, once each (so a run's order of names cannot change its draws), or
    `UsageError` listing the known ones. A string is a comma-separated list, as the flag gives it."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    for name in names:
        if name not in OPTIONS:
            raise UsageError(f"unknown option {name!r}; known options: {', '.join(OPTIONS)}")
    return tuple(n for n in OPTIONS if n in names)


def keys(names: Iterable[str] | str) -> tuple[str, ...]:
    return tuple(OPTIONS[n].key for n in check_names(names))


def suggest(trial: Any, names: Iterable[str] | str) -> dict[str, Any]:
    """The named options sampled from `trial`, as architecture keys and values (off values included: a space's
    `validate` drops them)."""
    return {OPTIONS[n].key: OPTIONS[n].sample(trial, OPTIONS[n].param) for n in check_names(names)}


def params_of(arch: Mapping[str, Any], names: Iterable[str] | str) -> dict[str, Any]:
    """The trial params that make `suggest` return the named options of `arch` (an absent option is off)."""
    return {OPTIONS[n].param: OPTIONS[n].check(arch.get(OPTIONS[n].key, OPTIONS[n].default))
            for n in check_names(names)}


def dimensions(names: Iterable[str] | str = tuple(OPTIONS)) -> list[Dimension]:
    return [OPTIONS[n].dimension() for n in check_names(names)]


def defaults() -> dict[str, Any]:
    """Every option's architecture key and its off value."""
    return {o.key: o.default for o in OPTIONS.values()}


def normalise(arch: Mapping[str, Any], names: Iterable[str] | str) -> dict[str, Any]:
    """The named options of `arch` that are on, checked and normalised; `ArchError` for a bad value. Off ones are
    left out, so that an architecture without options normalises to itself."""
    on = {}
    for n in check_names(names):
        o = OPTIONS[n]
        if o.key in arch:
            value = o.check(arch[o.key])
            if value != o.default:
                on[o.key] = value
    return on
