"""`tpsearch run`: validate everything, open the study, resume it, and let Ray Tune train the sampled trials.

Order matters: every check a user's input can fail (space, sampler, data, enqueued architectures, budget, storage,
an existing study's space and direction) runs before the first write, so bad input leaves the storage untouched.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import optuna
from optuna.trial import TrialState

from tpsearch import spaces
from tpsearch.exceptions import UsageError
from tpsearch.search._auto import AUTO, auto_gpus_per_trial, local_gpu_memory, settled_max_macs
from tpsearch.search._cluster import cluster_address, on_another_host, start_ray
from tpsearch.search._budget import Budget, budget_of
from tpsearch.study import directions, objectives_of, pareto_rows
from tpsearch.search._options import METRIC, RunOptions, RunSummary
from tpsearch.search._progress import LivePage, Progress
from tpsearch.search._samplers import make_sampler
from tpsearch.study import BUDGET_ATTR, accuracy_of, best_trial, count_outcomes, is_trained, trained_index
from tpsearch.search._worker import run_trial
from tpsearch._files import read_json
from tpsearch._interrupts import HeldInterrupts
from tpsearch.storages import DriverLease, RetryingStorage, open_storage, redact, study_names

if TYPE_CHECKING:
    from tpsearch.search._searcher import StudySearcher


@dataclass(frozen=True)
class PlannedTrial:
    """A trial fixed whole by the caller instead of drawn (`tpsearch ablate`'s rows and seeds): its params, as the
    space's `suggest` and `suggest_training` would draw them, and the user attributes that tell it from the
    others with the same params (a `seed` attribute also seeds its initial weights and batches)."""

    params: dict[str, Any]
    attrs: dict[str, Any]

    def made(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether `trial` is this one: trained (its params) or still waiting (the params it was enqueued with)."""
        params = trial.system_attrs.get("fixed_params", {}) if trial.state == TrialState.WAITING else trial.params
        return params == self.params and all(trial.user_attrs.get(k) == v for k, v in self.attrs.items())


# The attributes a planned trial is known by: a trial left running by a killed driver is requeued with them.
PLANNED_ATTRS = ("seed", "row", "tricks", "source_trial")


def run_search(opts: RunOptions, *, trainable: Callable[..., None] | None = None,
               planned: Sequence[PlannedTrial] = (), study_attrs: dict[str, Any] | None = None,
               page: Callable[[optuna.Study], Any] | None = None) -> RunSummary:
    """Search as `opts` says until the study holds `opts.trials` trained trials; resumes the study if it exists.

    `trainable` replaces the worker's training (`trainable(config, opts=..., space=...)`): benchmarks pass
    `tpsearch.testing.search.noop_trial` to measure what orchestration alone costs.

    With `planned`, the run trains exactly those trials that the study does not hold trained yet, and draws
    none: `opts.trials` is then the study's trained trials plus the planned ones still to train, and a planned
    trial that fails is not replaced (the next call with the same plan trains it).

    `study_attrs` are recorded on the study when this run creates it, beside the run's own (`tpsearch rerank`
    records the study it re-ranks); checking them against an existing study is the caller's.

    `page(study)` writes the live page at `opts.dashboard` while the run goes on (the command line hands it
    `tpsearch.dashboards.write_dashboard`): the search draws nothing itself.
    """
    if opts.dashboard and page is None:
        raise UsageError("RunOptions.dashboard needs the page's writer: run_search(opts, page=lambda study: "
                         "tpsearch.dashboards.write_dashboard(study, opts.dashboard))")
    started = time.time()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar says what Optuna's INFO lines would
    # Ctrl-C is held from here to Tune's start and after it (Ray's start-up and the data set's scikit-learn import
    # must not stop half way), acted on between the steps; the command turns it into one line and exit 130.
    with HeldInterrupts() as interrupts:
        import ray

        checked = _validate(opts)
        interrupts.check()
        # Ray first: a cluster that cannot run a single trial is refused before the study is written.
        if opts.progress and not ray.is_initialized():  # seconds pass before the bar appears: say on what
            where = cluster_address(opts.address)
            print(f"tpsearch run: {f'joining the Ray cluster at {where}' if where else 'starting Ray'} ...",
                  file=sys.stderr, flush=True)
        started_ray = start_ray(opts.address, opts.connect_timeout)
        try:
            interrupts.check()
            _check_resources(opts)
            address = cluster_address(opts.address)
            if opts.storage.startswith("sqlite") and on_another_host(address):
                print(f"tpsearch: the study is a SQLite file on this machine while the cluster's head is "
                      f"{address}: dashboards elsewhere and a driver that moves will not see it; a "
                      f"postgresql:// --storage serves a cluster", file=sys.stderr)
            storage = RetryingStorage(open_storage(opts.storage))
            opts = _settle_max_macs(opts, storage, checked.shape)
            study = _open_study(storage, opts.study_name(), opts, study_attrs or {}, checked.budget,
                                planned=bool(planned))
            lease = DriverLease(study)
            lease.acquire()
            try:
                interrupts.check()
                return _run_locked(opts, checked, study, started, trainable or run_trial, interrupts, planned, page)
            finally:
                lease.release()
        finally:
            if started_ray:
                ray.shutdown()


def _run_locked(opts: RunOptions, checked: _Checked, study: optuna.Study, started: float,
                trainable: Callable[..., None], interrupts: HeldInterrupts,
                planned: Sequence[PlannedTrial] = (), page: Callable[[optuna.Study], Any] | None = None) -> RunSummary:
    name = study.study_name
    space, data_shape, budget = checked.space, checked.shape, checked.budget
    # Its numbers equal the study's own on a resume (`_differences`); an older study may lack it or word it otherwise.
    if study.user_attrs.get(BUDGET_ATTR) != budget.record():
        study.set_user_attr(BUDGET_ATTR, budget.record())
    requeued = _recover_stale(study)
    for item, arch in checked.enqueued.items():
        before = len(study.get_trials(deepcopy=False))
        study.enqueue_trial(space.params_with_options(arch, opts.options, in_channels=data_shape["in_channels"],
                                                      image_size=data_shape["image_size"]), skip_if_exists=True)
        if len(study.get_trials(deepcopy=False)) == before:  # a resumed study: Optuna skips what it holds
            print(f"tpsearch run: --enqueue {item} is in study {study.study_name!r} already; not queued again",
                  file=sys.stderr)
    if planned:
        opts = _enqueue_planned(study, opts, planned)

    from tpsearch.search._searcher import StudySearcher  # imports Ray Tune: only when a search really runs

    runs = Path(opts.runs_dir) / name
    searcher = StudySearcher(study, space, opts, shape=data_shape, checkpoint_dir=runs / "checkpoints",
                             planned_only=bool(planned))
    interrupted = False
    live = LivePage(study, page, opts.dashboard_every) if page is not None else None
    if searcher.finished < opts.trials:
        bar = Progress(opts, searcher, requeued) if opts.progress else None
        if bar is not None:
            searcher.on_change = bar.refresh_from
        if live is not None:
            live.start()
        try:
            interrupted = _tune(opts, space, searcher, runs, trainable, budget, interrupts)
        finally:
            # Whatever stopped the run, no trial stays RUNNING: the study remains consistent for the next one.
            if searcher.fail_live("interrupted"):
                interrupted = True
            if bar is not None:
                bar.close()
    if live is not None:
        live.close()
    trials = study.get_trials(deepcopy=False)
    best = best_trial(trials)
    return RunSummary(
        study=name, storage=redact(opts.storage), requested=opts.trials, finished=searcher.finished,
        counts={o.value: n for o, n in count_outcomes(trials).items()},
        best_value=accuracy_of(best) if best else None, best_params=best.user_attrs.get("params") if best else None,
        best_trial=best.number if best else None, seconds=time.time() - started, interrupted=interrupted,
        error=searcher.error, best_trained=trained_index(trials).get(best.number) if best else None,
        objectives=list(opts.objectives),
        pareto=pareto_rows(trials, opts.objectives) if len(opts.objectives) > 1 else [])


# -- validation: nothing here writes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Checked:
    """What the options name, checked against each other before anything is opened or written."""

    space: spaces.Space
    shape: dict[str, int]                 # the data set's, as `Space.build` takes it
    enqueued: dict[str, dict[str, Any]]   # --enqueue's architectures, each network once, by the value naming it
    budget: Budget


def _validate(opts: RunOptions) -> _Checked:
    """What `opts` cannot check alone: the space, the data set and the budget against each other."""
    space = spaces.get(opts.space)
    from tpsearch import trainers

    data = trainers.load_dataset(opts.dataset, opts.data_dir, seed=opts.seed)
    if opts.train_images is not None and opts.train_images > len(data.train_y):
        raise UsageError(f"--train-images {opts.train_images} is more than the {len(data.train_y)} training images "
                         f"of {opts.dataset}")
    shape = data.shape
    smallest = space.count_params(space.smallest(in_channels=data.in_channels, image_size=data.image_size), **shape)
    if opts.max_params < smallest:
        raise UsageError(f"--max-params {opts.max_params:,} is below the smallest configuration of space "
                         f"{space.name!r} on {opts.dataset} ({smallest:,} parameters)")
    # "auto" is checked as the default cap a new study gets (a resumed one keeps its own: `_settle_max_macs`).
    max_macs = settled_max_macs(opts.max_macs, data.image_size)
    if max_macs is not None:
        least = space.count_macs(space.smallest(in_channels=data.in_channels, image_size=data.image_size), **shape)
        if max_macs < least:
            auto = opts.max_macs == AUTO
            cap = f"the default --max-macs ({max_macs:,} at this image size)" if auto else f"--max-macs {max_macs:,}"
            raise UsageError(f"{cap} is below the smallest configuration of space {space.name!r} on {opts.dataset} "
                             f"({least:,} MACs per image)" + ("; give --max-macs N or none" if auto else ""))
    refused = [name for name in opts.options if name not in space.options]
    if refused:
        raise UsageError(f"--options {refused[0]} is not an option of space {space.name!r} (its options: "
                         f"{', '.join(space.options) or 'none'})")
    enqueued: dict[str, dict[str, Any]] = {}  # each network once, under the first --enqueue value naming it
    for item in opts.enqueue:
        arch = enqueued_arch(space, item, shape, opts.max_params, max_macs, opts.options)
        same = next((known for known, a in enqueued.items() if a == arch), None)
        if same is None:
            enqueued[item] = arch
        else:
            print(f"tpsearch run: --enqueue {item} is the same network as --enqueue {same}; it is trained once",
                  file=sys.stderr)
    return _Checked(space, shape, enqueued, budget_of(opts, data))


def enqueued_arch(space: spaces.Space, item: str, shape: dict[str, int], max_params: int,
                   max_macs: int | None = None, options: Sequence[str] = ()) -> dict[str, Any]:
    if item in space.presets:
        arch, what = space.preset(item), f"preset {item!r}"
    elif item.endswith(".json") or os.path.sep in item:
        arch, what = read_json(Path(item), "--enqueue architecture"), f"file {item!r}"
        if not isinstance(arch, dict):
            raise UsageError(f"--enqueue {what} must hold one JSON object (an architecture)")
    else:
        raise UsageError(f"--enqueue {item!r} is neither a preset of {space.name!r} "
                         f"({', '.join(sorted(space.presets))}) nor a FILE.json")
    try:
        arch = space.validate(arch, in_channels=shape["in_channels"], image_size=shape["image_size"])
    except UsageError as e:  # name the value that failed: a run may enqueue several
        raise UsageError(f"--enqueue {what} does not fit {shape['image_size']}x{shape['image_size']} images: {e}") \
            from None
    params = space.count_params(arch, **shape)
    if params > max_params:
        raise UsageError(f"--enqueue {what} has {params:,} parameters, over --max-params {max_params:,}")
    if max_macs is not None and (macs := space.count_macs(arch, **shape)) > max_macs:
        raise UsageError(f"--enqueue {what} has {macs:,} MACs per image, over --max-macs {max_macs:,}")
    # A dry run in memory: the enqueued params must come back through `suggest` as this very architecture.
    probe = optuna.create_study()
    probe.enqueue_trial(space.params_with_options(arch, options, in_channels=shape["in_channels"],
                                                  image_size=shape["image_size"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            back = space.suggest_with_options(probe.ask(), options, in_channels=shape["in_channels"],
                                              image_size=shape["image_size"])
        except ValueError as e:
            back = str(e)
    if back != arch:
        raise UsageError(f"--enqueue {what} lies outside the space {space.name!r}, which cannot sample {arch}")
    return arch


def _settle_max_macs(opts: RunOptions, storage: optuna.storages.BaseStorage, shape: dict[str, int]) -> RunOptions:
    """The options with `--max-macs auto` made the cap this run applies (`_auto.settled_max_macs`): the study's
    own when it is resumed, else the default for the image size. Everything after sees a number or None."""
    if opts.max_macs != AUTO:
        return opts
    name, recorded = opts.study_name(), AUTO
    if name in study_names(storage):
        recorded = storage.get_study_user_attrs(storage.get_study_id_from_name(name)).get("max_macs")
    return dataclasses.replace(opts, max_macs=settled_max_macs(AUTO, shape["image_size"], recorded))


# What a resumed study must share with this run: what its trials' records mean (the data and its split, the caps
# a draw had to meet, the training each trial got, how it was scored). --trials, the sampler, the scheduler's
# decisions (--stop-margin, --min-rung-steps, --reproducible), --enqueue, --tricks and --options (drawn per trial
# and recorded in its params), devices and resources change no record, and may differ.
RECORDED = ("space", "dataset", "objectives", "seed", "max_params", "max_macs", "max_latency_ms", "epochs",
            "train_fraction", "train_images", "warmup_epochs", "scheduler", "grace_epochs", "reduction_factor",
            "tta_flip")
CAPS = ("max_params", "max_macs", "max_latency_ms")  # a planned run's are derived from its plan, not given
BUDGET_FIELDS = ("images_per_epoch", "total", "warmup", "rungs", "val_images")  # the numbers of `Budget.record()`


def _flag_value(value: Any) -> str:
    """A recorded value as the flag is written (`--max-macs none`, `--objectives accuracy,params`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _differences(study: optuna.Study, opts: RunOptions, budget: Budget, planned: bool) -> list[str]:
    """What this run would train or score otherwise than the study's trials were, as `--flag THEIRS (this run:
    MINE)`; empty when it may resume. A key the study does not record (an older or a hand-made study) is not
    compared: nothing says it differs."""
    # The space and the data set are compared even unrecorded: a study without them was not made by a search.
    recorded = {"space": None, "dataset": None, **study.user_attrs, "objectives": objectives_of(study)}
    keys = [k for k in RECORDED if k in recorded and not (planned and k in CAPS)]
    found = [f"--{k.replace('_', '-')} {_flag_value(recorded[k])} (this run: {_flag_value(getattr(opts, k))})"
             for k in keys if recorded[k] != getattr(opts, k)]
    theirs, mine = study.user_attrs.get(BUDGET_ATTR), budget.record()
    if not found and isinstance(theirs, dict):  # a budget no recorded flag explains (the data set's size changed)
        found = [f"the training budget's {f} {theirs[f]} images (this run: {mine[f]})"
                 for f in BUDGET_FIELDS if f in theirs and theirs[f] != mine[f]]
    return found


def _open_study(storage: optuna.storages.BaseStorage, name: str, opts: RunOptions,
                attrs: dict[str, Any] | None = None, budget: Budget | None = None,
                planned: bool = False) -> optuna.Study:
    sampler = make_sampler(opts)
    if name in study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        # Refused before anything is written: a resume under other flags would mix trials that do not compare,
        # and rewrite the records that say what the old ones meant.
        differences = _differences(study, opts, budget, planned) if budget is not None else []
        if differences:
            raise UsageError(f"study {name!r} was run with other flags: {', '.join(differences)}; repeat its "
                             f"flags to resume it, or start a new study with --study NEW")
        if planned:  # the caps of a plan's run follow its trials (a larger rerank --top), not flags
            for key in CAPS:
                if study.user_attrs.get(key) != getattr(opts, key):
                    study.set_user_attr(key, getattr(opts, key))
        return study
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                directions=directions(opts.objectives))
    for key, value in (("space", opts.space), ("objectives", opts.objectives), ("dataset", opts.dataset),
                       ("max_params", opts.max_params),
                       ("max_macs", opts.max_macs), ("max_latency_ms", opts.max_latency_ms),
                       ("epochs", opts.epochs), ("sampler", opts.sampler), ("metric", METRIC), ("seed", opts.seed),
                       ("train_fraction", opts.train_fraction), ("train_images", opts.train_images),
                       ("warmup_epochs", opts.warmup_epochs), ("scheduler", opts.scheduler),
                       ("grace_epochs", opts.grace_epochs), ("reduction_factor", opts.reduction_factor),
                       ("tta_flip", opts.tta_flip),
                       *(attrs or {}).items()):
        study.set_user_attr(key, value)
    return study


def _enqueue_planned(study: optuna.Study, opts: RunOptions, planned: Sequence[PlannedTrial]) -> RunOptions:
    """Enqueue the planned trials the study holds neither trained nor waiting; the options with `trials` set to
    the trained trials the study will hold once every planned one has trained."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if is_trained(t)]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    to_train = 0
    for plan in planned:
        if any(plan.made(t) for t in done):
            continue
        to_train += 1
        if not any(plan.made(t) for t in waiting):
            study.enqueue_trial(plan.params, user_attrs=plan.attrs)
    return dataclasses.replace(opts, trials=max(1, len(done) + to_train))


def _recover_stale(study: optuna.Study) -> int:
    """Trials left RUNNING by a killed driver: FAIL them and train their configurations first."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "reason", "driver lost (killed before the trial ended)")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if t.user_attrs.get("feasible", True) and t.params:
            carried = {k: t.user_attrs[k] for k in PLANNED_ATTRS if k in t.user_attrs}
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **carried})
    return len(stale)


# -- Ray Tune --------------------------------------------------------------------------------------------------------
def _tune(opts: RunOptions, space: spaces.Space, searcher: "StudySearcher", runs: Path,
          trainable: Callable[..., None], budget: Budget, interrupts: HeldInterrupts) -> bool:
    """Run the trials; True when the run was interrupted (Ctrl-C). ASHA counts in images seen (`_budget`)."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from tpsearch.search._searcher import CheckpointReceiver

    # Tune's own result files are off (the study holds the results), so its end-of-run analysis has nothing to read.
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    gpus = _gpus_per_trial(opts)
    _ship_user_space(space)
    # The worker gets the options themselves (its data folder made absolute: workers run elsewhere) and the
    # space object, so a space of the user's own needs no import path on the workers. It never opens the storage,
    # so it gets no password: Ray pickles what it is given into the run's folder (tuner.pkl).
    worker_opts = dataclasses.replace(opts, data_dir=str(Path(opts.data_dir).resolve()), storage=redact(opts.storage))
    trainable = tune.with_resources(tune.with_parameters(trainable, opts=worker_opts, space=space),
                                    {"cpu": opts.cpus_per_trial, "gpu": gpus})
    concurrency = opts.concurrency
    if opts.reproducible:
        from tpsearch.search._scheduler import LaunchOrder

        concurrency = concurrency or _slots(opts, gpus)
        searcher.order = LaunchOrder(window=concurrency)
    if opts.scheduler == "asha":
        from tpsearch.search._scheduler import NoiseAwareASHA

        scheduler: Any = NoiseAwareASHA(rungs=budget.rungs, max_t=budget.total,
                                        reduction_factor=opts.reduction_factor, val_images=budget.val_images,
                                        margin=opts.stop_margin, min_steps=opts.min_rung_steps, order=searcher.order)
        searcher.stopped_by_scheduler = scheduler.stopped
    else:
        scheduler = FIFOScheduler()
    callbacks: list[Any] = [CheckpointReceiver(Path(opts.runs_dir), searcher.checkpoint_dir)]
    if opts.trial_timeout:
        from tpsearch.search._watchdog import TrialWatchdog

        callbacks.append(TrialWatchdog(opts.trial_timeout, searcher.timed_out_after))
    # Always on: Ray Tune can leave a trial pending forever, workers idle, with nothing said (issue 26).
    from tpsearch.search._watchdog import StallWatchdog

    stall = StallWatchdog(searcher, opts.stall_timeout)
    callbacks.append(stall)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=searcher, scheduler=scheduler,
                                    num_samples=-1, max_concurrent_trials=concurrency, reuse_actors=True,
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=str((runs / "ray").resolve()), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=opts.max_retries),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  callbacks=callbacks, stop=stall.stopper()),
    )
    with warnings.catch_warnings(), interrupts.let_through():
        warnings.simplefilter("ignore")
        tuner.fit()
    return bool(searcher.live)


def _gpus_per_trial(opts: RunOptions) -> float:
    """--gpus-per-trial as a number; "auto" packs trials on the GPUs as their memory allows (`_auto`), none
    without GPUs or with --device cpu, one per trial on a cluster joined with --address (not measured here)."""
    import ray

    if opts.gpus_per_trial != AUTO:
        return float(opts.gpus_per_trial)
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    local = local_gpu_memory() if cluster_gpus > 0 and opts.device != "cpu" and not opts.address else None
    return auto_gpus_per_trial(device=opts.device, cluster_gpus=cluster_gpus, capped=opts.max_macs is not None,
                               local_memory=local)


def _slots(opts: RunOptions, gpus: float) -> int:
    """How many trials the cluster can train at once (--reproducible fixes its window to this when --concurrency
    does not: the same machine gives the same study)."""
    import ray

    total = ray.cluster_resources()
    slots = int(total.get("CPU", 1) // opts.cpus_per_trial)
    if gpus:
        slots = min(slots, int(total.get("GPU", 0) // gpus))
    return max(1, slots)


def _check_resources(opts: RunOptions) -> None:
    """Refuse a trial that no node of the cluster can hold (it would wait forever), before anything is written.

    A joined cluster (--address) may be an autoscaling one that grows the node it lacks: it is warned, not refused.
    """
    import ray

    need = {"CPU": opts.cpus_per_trial, "GPU": _gpus_per_trial(opts)}
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if any(all(r.get(k, 0) >= v for k, v in need.items()) for r in nodes):
        return
    wanted = f"{need['CPU']:g} CPU and {need['GPU']:g} GPU per trial"
    largest = max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})
    has = f"its largest node has {largest.get('CPU', 0):g} CPU and {largest.get('GPU', 0):g} GPU"
    if opts.address:
        print(f"tpsearch: no node of the cluster at {opts.address} has {wanted} yet ({has}): trials wait until "
              f"one joins", file=sys.stderr)
        return
    fix = "drop --gpus-per-trial or give --device cpu" if need["GPU"] else "lower --cpus-per-trial"
    raise UsageError(f"no node can run a trial: {wanted} asked, {has}; {fix}")


def _ship_user_space(space: spaces.Space) -> None:
    """A space from the user's own module travels to the workers by value (they may not be able to import it)."""
    module = type(space).__module__
    if not module.startswith("tpsearch.") and module in sys.modules:
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[module])


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.config.get('trial_number', trial.trial_id)}_{trial.trial_id}"
