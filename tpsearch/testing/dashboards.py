"""Synthetic studies in the driver's format, for tests and benchmarks of the dashboards.

    >>> from dashboards.testing import make_study
    >>> study = make_study(200)                     # in memory
    >>> study = make_study(10_000, storage="sqlite:///bench.db", study_name="bench")

Architectures come from the real space's `suggest` (drawn at random), so parameter names and distributions are the
ones `tpsearch run` writes; accuracies, curves, timings and workers are invented but shaped like a real run: TPE-ish
improvement over time, ASHA rungs (recorded in images seen, as `training_budget`), a few diverged and failed
trials, several workers on a few nodes.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from typing import Any, Sequence

import numpy as np
import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.trial import FrozenTrial, TrialState

from tpsearch.search._budget import SCHEDULE

MAX_PARAMS = 5_000_000
EPOCHS = 18
RUNGS = (2, 6)  # ASHA with reduction factor 3: trials below a rung's top third stop there
IMAGES_PER_EPOCH = 45_000  # CIFAR-10's training split
_IMAGE = 32


class _RandomTrial:
    """Just enough of `optuna.Trial` for `space.suggest`: draws uniformly and records each distribution."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.distributions[name] = IntDistribution(low, high, step=step, log=log)
        value = low + step * int(self.rng.integers(0, (high - low) // step + 1))
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        self.distributions[name] = FloatDistribution(low, high, step=step, log=log)
        u = float(self.rng.random())
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if log else low + u * (high - low)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.distributions[name] = CategoricalDistribution(list(choices))
        value = choices[int(self.rng.integers(len(choices)))]
        self.params[name] = value
        return value


def _trials(n: int, rng: np.random.Generator, max_params: int, workers: list[str],
            start: dt.datetime) -> list[FrozenTrial]:
    from tpsearch import spaces  # imports torch: only the synthetic studies need it, never the dashboards

    space = spaces.get("resnet_5m")
    free_at = {w: start for w in workers}  # when each worker is next idle: the timeline of a real run
    tells: list[FrozenTrial] = []
    for number in range(n):
        for _ in range(4):  # a sampler soon learns to stay under the budget: redraw most infeasible draws
            t = _RandomTrial(rng)
            arch = space.suggest(t, image_size=_IMAGE)
            params = space.count_params(arch)
            if params <= max_params:
                break
        hp = space.suggest_training(t)
        macs = space.count_macs(arch, image_size=_IMAGE)
        attrs: dict[str, Any] = {"arch": arch, "params": params, "macs": macs, "feasible": params <= max_params}
        if params > max_params:  # told back at once by the driver: never scheduled, never trained
            ts = start + dt.timedelta(seconds=number * 0.5)
            tells.append(_frozen(TrialState.PRUNED, None, t, attrs, {}, ts, ts))
            continue

        progress = number / max(n - 1, 1)
        lr = hp["lr"] / (0.1 if hp["optimizer"] == "sgd" else 2e-3)
        final = (0.80 + 0.08 * progress + 0.035 * math.log10(max(params, 1e4) / 1e5)
                 - 0.04 * abs(math.log10(lr)) + float(rng.normal(0, 0.02)))
        final = float(np.clip(final, 0.3, 0.965))
        tau = float(rng.uniform(2.0, 5.0))
        curve = {e: float(np.clip(final * (1 - 0.75 * math.exp(-e / tau)) + rng.normal(0, 0.008), 0.05, 0.99))
                 for e in range(1, EPOCHS + 1)}

        worker = min(free_at, key=free_at.get)
        per_epoch = 2.0 + macs / 6e7 * float(rng.uniform(0.8, 1.2))  # seconds per epoch, larger nets train slower
        roll = float(rng.random())
        if roll < 0.03:  # the driver tells a diverged trial PRUNED (infeasible by its constraint); a dead worker FAIL
            state, value, stop, reason = ((TrialState.FAIL, None, int(rng.integers(1, 4)), "the worker died")
                                          if roll < 0.015 else
                                          (TrialState.PRUNED, None, int(rng.integers(1, 4)), "diverged"))
            curve = {e: v for e, v in curve.items() if e < stop}
        else:
            state, value, stop, reason = TrialState.COMPLETE, None, EPOCHS, None
            for rung in RUNGS:
                if rng.random() < 0.6 - 0.3 * (final - 0.8) / 0.15:  # the weaker a trial, the likelier it stops
                    state, stop = TrialState.PRUNED, rung
                    break
            curve = {e: v for e, v in curve.items() if e <= stop}
            if state == TrialState.COMPLETE:
                value = curve[EPOCHS]
        seconds = per_epoch * stop
        begin = free_at[worker] + dt.timedelta(seconds=float(rng.uniform(0.1, 1.5)))
        end = begin + dt.timedelta(seconds=seconds)
        free_at[worker] = end
        node = worker.split(":")[0]
        attrs.update(epochs=len(curve) if reason is None else stop, seconds=round(seconds, 2),
                     images_per_s=round(50_000 / per_epoch, 1), device=f"cuda:{int(worker[-1]) % 2}", node=node,
                     worker=worker)
        if reason:
            attrs["reason"] = reason
        if reason == "diverged":
            attrs["chance"] = 0.1
        if state == TrialState.COMPLETE and reason is None and value is not None and value > 0.9:
            attrs["checkpoint"] = f"runs/study/trial_{number}/best.pt"
        tells.append(_frozen(state, value, t, attrs, curve, begin, end))
    return tells


def _frozen(state: TrialState, value: float | None, t: _RandomTrial, attrs: dict[str, Any],
            curve: dict[int, float], begin: dt.datetime, end: dt.datetime) -> FrozenTrial:
    trial = optuna.trial.create_trial(state=state, value=value, params=t.params, distributions=t.distributions,
                                      user_attrs=attrs, intermediate_values=curve)
    trial.datetime_start = begin
    trial.datetime_complete = end
    return trial


def make_study(n_trials: int, *, storage: str | optuna.storages.BaseStorage | None = None,
               study_name: str = "synthetic", seed: int = 0, max_params: int = MAX_PARAMS,
               workers: int = 8, sampler: str = "tpe") -> optuna.Study:
    """A study of `n_trials` finished trials in the driver's format (see the module docstring)."""
    rng = np.random.default_rng(seed)
    # Four nodes of two GPUs each by default: the timeline then has several lanes and several hosts.
    names = [f"10.0.0.{1 + i // 2}:{4100 + i}" for i in range(workers)]
    if isinstance(storage, str):
        storage = optuna.storages.RDBStorage(storage)
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    budget = {"unit": "images", "images_per_epoch": IMAGES_PER_EPOCH, "total": EPOCHS * IMAGES_PER_EPOCH,
              "warmup": IMAGES_PER_EPOCH // 4, "rungs": [r * IMAGES_PER_EPOCH for r in RUNGS],
              "schedule": SCHEDULE, "intermediate_step": "epoch"}
    for key, value in {"space": "resnet_5m", "max_params": max_params, "dataset": "cifar10", "epochs": EPOCHS,
                       "sampler": sampler, "training_budget": budget}.items():
        study.set_user_attr(key, value)
    trials = _trials(n_trials, rng, max_params, names, dt.datetime(2025, 3, 1, 9, 0, 0))
    if isinstance(storage, optuna.storages.RDBStorage):
        _bulk_add(storage, study._study_id, trials)
    else:
        study.add_trials(trials)
    return study


def _bulk_add(storage: optuna.storages.RDBStorage, study_id: int, trials: list[FrozenTrial]) -> None:
    """`study.add_trials` in one transaction through Optuna's own table models.

    `add_trials` commits trial by trial (about 15 ms each on SQLite): 10,000 trials would take minutes of setup.
    Going through the models keeps Optuna's encodings (datetimes as naive UTC, distributions as JSON), and the
    tests read such a study back through the public API to check that it round-trips.
    """
    from optuna.storages._rdb import models
    from sqlalchemy import func, orm, select

    value_type = models.TrialValueModel.TrialValueType
    iv_type = models.TrialIntermediateValueModel.TrialIntermediateValueType
    with orm.Session(storage.engine) as session:
        first = session.scalar(select(func.count()).select_from(models.TrialModel)
                               .where(models.TrialModel.study_id == study_id))
        for number, t in enumerate(trials, start=first or 0):
            row = models.TrialModel(study_id=study_id, number=number, state=t.state,
                                    datetime_start=t.datetime_start, datetime_complete=t.datetime_complete)
            row.params = [models.TrialParamModel(param_name=k, param_value=d.to_internal_repr(t.params[k]),
                                                 distribution_json=optuna.distributions.distribution_to_json(d))
                          for k, d in t.distributions.items()]
            row.user_attributes = [models.TrialUserAttributeModel(key=k, value_json=json.dumps(v))
                                   for k, v in t.user_attrs.items()]
            if t.value is not None:
                row.values = [models.TrialValueModel(objective=0, value=t.value, value_type=value_type.FINITE)]
            row.intermediate_values = [
                models.TrialIntermediateValueModel(step=step, intermediate_value=None if math.isnan(v) else v,
                                                   intermediate_value_type=iv_type.NAN if math.isnan(v)
                                                   else iv_type.FINITE)
                for step, v in t.intermediate_values.items()]
            session.add(row)
        session.commit()


def stop_server(server: subprocess.Popen) -> None:
    """Stop a server process a test started (optuna-dashboard, say): politely, then for certain."""
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    if server.stderr is not None:
        server.stderr.close()
