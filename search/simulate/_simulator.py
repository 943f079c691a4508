"""A search replayed over the strategy table: tpsearch's own searcher and scheduler, a simulated clock.

`simulate` runs the objects a real `tpsearch run` runs (`StudySearcher` over an Optuna study, with its sampler,
constraints and outcome rules; `NoiseAwareASHA` or the stock schedulers) and calls them as Ray Tune's controller
does: for each report, the scheduler's decision first, the searcher told of the result only if the trial goes on
(`TuneController._process_trial_result`), the searcher's `on_trial_complete` with the last result when a trial
stops or ends. Only the training is replaced: a trial "trains" by reading its configuration's curve from the table,
each scoring point arriving after the seconds that stage took when the table was built. `workers` trials run at
once, and events are taken in the order of the simulated clock, so the asynchrony of a real cluster (a trial
judged against whoever reached a rung before it, the sampler drawing while others still train) is reproduced.

Which of the table's seeds a trial sees is drawn from the run's seed and the trial's number (`observed_seed`), as a
real rerun of one configuration sees another seed's noise; regret is always measured on the mean over the seeds.
`replay_trial` is the same reading as a Ray Tune trainable: `run_search(opts, trainable=replay_trial_for(table))`
is a real `tpsearch run` over the table, which the faithfulness test holds to the simulator's decisions.
"""
from __future__ import annotations

import heapq
import logging
import random
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from tpsearch.search._budget import UNIT, Budget
from tpsearch.search._options import METRIC, RunOptions
from tpsearch.study import best_trial
from tpsearch.search._samplers import make_sampler
from tpsearch.search._scheduler import LaunchOrder, NoiseAwareASHA
from tpsearch.search._searcher import StudySearcher
from tpsearch.search.simulate._table import RUN_KEYS, Point, Table
from tpsearch.spaces.resnet_grid import ResNetGrid, config_id

CONTINUE, STOP = "CONTINUE", "STOP"  # Ray Tune's TrialScheduler decisions, by value


@dataclass(frozen=True)
class Strategy:
    """How a search samples and stops: the flags of `tpsearch run` it stands for, or Ray Tune's stock setup."""

    name: str
    sampler: str = "tpe"        # tpe | random (tpsearch's: `make_sampler`)
    scheduler: str = "asha"     # asha | none | hyperband (Ray's AsyncHyperBandScheduler, 3 brackets)
    stop_margin: float = 2.0    # asha: tpsearch's margin in standard errors (0: stock ASHA's rule)
    min_rung_steps: int = 8     # asha: steps below which a trial is not judged at a rung
    startup_trials: int = 10    # tpe: trained trials drawn at random first (--startup-trials)
    stock: bool = False         # Ray Tune's OptunaSearch (TPE) + AsyncHyperBandScheduler, as a user would wire them
    what: str = ""

    def flags(self) -> str:
        if self.stock:
            return "ray.tune OptunaSearch(TPESampler) + ASHAScheduler"
        if self.scheduler == "hyperband":
            return (f"--sampler {self.sampler} --startup-trials {self.startup_trials} + ray.tune "
                    f"AsyncHyperBandScheduler(brackets=3)")
        flags = f"--sampler {self.sampler} --scheduler {self.scheduler}"
        if self.sampler == "tpe":
            flags += f" --startup-trials {self.startup_trials}"
        if self.scheduler == "asha":
            flags += f" --stop-margin {self.stop_margin:g} --min-rung-steps {self.min_rung_steps}"
        return flags


STRATEGIES = {s.name: s for s in (
    Strategy("random", sampler="random", scheduler="none", what="random search, every trial to the end"),
    Strategy("random+asha", sampler="random", stop_margin=0.0, min_rung_steps=0,
             what="random search, ASHA's stock rule"),
    Strategy("random+margin2", sampler="random", what="random search, ASHA stopping 2 SE below the cutoff"),
    Strategy("tpe", scheduler="none", what="tpsearch's TPE, every trial to the end"),
    Strategy("tpe+asha", stop_margin=0.0, min_rung_steps=0, what="tpsearch's TPE, ASHA's stock rule"),
    Strategy("tpe+steps", stop_margin=0.0,
             what="tpsearch's defaults: TPE, ASHA's rule where a trial took 8 steps or more"),
    Strategy("tpe+margin1", stop_margin=1.0, what="tpsearch's TPE, ASHA stopping 1 SE below the cutoff"),
    Strategy("tpe+margin2", what="tpsearch's TPE, ASHA stopping 2 SE below the cutoff (the default until the table)"),
    Strategy("tpe5+steps", startup_trials=5, stop_margin=0.0, what="as tpe+steps, TPE after 5 random trials"),
    Strategy("tpe20+steps", startup_trials=20, stop_margin=0.0, what="as tpe+steps, TPE after 20 random trials"),
    Strategy("tpe+hyperband", scheduler="hyperband", what="tpsearch's TPE, asynchronous Hyperband (3 brackets)"),
    Strategy("stock", stock=True, what="Ray Tune's OptunaSearch + ASHA: stopped trials told COMPLETE"),
)}
DEFAULT = "tpe+steps"  # the strategy `tpsearch run`'s defaults stand for (a test holds them equal)


def observed_seed(table: Table, run_seed: int, number: int) -> int:
    """The table seed whose curve trial `number` of a run seeded `run_seed` sees (fixed by the two numbers)."""
    return table.seeds[random.Random(run_seed * 1_000_003 + number).randrange(len(table.seeds))]


def run_options(table: Table, strategy: Strategy, *, seed: int, trials: int, **extra: Any) -> RunOptions:
    """The options of the `tpsearch run` that `strategy` stands for, over `table`'s schedule (`extra`: others)."""
    fields = {"space": "resnet_grid", **{k: table.meta["run"][k] for k in RUN_KEYS}, "sampler": strategy.sampler,
              "scheduler": "none" if strategy.scheduler == "none" else "asha", "stop_margin": strategy.stop_margin,
              "min_rung_steps": strategy.min_rung_steps, "startup_trials": strategy.startup_trials, "seed": seed,
              "trials": trials, "max_macs": None,
              "progress": False}
    return RunOptions(**{**fields, **extra})


def budget_of_table(table: Table, opts: RunOptions) -> Budget:
    per_epoch = int(table.meta["run"]["train_images"])
    return Budget(images_per_epoch=per_epoch, total=opts.epochs * per_epoch, warmup=0,
                  rungs=tuple(e * per_epoch for e in opts.rung_epochs()), val_images=int(table.meta["val_images"]))


def report_of(point: Point, params: dict[str, Any], elapsed: float, iteration: int) -> dict[str, Any]:
    """What the worker would report at `point` (a failed run: what it reports on failing)."""
    if point.failure:
        return {"epoch": point.epoch - 1, METRIC: 0.0, "status": "failed", "failure": point.failure,
                "reason": point.failure, "batch_size": params["batch_size"], "time_total_s": elapsed,
                "training_iteration": iteration}
    return {"epoch": point.epoch, UNIT: point.images, METRIC: point.accuracy, "status": "running",
            "batch_size": params["batch_size"], "time_total_s": elapsed, "training_iteration": iteration}


@dataclass
class Trace:
    """One simulated search: after each trial ended, the simulated time, the worker-seconds spent, the trained
    trials and the regret of the configuration the search would export then."""

    strategy: str
    seed: int
    time: list[float] = field(default_factory=list)
    spent: list[float] = field(default_factory=list)
    trained: list[int] = field(default_factory=list)
    regret: list[float] = field(default_factory=list)
    stopped: int = 0
    exported: str | None = None
    study: optuna.Study | None = None  # tpsearch's searcher's study (the stock setup's is Ray's OptunaSearch's)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # per trial, in the order they ended

    @property
    def final_regret(self) -> float:
        return self.regret[-1] if self.regret else float("nan")


class _Trial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


class _Running:
    def __init__(self, trial_id: str, number: int, params: dict[str, Any], curve: list[Point], start: float) -> None:
        self.trial_id, self.number, self.params, self.curve, self.start = trial_id, number, params, curve, start
        self.next = 0
        self.elapsed = 0.0


def simulate(table: Table, strategy: Strategy, *, seed: int, trials: int, workers: int = 4,
             space: ResNetGrid | None = None, reproducible: bool = False) -> Trace:
    """Replay one search of `trials` trained trials with `workers` at once over `table` (see the module)."""
    space = space or ResNetGrid()
    opts = run_options(table, strategy, seed=seed, trials=trials, concurrency=workers, reproducible=reproducible)
    budget = budget_of_table(table, opts)
    shape = dict(table.meta["shape"])
    np.random.seed(seed)  # Ray's Hyperband draws each trial's bracket from NumPy's global generator
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if strategy.stock:
        driver: _Driver = _StockDriver(table, space, opts, budget, shape)
    else:
        driver = _SearcherDriver(table, space, opts, budget, shape, strategy, reproducible)
    trace = Trace(strategy.name, seed)
    events: list[tuple[float, int, str]] = []
    running: dict[str, _Running] = {}
    clock, spent, sequence, ids = 0.0, 0.0, 0, 0
    finished = False
    while True:
        while not finished and len(running) < workers:
            trial_id = f"t{ids:05d}"
            got = driver.suggest(trial_id)
            if got is None:
                break
            if got == "FINISHED":
                finished = True
                break
            ids += 1
            number, params = got
            curve = table.curves[(config_id(params), observed_seed(table, seed, number))]
            running[trial_id] = _Running(trial_id, number, params, curve, clock)
            heapq.heappush(events, (clock + curve[0].seconds, sequence, trial_id))
            sequence += 1
            driver.added(trial_id)
        if not events:
            break
        clock, _, trial_id = heapq.heappop(events)
        run = running[trial_id]
        point = run.curve[run.next]
        spent += point.seconds
        run.elapsed += point.seconds
        run.next += 1
        result = report_of(point, run.params, run.elapsed, run.next)
        decision = driver.on_result(trial_id, result)
        last = run.next >= len(run.curve)
        if decision == STOP or last:
            driver.on_complete(trial_id, result)
            running.pop(trial_id)
            trace.decisions.append({"number": run.number, "config": config_id(run.params), "images": point.images,
                                    "stopped": decision == STOP and not last})
            trace.stopped += decision == STOP and not last
            exported = driver.exported()
            trace.time.append(clock)
            trace.spent.append(spent)
            trace.trained.append(driver.trained())
            trace.exported = exported
            trace.regret.append(table.best - table.final[exported] if exported else float("nan"))
        else:
            heapq.heappush(events, (clock + run.curve[run.next].seconds, sequence, trial_id))
            sequence += 1
    driver.close()
    trace.study = driver.study if isinstance(driver, _SearcherDriver) else driver.search._ot_study
    return trace


class _Driver:
    def suggest(self, trial_id: str) -> tuple[int, dict[str, Any]] | str | None: ...
    def added(self, trial_id: str) -> None: ...
    def on_result(self, trial_id: str, result: dict[str, Any]) -> str: ...
    def on_complete(self, trial_id: str, result: dict[str, Any]) -> None: ...
    def exported(self) -> str | None: ...
    def trained(self) -> int: ...
    def close(self) -> None: ...


class _SearcherDriver(_Driver):
    """tpsearch's own: `StudySearcher` over an in-memory study, with the run's scheduler."""

    def __init__(self, table: Table, space: ResNetGrid, opts: RunOptions, budget: Budget, shape: dict[str, int],
                 strategy: Strategy, reproducible: bool) -> None:
        self.study = optuna.create_study(direction="maximize", sampler=make_sampler(opts),
                                         storage=optuna.storages.InMemoryStorage())
        self.searcher = StudySearcher(self.study, space, opts, shape=shape, checkpoint_dir=None)
        self.max_t = budget.total
        if reproducible:
            self.searcher.order = LaunchOrder(window=opts.concurrency or 1)
        self.stock_stops = False
        if strategy.scheduler == "asha":
            self.scheduler: Any = NoiseAwareASHA(rungs=budget.rungs, max_t=budget.total,
                                                 reduction_factor=opts.reduction_factor,
                                                 val_images=budget.val_images, margin=opts.stop_margin,
                                                 min_steps=opts.min_rung_steps, order=self.searcher.order)
            self.searcher.stopped_by_scheduler = self.scheduler.stopped
        elif strategy.scheduler == "hyperband":
            self.scheduler = _ray_asha(budget, opts, brackets=3)
            self.stock_stops = True
        else:
            self.scheduler = None

    def suggest(self, trial_id: str) -> tuple[int, dict[str, Any]] | str | None:
        config = self.searcher.suggest(trial_id)
        if config is None or isinstance(config, str):
            return config
        trial = self.searcher.live[trial_id]
        return trial.number, {k: trial.params[k] for k in trial.params}

    def added(self, trial_id: str) -> None:
        if self.stock_stops:
            self.scheduler.on_trial_add(None, _Trial(trial_id))

    def on_result(self, trial_id: str, result: dict[str, Any]) -> str:
        decision = CONTINUE if self.scheduler is None else self.scheduler.on_trial_result(None, _Trial(trial_id),
                                                                                            result)
        if decision == STOP and self.stock_stops and result.get(UNIT, 0) < self.max_t:
            # Ray's schedulers keep no evidence; the searcher records a stop as the scheduler's word, as in a run.
            self.searcher.stopped_by_scheduler[trial_id] = {"images": result[UNIT], "score": result[METRIC]}
        if decision != STOP:
            self.searcher.on_trial_result(trial_id, result)
        return decision

    def on_complete(self, trial_id: str, result: dict[str, Any]) -> None:
        if self.stock_stops:
            self.scheduler.on_trial_complete(None, _Trial(trial_id), result)
        self.searcher.on_trial_complete(trial_id, result)

    def exported(self) -> str | None:
        best = best_trial(self.study.get_trials(deepcopy=False))
        return config_id(best.params) if best is not None else None

    def trained(self) -> int:
        return self.searcher.finished

    def close(self) -> None:
        self.searcher.tell_held()


class _StockDriver(_Driver):
    """Ray Tune's `OptunaSearch` with Optuna's default TPE and Ray's ASHA, as a user would wire them: every trial
    that ends, stopped or not, is told COMPLETE with its last score; nothing is known of budgets or failures."""

    def __init__(self, table: Table, space: ResNetGrid, opts: RunOptions, budget: Budget, shape: dict[str, int]
                 ) -> None:
        from ray.tune.search.optuna import OptunaSearch

        grid = space.grid
        self.sampler = optuna.samplers.TPESampler(seed=opts.seed)

        def define(trial: optuna.Trial) -> None:
            for key, values in grid.items():
                trial.suggest_categorical(key, list(values))

        logging.getLogger("ray.tune.search.optuna.optuna_search").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.search = OptunaSearch(space=define, metric=METRIC, mode="max", sampler=self.sampler, seed=opts.seed)
        self.scheduler = _ray_asha(budget, opts, brackets=1)
        self.trials, self.done = opts.trials, 0
        self.numbers: dict[str, int] = {}

    def suggest(self, trial_id: str) -> tuple[int, dict[str, Any]] | str | None:
        if len(self.numbers) >= self.trials:
            return "FINISHED"
        params = self.search.suggest(trial_id)
        self.numbers[trial_id] = len(self.numbers)
        return self.numbers[trial_id], params

    def added(self, trial_id: str) -> None:
        self.scheduler.on_trial_add(None, _Trial(trial_id))

    def on_result(self, trial_id: str, result: dict[str, Any]) -> str:
        decision = self.scheduler.on_trial_result(None, _Trial(trial_id), result)
        if decision != STOP:
            self.search.on_trial_result(trial_id, result)
        return decision

    def on_complete(self, trial_id: str, result: dict[str, Any]) -> None:
        self.scheduler.on_trial_complete(None, _Trial(trial_id), result)
        self.search.on_trial_complete(trial_id, result)
        self.done += 1

    def exported(self) -> str | None:
        study = self.search._ot_study
        done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        return config_id(max(done, key=lambda t: t.value).params) if done else None

    def trained(self) -> int:
        return self.done

    def close(self) -> None:
        pass


def _ray_asha(budget: Budget, opts: RunOptions, *, brackets: int) -> Any:
    from ray.tune.schedulers import AsyncHyperBandScheduler

    grace = budget.rungs[0] if budget.rungs else budget.total
    return AsyncHyperBandScheduler(time_attr=UNIT, metric=METRIC, mode="max", max_t=budget.total,
                                   grace_period=grace, reduction_factor=opts.reduction_factor, brackets=brackets)


def replay_trial_for(table: Table) -> Callable[..., None]:
    """A Ray Tune function trainable that trains nothing: it reports the table's curve of the trial's configuration
    (the seed `observed_seed` picks), as `tpsearch.search._worker.run_trial` would report a training."""

    def replay_trial(config: dict[str, Any], *, opts: RunOptions, space: Any) -> None:
        from ray import tune

        params = space.params_of(config["arch"], image_size=table.meta["shape"]["image_size"])
        params.update({k: config["hparams"][k] for k in ("lr", "batch_size", "weight_decay")})
        curve = table.curves[(config_id(params), observed_seed(table, opts.seed, config["trial_number"]))]
        elapsed = 0.0
        for i, point in enumerate(curve, start=1):
            elapsed += point.seconds
            report = report_of(point, params, elapsed, i)
            report.pop("time_total_s")
            report.pop("training_iteration")
            tune.report(report)
            if point.failure:
                return

    return replay_trial
