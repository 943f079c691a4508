"""The bridge between Optuna and Ray Tune: a Ray Tune `Searcher` that asks and tells an Optuna study.

It lives in the driver, so the driver is the only process that writes the study. Compared with Ray's stock
`OptunaSearch` it (1) applies the budgets (parameters; MACs per image with --max-macs) before a trial reaches a
worker, telling infeasible draws back at once with their constraint violations, (2) records a trial stopped by the
scheduler as PRUNED with its learning curve instead of COMPLETE with a truncated score, (3) counts only trained
trials toward `--trials` and replaces failed ones, (4) keeps the attributes and checkpoints that the dashboards and
`export` read, and (5) tells every trained configuration back in a state the sampler reads (the stock one tells a
diverged or out-of-memory trial FAIL, which TPE ignores, so it keeps proposing what fails): a diverged trial
PRUNED and infeasible through its `diverged` constraint, a trial out of memory even at half its batch size PRUNED
and infeasible through its `memory` constraint, each with its reason. TPE ranks infeasible trials after every
trial that trained normally, so neither is ever one of its good trials while such a trial exists (told COMPLETE at
chance accuracy, as before, a diverged trial joined the good set whenever few trials completed). Only a broken
worker (it raised, was killed, timed out) is told FAIL. With a `LaunchOrder` (`--reproducible`) it also draws and
tells in launch order (see `tpsearch.search._scheduler`).
"""
from __future__ import annotations

import math
import os
import warnings
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.search import Searcher

from tpsearch import spaces
from tpsearch._files import atomic_write
from tpsearch.search._options import CHECKPOINT_BYTES, METRIC, RunOptions
from tpsearch.storages import redact
from tpsearch.study import pareto_front, values_for
from tpsearch.study import CHANCE, TOO_SLOW, Outcome, accuracy_of, best_trial, is_trained
from tpsearch.search._scheduler import LaunchOrder
from tpsearch.trainers import DIVERGED, OUT_OF_MEMORY

# The names of the constraints; Optuna's samplers read feasibility from `trial.constraints`. Every finished trial
# carries all of them (0 where it is not violated), so the constraint vector has the same keys throughout the study.
# Optuna writes a constraint once: each is set when it is known (params and macs when drawn, the rest at the end).
CONSTRAINT, MACS_CONSTRAINT, MEMORY, LATENCY, DIVERGED_CONSTRAINT = "params", "macs", "memory", "latency", "diverged"
LATENCY_ATTRS = ("latency_ms", "latency_cv", "throughput", "throughput_batch")
PLACEMENT = ("node", "node_id", "worker", "device")


def _nothing() -> None:
    pass


@dataclass
class Tally:
    """What the progress bar shows, kept up to date as the searcher tells trials (no re-read of the study)."""

    counts: dict[Outcome, int] = field(default_factory=lambda: {o: 0 for o in Outcome})
    best_value: float | None = None
    best_params: int | None = None


class StudySearcher(Searcher):
    def __init__(self, study: optuna.Study, space: spaces.Space, opts: RunOptions, *, shape: dict[str, int],
                 checkpoint_dir: Path | None, max_failures: int | None = None,
                 on_change: Callable[[], None] | None = None, planned_only: bool = False) -> None:
        super().__init__(metric=METRIC, mode="max")
        self.planned_only = planned_only  # train the study's waiting (enqueued) trials only; draw none
        self.study, self.space, self.shape, self.opts = study, space, shape, opts
        self.checkpoint_dir = checkpoint_dir
        self.max_failures = max_failures if max_failures is not None else max(10, opts.trials)
        self.on_change = on_change or _nothing
        self.live: dict[str, optuna.Trial] = {}
        self.stopped_by_scheduler: dict[str, dict[str, Any]] = {}  # the driver shares its scheduler's record here
        self.order: LaunchOrder | None = None  # --reproducible: the driver sets it
        self.held: dict[int, Callable[[], None]] = {}  # launch number -> its tell, held until it is settled
        self.reported: dict[str, set[int]] = {}
        self.placed: dict[str, str] = {}
        self.epoch: dict[str, int] = {}  # the last epoch each running trial reported (the progress bar shows it)
        self.timed_out: dict[str, float] = {}
        self.tally = Tally()
        self.error: str | None = None
        self.untrained = 0  # failed or out-of-memory trials of this run: too many end it
        self.too_slow = 0   # trials of this run over --max-latency-ms: as many as --max-infeasible-draws end it
        trials = study.get_trials(deepcopy=False)
        self.finished = sum(1 for t in trials if is_trained(t))
        self.kept: dict[str, str] = dict(study.user_attrs.get("checkpoints", {}))
        best = best_trial(trials)
        if best is not None:
            self.tally.best_value, self.tally.best_params = accuracy_of(best), best.user_attrs.get("params")

    # -- Ray Tune's Searcher interface -------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.order is not None:
            self._tell_settled()
        if self.error:
            if self.live:
                return None
            self.tell_held()
            return Searcher.FINISHED
        if self.finished + len(self.live) + len(self.held) >= self.opts.trials:
            # Wait rather than finish while trials run: one of them may fail and need a replacement.
            if self.live:
                return None
            self.tell_held()  # the search is ending: no launch is drawn after them (unless one failed)
            if self.finished >= self.opts.trials:
                return Searcher.FINISHED
        if self.order is not None and not self.order.may_launch():
            return None  # an earlier launch is still training: what this one is drawn after is not settled yet
        trial, arch, hparams = self._ask_feasible()
        if trial is None:
            return Searcher.FINISHED if not self.live else None
        if self.order is not None:
            self.order.launch(trial_id)
        self.live[trial_id] = trial
        self.reported[trial_id] = set()
        checkpoint = self.checkpoint_dir is not None and self.opts.keep_checkpoints > 0
        self.on_change()
        config = {"arch": arch, "hparams": hparams, "trial_number": trial.number, "checkpoint": checkpoint}
        if "seed" in trial.user_attrs:  # a trial enqueued with its own seed (`tpsearch ablate`'s repetitions)
            config["seed"] = int(trial.user_attrs["seed"])
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial = self.live.get(trial_id)
        if trial is None:
            return
        if result.get("worker") and self.placed.get(trial_id) != result["worker"]:
            # Where a trial runs is known while it runs (and again after a retry elsewhere): dashboards and
            # fault tests read it from the study.
            self.placed[trial_id] = result["worker"]
            for key in PLACEMENT:
                if key in result:
                    trial.set_user_attr(key, result[key])
        if result.get("status") != "failed":
            self._report(trial_id, trial, result)
        if "epoch" in result and self.epoch.get(trial_id) != result["epoch"]:
            self.epoch[trial_id] = int(result["epoch"])
            self.on_change()

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        if self.order is None:
            self._end(trial_id, trial, result or {}, error)
            return
        # Told once every launch drawn from now on is to see it (`LaunchOrder`); until then it stays RUNNING.
        self.order.finish(trial_id)
        launch = self.order.index[trial_id]
        self.held[launch] = lambda: self._end(trial_id, trial, result or {}, error)
        self._tell_settled()

    def _tell_settled(self) -> None:
        for launch in sorted(n for n in self.held if self.order is not None and self.order.settled(n)):
            self.held.pop(launch)()

    def tell_held(self) -> None:
        """Tell every finished trial still held back (the search is ending: nothing more is drawn after them)."""
        for launch in sorted(self.held):
            self.held.pop(launch)()

    def _end(self, trial_id: str, trial: optuna.Trial, result: dict[str, Any], error: bool) -> None:
        self.placed.pop(trial_id, None)
        self.epoch.pop(trial_id, None)
        # `macs` is recorded when the trial is drawn; `batch_size` is the one it trained at (an OOM retry halves it).
        for key in (*PLACEMENT, *LATENCY_ATTRS, "images_per_s", "checkpoint_error", "batch_size", "oom_retry"):
            if key in result:
                trial.set_user_attr(key, result[key])
        trial.set_user_attr("epochs", int(result.get("epoch", 0)))
        trial.set_user_attr("seconds", float(result.get("time_total_s", 0.0)))
        failure = None if error else result.get("failure")
        limit = self.opts.max_latency_ms
        _end_constraints(trial, memory=1.0 if failure == OUT_OF_MEMORY else 0.0,
                         latency=float(result["latency_ms"] - limit)
                         if limit is not None and "latency_ms" in result else 0.0,
                         diverged=1.0 if failure == DIVERGED else 0.0)
        if error or not result or result.get("status") == "failed":
            reason = result.get("reason") or ("the worker raised or died; see the trial's error file under the "
                                              "run's ray/ folder")
            if trial_id in self.timed_out:
                reason = f"timed out after {self.timed_out[trial_id]:.0f} s (--trial-timeout)"
            if failure == DIVERGED:
                self._diverged(trial)
            elif failure == OUT_OF_MEMORY:
                self._out_of_memory(trial, reason)
            elif failure == TOO_SLOW:
                self._too_slow(trial, reason)
            else:
                self._fail(trial, reason)
        else:
            self._report(trial_id, trial, result)
            if int(result.get("epoch", 0)) >= self.opts.epochs:
                self._complete(trial, result)
            elif trial_id in self.stopped_by_scheduler:
                trial.set_user_attr("stopped", self.stopped_by_scheduler[trial_id])
                self.study.tell(trial, state=TrialState.PRUNED)
                self.tally.counts[Outcome.PRUNED] += 1
                self.finished += 1
            else:  # ended short of its epochs without the scheduler's word
                self._fail(trial, f"ended after {result.get('epoch', 0)} of {self.opts.epochs} epochs")
        self.reported.pop(trial_id, None)
        self.on_change()

    def __getstate__(self) -> dict[str, Any]:
        """Ray Tune pickles the searcher into the run's `tuner.pkl` (for `Tuner.restore`, which tpsearch never uses:
        the study is the state). Neither the study's storage nor its URL goes there: the URL may hold a password."""
        state = self.__dict__.copy()
        state["study"] = None
        state["on_change"] = _nothing  # the driver's progress bar (and its stream) stays with the driver
        state["opts"] = dataclasses.replace(self.opts, storage=redact(self.opts.storage))
        return state

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study in SQL storage is the state, and resuming reopens it."""

    def restore(self, checkpoint_path: str) -> None:
        pass

    def timed_out_after(self, trial_id: str, seconds: float) -> None:
        """The watchdog killed this trial's worker: record why before Ray Tune reports it failed."""
        self.timed_out[trial_id] = seconds

    # -- the driver's side ---------------------------------------------------------------------------------------
    def fail_live(self, reason: str) -> int:
        """Tell every trial still running as FAIL (Ctrl-C, a lost experiment); returns how many. Finished trials held
        back by --reproducible are told as they ended."""
        self.tell_held()
        n = 0
        for trial_id in list(self.live):
            trial = self.live.pop(trial_id)
            _end_constraints(trial)
            self._fail(trial, reason)
            n += 1
        return n

    # -- internals ---------------------------------------------------------------------------------------------
    def _ask_feasible(self) -> tuple[optuna.Trial | None, dict[str, Any], dict[str, Any]]:
        for _ in range(self.opts.max_infeasible_draws):
            if self.planned_only and not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None, {}, {}
            trial = self.study.ask()
            arch = self.space.suggest_with_options(trial, self.opts.options, in_channels=self.shape["in_channels"],
                                                   image_size=self.shape["image_size"])
            hparams = self.space.suggest_training(trial, tricks=self.opts.tricks)
            params = self.space.count_params(arch, **self.shape)
            macs = self.space.count_macs(arch, **self.shape)
            trial.set_user_attr("arch", arch)
            trial.set_user_attr("params", params)
            trial.set_user_attr("macs", macs)
            if not self._constrain(trial, params, macs):
                # Told back at once: TPE learns the feasible region, and no worker second is spent.
                _end_constraints(trial)
                trial.set_user_attr("feasible", False)
                self.study.tell(trial, state=TrialState.PRUNED)
                self.tally.counts[Outcome.INFEASIBLE] += 1
                continue
            trial.set_user_attr("feasible", True)
            trial.set_user_attr("hparams", hparams)
            return trial, arch, hparams
        budget, flags = f"{self.opts.max_params:,} parameters", "--max-params"
        if self.opts.max_macs is not None:
            budget, flags = f"{budget} and {self.opts.max_macs:,} MACs", "--max-params or --max-macs"
        self.error = (f"no configuration of space {self.space.name!r} under {budget} in "
                      f"{self.opts.max_infeasible_draws} draws; raise {flags} or narrow the space")
        return None, {}, {}

    def _constrain(self, trial: optuna.Trial, params: int, macs: int) -> bool:
        """Set both budgets' constraints (value - budget, <= 0 within it) and say whether the draw is within both.

        Every trial carries both, a MACs constraint of 0 when there is no MACs budget, so that TPE compares one
        constraint vector across the study. Both are absolute counts: TPE sums the positive ones to rank
        infeasible draws, so an excess of MACs weighs like an excess of as many parameters.
        """
        violations = {CONSTRAINT: params - self.opts.max_params,
                      MACS_CONSTRAINT: 0 if self.opts.max_macs is None else macs - self.opts.max_macs}
        for name, violation in violations.items():
            trial.set_constraint(name, float(violation))
        return all(v <= 0 for v in violations.values())

    def _report(self, trial_id: str, trial: optuna.Trial, result: dict[str, Any]) -> None:
        epoch, value = result.get("epoch"), result.get(METRIC)
        if epoch is None or value is None or epoch in self.reported[trial_id]:
            return
        if isinstance(value, float) and not math.isfinite(value):
            return
        if len(self.opts.objectives) > 1:
            # Optuna's `report` is single-objective only; the learning curve goes where one study keeps it anyway.
            self.study._storage.set_trial_intermediate_value(trial._trial_id, int(epoch), float(value))
        else:
            trial.report(float(value), step=int(epoch))
        self.reported[trial_id].add(int(epoch))

    def _values(self, trial: optuna.Trial, accuracy: float) -> float | list[float] | None:
        """What the study is told: the accuracy, or with several objectives the accuracy and each cost; None where
        a cost was never measured (a trainable that does not time the model, with latency an objective)."""
        try:
            return values_for(self.opts.objectives, accuracy, trial.user_attrs)
        except (KeyError, TypeError):
            return None

    def _complete(self, trial: optuna.Trial, result: dict[str, Any]) -> None:
        value = float(result[METRIC])
        values = self._values(trial, value)
        if values is None:
            self._fail(trial, f"no value for every objective ({','.join(self.opts.objectives)}) was recorded")
            return
        checkpoint = result.get("checkpoint")
        if checkpoint:
            trial.set_user_attr("checkpoint", checkpoint)
        self.study.tell(trial, values)
        self.tally.counts[Outcome.COMPLETE] += 1
        self.finished += 1
        if checkpoint:
            self._keep_best(trial.number, value, checkpoint)
        if self.tally.best_value is None or value > self.tally.best_value:
            self.tally.best_value, self.tally.best_params = value, trial.user_attrs.get("params")

    def _fail(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("reason", reason)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.tell(trial, state=TrialState.FAIL)
        self.tally.counts[Outcome.FAILED] += 1
        self._untrained(reason)

    def _diverged(self, trial: optuna.Trial) -> None:
        """PRUNED and infeasible (its `diverged` constraint is 1): TPE ranks it after every trial that trained
        normally, so it learns to avoid the learning rates and shapes that diverge without ever taking one for a
        good trial. It was trained, so it counts toward `--trials`."""
        trial.set_user_attr("reason", Outcome.DIVERGED.value)
        trial.set_user_attr(CHANCE, 1.0 / self.shape["num_classes"])
        self.study.tell(trial, state=TrialState.PRUNED)
        self.tally.counts[Outcome.DIVERGED] += 1
        self.finished += 1

    def _out_of_memory(self, trial: optuna.Trial, reason: str) -> None:
        """PRUNED and infeasible (its `memory` constraint is 1), so TPE learns which shapes and batch sizes do not fit,
        as it learns the parameter budget. Not trained, so replaced."""
        trial.set_user_attr("reason", reason)
        trial.set_user_attr("feasible", False)
        self.study.tell(trial, state=TrialState.PRUNED)
        self.tally.counts[Outcome.INFEASIBLE] += 1
        self._untrained(reason)

    def _too_slow(self, trial: optuna.Trial, reason: str) -> None:
        """PRUNED and infeasible (its `latency` constraint is positive), like a draw over the parameter budget, but
        known only once a worker has timed it. Not trained, so replaced; too many in a row end the search."""
        trial.set_user_attr("reason", reason)
        trial.set_user_attr("feasible", False)
        self.study.tell(trial, state=TrialState.PRUNED)
        self.tally.counts[Outcome.INFEASIBLE] += 1
        self.too_slow += 1
        if self.too_slow >= self.opts.max_infeasible_draws:
            self.error = (f"{self.too_slow} architectures were slower than --max-latency-ms "
                          f"{self.opts.max_latency_ms:g} (last: {reason}); raise it or narrow the space")

    def _untrained(self, reason: str) -> None:
        self.untrained += 1
        if self.untrained >= self.max_failures:
            self.error = f"{self.untrained} trials failed or ran out of memory (last: {reason}); stopping the search"

    def _keep_best(self, number: int, value: float, path: str) -> None:
        """Keep the weights of the best K completed trials (and, with several objectives, of every trial on the
        Pareto front, which `export --pareto` writes); delete the rest and record the kept set (paths relative to
        the runs folder, so that a study moved with its runs folder still exports)."""
        values = {int(n): v for n, v in self.study.user_attrs.get("checkpoint_values", {}).items()}
        values[number] = value
        self.kept[str(number)] = path
        ranked = sorted(self.kept, key=lambda n: values.get(int(n), -1.0), reverse=True)
        front: set[str] = set()
        if len(self.opts.objectives) > 1:
            front = {str(t.number) for t in pareto_front(self.study.get_trials(deepcopy=False),
                                                         self.opts.objectives)}
        for n in [n for n in ranked[self.opts.keep_checkpoints:] if n not in front]:
            try:
                os.remove(Path(self.opts.runs_dir) / self.kept.pop(n))  # an absolute path (older studies) stays one
            except OSError:
                pass
        self.study.set_user_attr("checkpoints", self.kept)
        self.study.set_user_attr("checkpoint_values", {n: values[int(n)] for n in self.kept if int(n) in values})


def _end_constraints(trial: optuna.Trial, *, memory: float = 0.0, latency: float = 0.0,
                     diverged: float = 0.0) -> None:
    """The constraints known when a trial ends (0: not violated); every trial gets them, so the keys agree."""
    for name, value in ((MEMORY, memory), (LATENCY, latency), (DIVERGED_CONSTRAINT, diverged)):
        trial.set_constraint(name, value)


class CheckpointReceiver(Callback):
    """Writes the weights a trial's last report carries (`CHECKPOINT_BYTES`) to RUNS/STUDY/checkpoints/ on the
    driver's side, and puts the file's path relative to RUNS in the report in their place.

    Ray Tune lets callbacks change a result before it becomes the trial's last result, which the searcher is told
    at the trial's end: the bytes are gone by then, so no trial object keeps megabytes of weights alive.
    """

    def __init__(self, runs_dir: Path, checkpoint_dir: Path) -> None:
        self.runs_dir, self.checkpoint_dir = runs_dir, checkpoint_dir

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        data = result.pop(CHECKPOINT_BYTES, None)
        if data is None:
            return
        path = self.checkpoint_dir / f"trial_{trial.config['trial_number']}.pt"
        try:
            atomic_write(path, data)
        except OSError as e:  # a full disk costs the weights, never the trained trial
            result["checkpoint_error"] = f"{type(e).__name__}: {e.strerror or e}"
            return
        result["checkpoint"] = os.path.relpath(path, self.runs_dir)
