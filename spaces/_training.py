"""Training hyperparameters that every space searches: one definition, shared by all spaces.

Each is one `Hparam` record in `HPARAMS`, and every view of it is read from there: the `TrainConfig` field it sets
(its key in a trial's `hparams`) and that field's default, how a trial draws it (`suggest`) and the params that
draw a given value (`params_of`), its row in `tpsearch spaces` (`dimensions`), the name `--tricks` searches it by
(`SEARCHED_TRICKS`), its switch in `tpsearch ablate`'s chain (`TRICKS`) and its `tpsearch train` flag. A new
trick is one record here and its implementation in the trainer (the field, its check, what it does).

Two kinds. The base dimensions (optimizer, learning rate, weight decay, batch size, label smoothing) are drawn in
every trial. The trick dimensions (mixup, the confidence penalty, the schedule, the crop's padding) are drawn only
when a search names them (`tpsearch run --tricks mixup,schedule`, `suggest(trial, tricks=...)`); unnamed, they stay
at the trainer's defaults (off; cosine; reflection) and cost no Optuna call, so a seeded search draws exactly what
it drew before they existed.

`TRICKS` is the other view of the same fields: the switches of `tpsearch ablate`'s chain, each from the value a
bare baseline trains with to the value the trick trains with. The two views differ: a base dimension can be a
switch (label smoothing; AdamW, a value of the optimizer), and a switch names a value of its field (cosine, the
schedule; reflect, the padding).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from tpsearch.spaces._types import Dimension
from tpsearch.trainers import OPTIMIZERS, PAD_MODES, SCHEDULES, TrainConfig  # the trainer implements; spaces search

BATCH_SIZES = (64, 128, 256, 512)


@dataclass(frozen=True)
class Choice:
    """One of `choices`, Optuna's categorical."""

    choices: tuple[Any, ...]

    def draw(self, trial: Any, name: str, drawn: Mapping[str, Any]) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def params(self, name: str, value: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {name: value}

    def flag(self) -> dict[str, Any]:
        kind = type(self.choices[0])
        return {"choices": self.choices} if kind is str else {"type": kind, "choices": self.choices}


@dataclass(frozen=True)
class Uniform:
    """A float in [low, high], uniform or (`log`) log-uniform."""

    low: float
    high: float
    log: bool = False

    def draw(self, trial: Any, name: str, drawn: Mapping[str, Any]) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def params(self, name: str, value: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {name: float(value)}

    def flag(self) -> dict[str, Any]:
        return {"type": float}


@dataclass(frozen=True)
class ByOptimizer:
    """A log-uniform float whose range depends on the optimizer drawn before it, one param per optimizer
    (NAME_sgd, NAME_adamw): a conditional dimension."""

    ranges: Mapping[str, tuple[float, float]]

    def draw(self, trial: Any, name: str, drawn: Mapping[str, Any]) -> float:
        optimizer = drawn["optimizer"]
        return trial.suggest_float(f"{name}_{optimizer}", *self.ranges[optimizer], log=True)

    def params(self, name: str, value: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {f"{name}_{hparams['optimizer']}": float(value)}

    def flag(self) -> dict[str, Any]:
        return {"type": float}


@dataclass(frozen=True)
class OnOff:
    """0 (off), or on at a float in [low, high]: the on/off param `gate` first, the float only when on."""

    gate: str
    low: float
    high: float

    def draw(self, trial: Any, name: str, drawn: Mapping[str, Any]) -> float:
        # On/off first: "off" is a point TPE can find, which a range starting at 0 would almost never sample.
        if trial.suggest_categorical(self.gate, [False, True]):
            return trial.suggest_float(name, self.low, self.high)
        return 0.0

    def params(self, name: str, value: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
        value = float(value)
        return {self.gate: value > 0, **({name: value} if value > 0 else {})}

    def flag(self) -> dict[str, Any]:
        return {"type": float}


@dataclass(frozen=True)
class Switch:
    """A field's step in `tpsearch ablate`'s chain: the trick `name`, from `off` (the chain's bare baseline) to
    `on` (the trick at a common setting); `place` orders ablate's list of them."""

    place: int
    name: str
    off: Any
    on: Any


@dataclass(frozen=True)
class Hparam:
    """One training hyperparameter, every view of it. `field` is the `TrainConfig` field it sets and its key in a
    trial's `hparams`; `draw` how a trial draws it, and the params that draw a given value; `symbol`, `values`
    and `meaning` its row in `tpsearch spaces`; `trick` the name `--tricks` searches it by (also the first param
    it draws, which is how rerank reads a trial's tricks back), None for a base dimension, drawn in every trial;
    `switch` its step in `tpsearch ablate`'s chain, if it is one; `help` (and `metavar`) its `tpsearch train`
    flag, --FIELD, None for none made from here."""

    field: str
    symbol: str
    values: str
    meaning: str
    draw: Choice | Uniform | ByOptimizer | OnOff
    trick: str | None = None
    switch: Switch | None = None
    help: str | None = None
    metavar: str | None = None

    @property
    def default(self) -> Any:
        """The trainer's value when the field is not given: a trick's, when a search does not name it."""
        return _TRAINER_DEFAULTS[self.field]

    def dimension(self) -> Dimension:
        values = self.values if self.trick is None else f"{self.values} (--tricks {self.trick})"
        return Dimension(self.field, self.symbol, values, self.meaning)

    def flag(self) -> dict[str, Any]:
        """`argparse`'s keywords for `tpsearch train`'s --FIELD (its type or choices, default and help)."""
        keywords = {**self.draw.flag(), "default": self.default, "help": self.help}
        return keywords if self.metavar is None else {**keywords, "metavar": self.metavar}


_TRAINER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

# In the order a trial draws them, which is HPARAM_KEYS' order: the base dimensions, then the tricks a search names.
HPARAMS: dict[str, Hparam] = {h.field: h for h in (
    Hparam("optimizer", "opt", "sgd | adamw", "SGD with Nesterov momentum 0.9, or AdamW", Choice(OPTIMIZERS),
           switch=Switch(6, "adamw", off="sgd", on="adamw"),
           help="SGD with Nesterov momentum, or AdamW (default: %(default)s)"),
    # SGD and AdamW live at learning rates two decades apart, so each gets its own range.
    Hparam("lr", "lr", "sgd: 0.01..0.4 log; adamw: 1e-4..1e-2 log", "peak learning rate (warm-up, then decay)",
           ByOptimizer({"sgd": (1e-2, 0.4), "adamw": (1e-4, 1e-2)}),
           help="peak learning rate (default: 0.1 for sgd, 2e-3 for adamw)"),
    Hparam("weight_decay", "wd", "1e-5..1e-3 log", "weight decay", Uniform(1e-5, 1e-3, log=True),
           help="(default: %(default)s)"),
    # No flag from here: `tpsearch train` has --batch-size beside --epochs.
    Hparam("batch_size", "bs", "64 | 128 | 256 | 512", "training batch size", Choice(BATCH_SIZES)),
    Hparam("label_smoothing", "ls", "0..0.2", "label smoothing of the cross-entropy", Uniform(0.0, 0.2),
           switch=Switch(3, "label_smoothing", off=0.0, on=0.1), help="(default: %(default)s)"),
    Hparam("mixup_alpha", "mix", "off | on: 0.1..0.4", "mixup: batch blended with its permutation, Beta(a, a); "
           "default off", OnOff("mixup", 0.1, 0.4), trick="mixup", switch=Switch(4, "mixup", off=0.0, on=0.2),
           help="mixup: each batch blended with a permutation of itself, weights from Beta(alpha, alpha); 0 is off "
                "(default: %(default)s)"),
    Hparam("confidence_penalty", "cp", "0..0.2", "loss minus beta x the prediction's entropy; default 0",
           Uniform(0.0, 0.2), trick="confidence_penalty", switch=Switch(5, "confidence_penalty", off=0.0, on=0.1),
           help="train on the loss minus BETA times the mean entropy of the prediction (default: %(default)s)",
           metavar="BETA"),
    Hparam("schedule", "sched", "cosine | step", "decay after warm-up; step: x0.1 at 50%, 75%; default cosine",
           Choice(SCHEDULES), trick="schedule", switch=Switch(1, "cosine", off="step", on="cosine"),
           help="learning-rate decay after the warm-up: cosine to zero, or step (x0.1 at 50%% and 75%% of the run) "
                "(default: %(default)s)"),
    Hparam("pad_mode", "pad", "reflect | zero", "padding of the random crop; default reflect", Choice(PAD_MODES),
           trick="pad_mode", switch=Switch(2, "reflect", off="zero", on="reflect"),
           help="padding of the random crop: reflection or zeros (default: %(default)s)"),
)}

# What `--tricks` may name: each adds its dimension(s) to the draw, in this order whatever order it was named in.
SEARCHED_TRICKS: dict[str, Hparam] = {h.trick: h for h in HPARAMS.values() if h.trick is not None}


@dataclass(frozen=True)
class Trick:
    """One step of `tpsearch ablate`'s chain: the training field `field` switched from `off` (the chain's bare
    baseline) to `on` (the trick at a common setting)."""

    name: str
    field: str
    off: Any
    on: Any


# The records' switches in their places: the SE-MXResNet project's tricks and two more, each at the setting it is
# commonly used with.
TRICKS: dict[str, Trick] = {t.name: t for t in (
    Trick(h.switch.name, h.field, h.switch.off, h.switch.on)
    for h in sorted((h for h in HPARAMS.values() if h.switch is not None), key=lambda h: h.switch.place))}


def check_tricks(tricks: Iterable[str]) -> list[str]:
    """`tricks` as a list, or ValueError naming the first unknown one and the known ones."""
    tricks = list(tricks)
    for name in tricks:
        if name not in SEARCHED_TRICKS:
            raise ValueError(f"unknown trick {name!r} to search; choose from: {', '.join(SEARCHED_TRICKS)}")
    return tricks


def suggest(trial: Any, tricks: Iterable[str] = ()) -> dict[str, Any]:
    named = set(check_tricks(tricks))
    hparams: dict[str, Any] = {}
    for h in HPARAMS.values():
        if h.trick is None or h.trick in named:
            hparams[h.field] = h.draw.draw(trial, h.field, hparams)
    return hparams


def params_of(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The trial params that make `suggest(trial, tricks=SEARCHED_TRICKS)` return `hparams` (as `Space.params_of`
    is for an architecture): how a known training configuration is enqueued in a study. Trick fields that
    `hparams` leaves out are at the trainer's defaults."""
    params: dict[str, Any] = {}
    for h in HPARAMS.values():
        value = hparams[h.field] if h.trick is None else hparams.get(h.field, h.default)
        params.update(h.draw.params(h.field, value, hparams))
    return params


def dimensions() -> list[Dimension]:
    return [h.dimension() for h in HPARAMS.values()]
