"""What tests and benchmarks share: options builders, `tpsearch run` in a process, and the fault suite's cases.

Like `optuna.testing`, part of the package so that `tests/` and `benchmarks/` import it by name. The fault cases
each run a real small search, inject one fault and return what became of the study; the fault tests
(`tests/search_tests/faults_tests/`) assert on the details and `benchmarks/bench_faults.py` prints one row per
case, so that both exercise exactly the same runs. Every case reads the study back with plain Optuna
(`optuna.load_study`), never through tpsearch: what a user's own tools see is what counts.

Trials are kept tiny (8x8 digits, a few hundred images, a few epochs). Where a fault must hit a given trial, the
architectures are enqueued (`--enqueue FILE.json`), so that trial numbers 0, 1, 2, ... are known feasible
architectures in that order: a fault keyed on a number that the sampler happens to draw over the budget would
never reach a worker and never fire.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from tpsearch.search._options import METRIC, RunOptions
from tpsearch.study._outcome import Outcome, is_trained, outcome_of

STUDY = "resnet_5m-digits"
DIGITS = dict(num_classes=10, in_channels=1, image_size=8)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Small architectures: one layer on the 8x8 digits, 4-6k parameters, a second or two per trial. Distinct widths,
# because enqueueing the same architecture twice is skipped (Optuna's skip_if_exists).
SMALL = [{"layers": 1, "blocks": [1], "channels": c, "kernels": [3], "skip_kernels": [1], "pool": 8}
         for c in range(8, 40)]
# 165,626 parameters, about 2 s an epoch on 768 images on one core: still running when a test looks for it.
SLOW = {"layers": 2, "blocks": [2, 2], "channels": 16, "kernels": [3, 3], "skip_kernels": [1, 1], "pool": 4}
optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- reading a study as a user's own tools do ----------------------------------------------------------------------
def trials(storage: str, study: str) -> list[FrozenTrial]:
    """Every trial of `study` through plain `optuna.load_study`; none before the driver has created it."""
    try:
        return optuna.load_study(study_name=study, storage=storage).trials
    except KeyError:  # not created yet
        return []


def trained(ts: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in ts if is_trained(t)]


def running(ts: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in ts if outcome_of(t) is Outcome.RUNNING]


def wait_for(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Until `predicate()` holds; fails when `timeout` passes first or `proc` ends first without it holding."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        # Asked again once the process has ended: it may have made the predicate true and exited between the two
        # checks (a resumed run that needs one more trial ends right after telling it).
        if proc is not None and proc.poll() is not None and not predicate():
            out, err = proc.communicate()
            raise AssertionError(f"the run ended early ({proc.returncode}):\n{err[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


# -- running searches ------------------------------------------------------------------------------------------------
def write_archs(folder: Path, archs: list[dict[str, Any]]) -> list[str]:
    """One JSON file per architecture; returns `--enqueue` arguments (or RunOptions.enqueue items) in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, arch in enumerate(archs):
        path = folder / f"arch_{i}.json"
        path.write_text(json.dumps(arch))
        paths.append(str(path))
    return paths


def enqueue_args(paths: list[str]) -> list[str]:
    return [a for p in paths for a in ("--enqueue", p)]


def start_run(tmp: Path, *args: str, storage: str | None = None, env: dict[str, str] | None = None,
              cwd: Path | None = None, held: str | None = None) -> subprocess.Popen:
    """`tpsearch run` on digits in its own process group (as a terminal starts it, so Ctrl-C reaches the group).

    `held` names a function of this module that runs the command instead (`run_first_trial_held`,
    `run_held_at_report`): how a test holds a run started as a process at a moment it has certainly reached.
    """
    storage = storage or f"sqlite:///{tmp}/studies.db"
    head = ["-m", "tpsearch"] if held is None else ["-c", RUN_WITH, held]
    cmd = [sys.executable, *head, "run", "--dataset", "digits", "--data-dir", str(tmp / "data"),
           "--storage", storage, "--runs-dir", str(tmp / "runs"), "--no-progress", *args]
    full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    return subprocess.Popen(cmd, cwd=cwd or tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=full_env, preexec_fn=_as_in_a_terminal)


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal's foreground command gets it, whatever started the tests: a suite run in the
    background (`nohup ... &`) inherits SIGINT ignored, and a command started from it would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# `python -c RUN_WITH NAME ARGV...`: this module's NAME(ARGV), a `tpsearch ARGV` held somewhere. Ctrl-C while the
# modules the runners patch load (this one, the command line, the driver's searcher: Ray Tune) is held and ends
# the process as the command's own entry point ends it (`tpsearch._cli`).
RUN_WITH = """
import sys
from tpsearch._interrupts import HeldInterrupts
try:
    with HeldInterrupts():
        from tpsearch.testing import search as testing
        testing.while_importing(sys.argv[1:])
        from tpsearch import cli
        from tpsearch.search import _searcher
except KeyboardInterrupt:
    print("tpsearch: interrupted", file=sys.stderr)
    raise SystemExit(130)
raise SystemExit(getattr(testing, sys.argv[1])(sys.argv[2:]))
"""


def run_cli_with(trainable: Callable[..., None], argv: list[str]) -> int:
    """The command line (`tpsearch ARGV`) with `trainable` as the trainable of every `run_search` it calls: the
    command takes no trainable, and a test must still reach a run started as a process through that seam."""
    from tpsearch.cli import _run, main

    plain = _run.run_search
    _run.run_search = functools.partial(plain, trainable=trainable)
    try:
        return main(argv)
    finally:
        _run.run_search = plain


HELD = "held"  # the file in the runs folder where a held run says which trial it holds


def _say_held(argv: list[str], number: int) -> None:
    runs = Path(argv[argv.index("--runs-dir") + 1])
    runs.mkdir(parents=True, exist_ok=True)  # a run held before it has made its folders
    tmp = runs / (HELD + ".tmp")
    tmp.write_text(str(number))
    tmp.replace(runs / HELD)  # whole or absent: the test never reads half a number


def run_first_trial_held(argv: list[str]) -> int:
    """`tpsearch ARGV` with `first_trial_held` as its trainable: for a SIGKILL while a trial trains."""
    return run_cli_with(first_trial_held, argv)


def run_held_at_report(argv: list[str], trained_first: int = 0) -> int:
    """`tpsearch ARGV` whose driver, at the first epoch's report of a trial once `trained_first` trials are
    trained, writes that trial's number to RUNS/held and waits for a signal. Meanwhile the trial waits in its
    report (Tune's function trainables wait for the driver) and the run cannot move on, so a Ctrl-C sent once the
    file is there strikes mid-training, as a user's would, and Tune stops the trial as it stops one then."""
    from tpsearch.cli import main

    def moment(searcher: Any, before: int, trial_id: str, result: dict[str, Any]) -> bool:
        return trial_id in searcher.live and result.get("epoch") == 1 and searcher.finished >= trained_first

    def then(searcher: Any, trial_id: str, result: dict[str, Any]) -> None:
        _held_until_sigint(argv, searcher.live[trial_id].number)

    with _in_driver("on_trial_result", moment, then):
        return main(argv)


def run_held_at_report_after_one_trained(argv: list[str]) -> int:
    return run_held_at_report(argv, trained_first=1)


def _held_until_sigint(argv: list[str], number: int) -> None:
    """Say `number` in RUNS/held, then wait until a SIGINT has reached the handler this process had, and return once
    that handler has run (the driver's, which holds it for later, or Ray Tune's, which stops the trials).

    The waiting handler is in place before the file is written, so a signal sent once the file is there cannot
    arrive unseen (as it could before a `signal.pause()`, which would then wait for ever)."""
    previous = signal.getsignal(signal.SIGINT)
    came: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        came.append(signum)
        signal.signal(signal.SIGINT, previous)
        if callable(previous):
            previous(signum, frame)  # Python's own raises KeyboardInterrupt here, as it would have
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    _say_held(argv, number)
    while not came:
        time.sleep(0.05)


# The moments of a run's first seconds a Ctrl-C test holds it at (`start_run(held=...)`): each of these functions
# runs `tpsearch ARGV` and, once the run has certainly reached its moment, says so in RUNS/held and waits for the
# signal. What they replace: a sleep of a few seconds, whose moment depended on how busy the machine was.
def while_importing(args: list[str]) -> None:
    """Called by `RUN_WITH` between the package's first imports and the command line's (Ray Tune, the commands),
    while Ctrl-C is held as the command's own entry point holds it: for `run_held_while_importing`."""
    if args and args[0] == "run_held_while_importing":
        _held_until_sigint(args[1:], 0)


def run_held_while_importing(argv: list[str]) -> int:
    from tpsearch.cli import main

    return main(argv)  # not reached with the signal: it was held by the imports and ends the process there


def run_held_after_building_the_parser(argv: list[str]) -> int:
    return _run_held_after("tpsearch.cli._main", "build_parser", argv)


def run_held_after_reading_the_dataset(argv: list[str]) -> int:
    return _run_held_after("tpsearch.trainers", "load_dataset", argv)


def run_held_after_starting_ray(argv: list[str]) -> int:
    return _run_held_after("ray", "init", argv)


def run_held_after_opening_the_study(argv: list[str]) -> int:
    return _run_held_after("tpsearch.search._driver", "_open_study", argv)


def _run_held_after(module: str, name: str, argv: list[str]) -> int:
    """`tpsearch ARGV`, held once the first call of `module.name` has returned (`_held_until_sigint`)."""
    import importlib

    from tpsearch.cli import main

    where = importlib.import_module(module)
    original = getattr(where, name)
    calls: list[int] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not calls:
            calls.append(1)
            _held_until_sigint(argv, 0)
        return result

    setattr(where, name, held)
    try:
        return main(argv)
    finally:
        setattr(where, name, original)


def _held_until_killed(argv: list[str], number: int) -> None:
    _say_held(argv, number)
    while True:
        time.sleep(3600)


def run_held_after_a_tell(argv: list[str]) -> int:
    """`tpsearch ARGV` whose driver, once it has told a trial trained, says so in RUNS/held and waits to be killed:
    the tell is written, the trials beside it run on, and nothing else moves."""
    from tpsearch.cli import main

    def moment(searcher: Any, before: int, *args: Any, **kwargs: Any) -> bool:
        return searcher.finished > before

    with _in_driver("on_trial_complete", moment, lambda searcher, *args: _held_until_killed(argv, searcher.finished)):
        return main(argv)


def run_held_after_a_draw(argv: list[str]) -> int:
    """`tpsearch ARGV` whose driver, at its first draw once it has told a trial trained, says so in RUNS/held and
    waits to be killed: the drawn trial is RUNNING in the study and on no worker."""
    from tpsearch.cli import main

    start: list[int] = []

    def moment(searcher: Any, before: int) -> bool:
        start.append(before)
        return searcher.finished > start[0]

    with _in_driver("_ask_feasible", moment, lambda searcher: _held_until_killed(argv, searcher.finished)):
        return main(argv)


def first_trial_held(config: dict[str, Any], *, opts: RunOptions, space: Any) -> None:
    """The worker's training, but for the first trial to start, which writes its trial number to RUNS/held and
    then waits until its process is killed: a run holding it is mid-training and cannot end by itself, so a
    SIGKILL sent once the file is there strikes at a moment the run has certainly reached and has not left. (Not
    for Ctrl-C: Ray Tune stops a trial at its next report, and this one never reports; see `run_held_at_report`.)"""
    from tpsearch.search._worker import run_trial

    marker = Path(opts.runs_dir) / HELD
    try:
        fd = os.open(marker.with_suffix(".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # another trial is the held one
        return run_trial(config, opts=opts, space=space)
    os.close(fd)
    _held_until_killed(["--runs-dir", opts.runs_dir], config["trial_number"])


def held_trial_number(runs_dir: Path, proc: subprocess.Popen, timeout: float = 900) -> int:
    """The number of the trial the held run `proc` holds (`start_run(held=...)`), once it holds one. A run that holds
    one never ends by itself, so on failure its process group is killed here rather than left behind."""
    marker = runs_dir / HELD
    try:
        wait_for(marker.exists, timeout, proc)
    except BaseException:
        kill_group(proc)
        raise
    return int(marker.read_text())


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to the process group of `proc` (started with `start_new_session`), if it is still there."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def export_held_after_first_epoch(argv: list[str]) -> int:
    """`tpsearch export ARGV` whose retrain, once it has saved its resume state after its first epoch, prints
    `saved` on stdout and waits until a signal ends its process: a test that reads the line kills it at a moment
    it has certainly reached (one epoch saved) and not left (the retrain cannot finish first)."""
    from tpsearch.cli import main
    from tpsearch.export import _retrain

    plain = _retrain.save_atomic  # patched where the retrain calls it, not in tpsearch.checkpoints

    def save_then_hold(obj: Any, path: Path) -> Path:
        saved = plain(obj, path)
        if Path(path).name.endswith(".resume.pt"):  # `resume_path`: the retrain's state, saved each epoch
            print("saved", flush=True)
            while True:
                time.sleep(3600)
        return saved

    _retrain.save_atomic = save_then_hold
    return main(argv)


def run_options(tmp: Path, **kw: Any) -> RunOptions:
    """RunOptions of a small in-process search on digits, every path under `tmp` (the caller's Ray session is
    reused): 3 trials of 2 epochs on 256 images, random sampling, no scheduler, two at a time."""
    base = dict(space="resnet_5m", dataset="digits", data_dir=str(tmp / "data"), trials=3, epochs=2,
                max_params=200_000, storage=f"sqlite:///{tmp}/studies.db", runs_dir=str(tmp / "runs"),
                concurrency=2, cpus_per_trial=1, sampler="random", seed=0, train_images=256, scheduler="none",
                progress=False)
    base.update(kw)
    return RunOptions(**base)


def train_checkpoint(path: Path, arch: dict[str, Any], *, dataset: str = "digits", epochs: int = 2, seed: int = 0,
                     space: str = "resnet_5m", data_dir: str | Path = "data", **config: Any) -> Path:
    """An exported checkpoint without a search: `arch` trained for `epochs` on the whole training split, its test
    accuracy measured, saved in `tpsearch export`'s format (no study in its provenance). What the commands that
    read checkpoints (evaluate, explain, delegate) are tested on. `config` overrides `TrainConfig` fields; by
    default batch 64 and no warm-up, so that two epochs already make a model with something to explain (a
    one-layer `resnet_5m` of 8 channels reaches about 60% on digits, a two-layer one of 16 channels about 93%)."""
    import torch

    from tpsearch import spaces, trainers
    from tpsearch.checkpoints import save_checkpoint
    from tpsearch.export._export import dataset_meta

    data = trainers.load_dataset(dataset, data_dir, seed=seed)
    the_space = spaces.get(space)
    arch = the_space.validate(arch, in_channels=data.in_channels, image_size=data.image_size)
    torch.manual_seed(seed)
    model = the_space.build(arch, **data.shape)
    settings = trainers.TrainConfig(**{"batch_size": 64, "warmup_epochs": 0.0, "device": "cpu", **config,
                                       "epochs": epochs, "seed": seed})
    result = trainers.train(model, data, settings)
    test_accuracy, _ = trainers.evaluate(model, data.test_x, data.test_y, data, device="cpu", bf16=False)
    meta = {"space": space, "arch": arch, "shape": data.shape, "dataset": dataset_meta(data, seed),
            "metrics": {"val_accuracy": result.val_accuracy, "test_accuracy": test_accuracy,
                        "params": the_space.count_params(arch, **data.shape),
                        "macs": the_space.count_macs(arch, **data.shape)},
            "training": {"source": "retrain", "epochs": epochs, "hparams": None, "on": "train", "seed": seed,
                         "val_accuracy_meaningful": True, "history": []},
            "provenance": {"study": None, "trial": None, "storage": None, "tpsearch": None,
                           "torch": str(torch.__version__), "created": None}}
    return save_checkpoint(model.eval(), path, meta)


def trained_study(tmp: Path, arch: dict[str, Any], hparams: dict[str, Any], *, epochs: int,
                  space: str = "resnet_5m", dataset: str = "digits", seed: int = 0, device: str = "cpu"
                  ) -> tuple[str, str]:
    """(storage, study name) of a one-trial study in the driver's format, its trial `arch` trained in this process
    for `epochs` under `hparams` (no Ray, no search) and its weights kept under `tmp/runs`, as `tpsearch run` keeps
    them: what `tpsearch export` needs, with a model trained as long as a test or a benchmark wants."""
    import torch

    from tpsearch import spaces, trainers
    from tpsearch.checkpoints import save_checkpoint

    sp = spaces.get(space)
    data = trainers.load_dataset(dataset, str(tmp / "data"), seed=seed)
    arch = sp.validate(arch, in_channels=data.in_channels, image_size=data.image_size)
    torch.manual_seed(seed)
    model = sp.build(arch, **data.shape)
    result = trainers.train(model, data, trainers.TrainConfig.from_hparams(hparams, epochs=epochs, seed=seed,
                                                                           device=device))
    assert result.status == "completed", result.reason
    name, kept = f"{space}-{dataset}", f"{space}-{dataset}/checkpoints/trial_0.pt"
    # The space's name, as the worker records it (a FILE.py:CLASS spec is the study's to record, not the file's).
    save_checkpoint(model, tmp / "runs" / kept, {"space": sp.name, "arch": arch, "shape": data.shape}, kind="trial")
    storage = f"sqlite:///{tmp}/studies.db"
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        value=result.val_accuracy, params={}, distributions={},
        intermediate_values={r.epoch: r.val_accuracy for r in result.history if r.val_accuracy is not None},
        user_attrs={"arch": arch, "hparams": dict(hparams), "feasible": True, "epochs": epochs,
                    "params": sp.count_params(arch, **data.shape), "macs": sp.count_macs(arch, **data.shape)}))
    for key, value in (("space", space), ("dataset", dataset), ("epochs", epochs), ("seed", seed),
                       ("metric", METRIC), ("checkpoints", {"0": kept})):
        study.set_user_attr(key, value)
    return storage, name


def noop_trial(config: dict[str, Any], *, opts: RunOptions, space: Any) -> None:
    """A trainable with everything of a trial but the training: what orchestration alone costs
    (`run_search(opts, trainable=noop_trial)`). It reads the data set (cached per worker process) only to count
    the images of an epoch, ASHA's unit."""
    from ray import tune

    from tpsearch import trainers
    from tpsearch.search._budget import budget_of
    from tpsearch.search._worker import placement

    where = placement()
    per_epoch = budget_of(opts, trainers.load_dataset(opts.dataset, opts.data_dir, seed=opts.seed)).images_per_epoch
    # A made-up but arch-dependent score, so that ASHA and TPE have something to rank.
    score = 1.0 / (1.0 + abs(config["arch"].get("channels", 16) - 24) / 24)
    for epoch in range(1, opts.epochs + 1):
        tune.report({"epoch": epoch, "images": epoch * per_epoch, METRIC: score * epoch / opts.epochs,
                     "val_loss": 1.0, "train_loss": 1.0, "seconds": 0.0, "images_per_s": 0.0, **where,
                     "device": "cpu", "macs": 0, "status": "running"})


@contextmanager
def _in_driver(method: str, moment: Callable[..., bool], then: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Run `then(...)` in the driver, synchronously, the first time `StudySearcher.<method>` has run at `moment`.

    The seam of the fault cases that must strike mid-search: a moment the driver reaches for certain, whatever the
    machine's speed, unlike one timed by watching the study from outside (a poll that a busy machine makes lose the
    race). The dict yielded holds `then`'s result (or its exception) under "result" once it has run.
    """
    from tpsearch.search import _searcher

    original = getattr(_searcher.StudySearcher, method)
    seen: dict[str, Any] = {}

    def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = self.finished
        out = original(self, *args, **kwargs)
        if "result" not in seen and moment(self, before, *args, **kwargs):
            try:
                seen["result"] = then(self, *args)
            except BaseException as e:  # noqa: BLE001 - handed to the test
                seen["result"] = e
        return out

    setattr(_searcher.StudySearcher, method, hooked)
    try:
        yield seen
    finally:
        setattr(_searcher.StudySearcher, method, original)


def after_trained(n: int, then: Callable[[], Any]) -> Any:
    """`then()` right after the driver has told the study of its `n`-th trained trial."""
    return _in_driver("on_trial_complete", lambda searcher, before, *a, **k: before < n <= searcher.finished,
                      lambda searcher, *a: then())


def at_report(number: int | None, epoch: int, then: Callable[[dict[str, Any]], Any], *,
              node_id: str | None = None) -> Any:
    """`then(result)` when the driver receives epoch `epoch` of trial `number` (of any trial when None; of a trial
    running on node `node_id` when given). `result["number"]` is the trial's number in the study.

    Ray Tune's function trainable waits for the driver at each report, so the trial is alive and mid-training then.
    """
    def moment(searcher: Any, before: int, trial_id: str, result: dict[str, Any]) -> bool:
        trial = searcher.live.get(trial_id)
        return (trial is not None and result.get("epoch") == epoch
                and (number is None or trial.number == number)
                and (node_id is None or result.get("node_id") == node_id))

    return _in_driver("on_trial_result", moment,
                      lambda searcher, trial_id, result: then({**result, "number": searcher.live[trial_id].number}))


def fired(seen: dict[str, Any]) -> Any:
    """What a hook's `then` returned; it raises what `then` raised, or says that the moment never came."""
    assert "result" in seen, "the search ended before the fault's moment: it was never injected"
    if isinstance(seen["result"], BaseException):
        raise seen["result"]
    return seen["result"]


# -- reading the result ----------------------------------------------------------------------------------------------
def snapshot(ts: list[FrozenTrial]) -> dict[int, tuple]:
    """Everything recorded about each finished trial: after a fault, none of it may be missing or different."""
    return {t.number: (t.state.name, t.values, t.params, t.intermediate_values, t.user_attrs)
            for t in ts if t.state in FINISHED}


def lost(before: dict[int, tuple], ts: list[FrozenTrial]) -> list[int]:
    """Trials finished in `before` that are gone or changed in `ts`."""
    now = snapshot(ts)
    return sorted(n for n, record in before.items() if now.get(n) != record)


def ray_failures(runs_dir: Path, study: str = STUDY) -> dict[int, int]:
    """Ray Tune's own count of failed attempts per trial number, from its experiment state files.

    Ray's record, not ours: it is how a test sees that Ray Tune (not the driver) retried a trial.
    """
    counts: dict[int, int] = {}
    for path in sorted((runs_dir / study / "ray").glob("tune-*/experiment_state-*.json")):
        for trial_json, runtime_json in json.loads(path.read_text())["trial_data"]:
            number = json.loads(trial_json)["config"].get("trial_number")
            failures = json.loads(runtime_json).get("num_failures", 0)
            if number is not None:
                counts[number] = counts.get(number, 0) + failures
    return counts


def last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass
class Case:
    """One fault injected into one search, and what the study looked like afterwards."""

    fault: str
    requested: int
    trials: list[FrozenTrial]
    before: list[dict[int, tuple]] = field(default_factory=list)  # snapshots taken when the fault struck
    retried: int = 0
    rc: int | None = 0
    error: str | None = None  # the run's own error line, if it ended with one
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> list[int]:
        return sorted({n for b in self.before for n in lost(b, self.trials)})

    @property
    def finished(self) -> int:
        return len(trained(self.trials))

    def outcome(self) -> str:
        if self.extra.get("skipped"):
            return f"skipped: {self.extra['skipped']}"
        if self.rc == 0 and self.error is None and self.finished == self.requested and not running(self.trials):
            return "completed"
        return f"error (exit {self.rc}): {self.error or 'finished ' + str(self.finished)}"[:160]

    def row(self) -> dict[str, Any]:
        return {"fault": self.fault, "requested": self.requested, "finished": self.finished,
                "lost": len(self.lost), "retried": self.retried, "outcome": self.outcome()}


def _communicate(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"tpsearch run did not end in {timeout:.0f} s:\n{err[-3000:]}") from None


# -- 1. the driver SIGKILLed three times, then resumed ------------------------------------------------------------
KILL_ARGS = ["--epochs", "2", "--max-params", "60000", "--train-images", "256", "--scheduler", "none", "--sampler",
             "random", "--concurrency", "2", "--seed", "3"]
# The killed runs ask for far more trials than a run trains before the moment it is killed at, so none can end first;
# the resume then asks for two more than the study holds.
KILL_TRIALS = 40
# Where each kill strikes, in turn: while a trial trains on a worker; just after a tell (the study holds the
# trained trial, the trials beside it run on); just after a draw (a trial RUNNING in the study, on no worker yet).
KILL_MOMENTS = ("run_first_trial_held", "run_held_after_a_tell", "run_held_after_a_draw")


def driver_sigkill(tmp: Path, kills: int = 3) -> Case:
    """Kill the whole driver (its process group: Ray's local processes too) `kills` times, each at a moment the run
    certainly holds (`KILL_MOMENTS`, in turn), then resume it.

    The first kill strikes while a feasible trial trains on a worker, after the run's first trained trial, so
    there is always a running configuration to train again: that run holds its first trial (`first_trial_held`)
    until the kill, and the two conditions waited for only grow. The later ones strike in the driver itself, held
    once the run has trained a trial of its own: just after it told one, and just after it drew one. Each kill is
    preceded by a snapshot of every finished trial.
    """
    storage = f"sqlite:///{tmp}/studies.db"
    before = []
    for kill in range(kills):
        base = len(trained(trials(storage, STUDY)))
        proc = start_run(tmp, "--trials", str(KILL_TRIALS), *KILL_ARGS, held=KILL_MOMENTS[kill % len(KILL_MOMENTS)])
        held_trial_number(tmp / "runs", proc)
        if kill == 0:
            try:
                wait_for(lambda: len(trained(trials(storage, STUDY))) > base, 900, proc)
            except BaseException:
                kill_group(proc)
                raise
        os.killpg(proc.pid, signal.SIGKILL)  # held: it cannot have ended
        proc.communicate()
        (tmp / "runs" / HELD).unlink()
        (tmp / "runs" / HELD).with_suffix(".claim").unlink(missing_ok=True)
        before.append(snapshot(trials(storage, STUDY)))
    requested = len(trained(trials(storage, STUDY))) + 2
    proc = start_run(tmp, "--trials", str(requested), *KILL_ARGS)
    _, err = _communicate(proc, 600)
    ts = trials(storage, STUDY)
    return Case("driver SIGKILL x3, resumed", requested, ts, before,
                retried=sum(1 for t in ts if "retry_of" in t.user_attrs), rc=proc.returncode,
                error=None if proc.returncode == 0 else last_line(err), extra={"stderr": err})


# -- faults a trial's model raises, through the run's trainable ---------------------------------------------------
class _FaultySpace:
    """A space whose models raise `fault` (`tpsearch.testing.trainers.inject_fault`); the rest is the space's."""

    def __init__(self, space: Any, fault: str) -> None:
        self._space, self._fault = space, fault

    def build(self, *args: Any, **kwargs: Any) -> Any:
        from tpsearch.testing.trainers import inject_fault

        return inject_fault(self._space.build(*args, **kwargs), self._fault)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._space, name)


def faulty_trial(config: dict[str, Any], *, opts: RunOptions, space: Any, faults: dict[int, str]) -> None:
    """The worker's training, the model of each trial numbered in `faults` raising that fault: how the fault suite
    reaches a trial, through `run_search`'s trainable (the product has no fault code)."""
    from tpsearch.search._worker import run_trial

    fault = faults.get(config["trial_number"])
    run_trial(config, opts=opts, space=space if fault is None else _FaultySpace(space, fault))


def with_faults(faults: dict[int, str]) -> Callable[..., None]:
    """`run_search(opts, trainable=with_faults({trial number: fault name}))`."""
    return functools.partial(faulty_trial, faults=dict(faults))


# -- 2 and 3. a worker killed; NaN, raise, OOM and hang faults, in one in-process run -------------------------------
FAULTS = {0: "hang", 2: "nan", 3: "oom", 4: "raise"}  # trial 1 is SLOW: its worker is killed after its first epoch
VICTIM = 1
TRIAL_TIMEOUT = 20.0  # well above a normal trial here (a few seconds), so only the hung one times out


def worker_faults(tmp: Path) -> Case:
    """One search on the caller's Ray session: trial 0 hangs, 1 loses its worker process, 2 diverges, 3 runs out
    of memory (at every batch size), 4 raises; 5 and 6 are plain. Three trained trials are requested: 1, 2 (a
    diverged trial is trained: it taught the sampler) and 5."""
    from tpsearch.search import run_search

    archs = [SMALL[0], SLOW, *SMALL[1:6]]
    opts = run_options(tmp, trials=3, epochs=4, train_images=768, max_params=200_000, max_retries=1,
                       enqueue=write_archs(tmp / "archs", archs), trial_timeout=TRIAL_TIMEOUT)

    def kill_worker(result: dict[str, Any]) -> dict[str, Any]:
        # The victim's first epoch has just reached the driver; three are still to run.
        before = snapshot(trials(opts.storage, STUDY))
        os.kill(int(result["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
        return {"before": before, "worker": result["worker"], "epochs_then": int(result["epoch"])}

    with at_report(VICTIM, 1, kill_worker) as seen:
        summary = run_search(opts, trainable=with_faults(FAULTS))
    killed = fired(seen)
    ts = trials(opts.storage, STUDY)
    failures = ray_failures(tmp / "runs")
    return Case("worker killed; nan, oom, raise, hang", 3, ts, [killed["before"]],
                retried=sum(failures.values()), rc=0 if summary.error is None and not summary.interrupted else 1,
                error=summary.error, extra={"killed": killed, "ray_failures": failures, "summary": summary})


# -- 3b. diverged and out-of-memory trials, each told back in a state the sampler reads ------------------------------
# Trial number -> (fault, batch size). 0 fits only at half its batch; 1 runs out of memory at 128 and again at 64;
# 2 at 64, the space's smallest batch size, so it has no retry; 3 diverges.
TEACHING = {0: ("oom_above_100", 128), 1: ("oom", 128), 2: ("oom", 64), 3: ("nan", 128)}


def teaching_faults(tmp: Path) -> Case:
    """A search whose first trials have known batch sizes: the study is made beforehand with their configurations
    enqueued (`study.enqueue_trial`, as a user warm-starts a study), the faults of `TEACHING` injected; sampled
    trials follow, under ASHA (a rung after the first epoch). Four trained trials are requested: 0 (retried at half
    its batch), 3 (diverged) and two more."""
    from tpsearch import spaces
    from tpsearch.search import run_search

    opts = run_options(tmp, trials=4, epochs=2, scheduler="asha", grace_epochs=1, reduction_factor=2)
    space = spaces.get(opts.space)
    study = optuna.create_study(study_name=STUDY, storage=opts.storage, direction="maximize")
    study.set_user_attr("space", opts.space)
    study.set_user_attr("dataset", opts.dataset)
    for number, (_, batch) in sorted(TEACHING.items()):
        arch = space.params_of(SMALL[number], in_channels=DIGITS["in_channels"], image_size=DIGITS["image_size"])
        study.enqueue_trial({**arch, "optimizer": "sgd", "lr_sgd": 0.05, "weight_decay": 5e-4,
                             "batch_size": batch, "label_smoothing": 0.0})
    summary = run_search(opts, trainable=with_faults({n: fault for n, (fault, _) in TEACHING.items()}))
    return Case("diverged and out-of-memory trials", 4, trials(opts.storage, STUDY),
                rc=0 if summary.error is None and not summary.interrupted else 1, error=summary.error,
                extra={"summary": summary})


# -- 4. storage faults -----------------------------------------------------------------------------------------------
LOCKER = r'''
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the write lock: every other writer waits until it is released
db.execute("SELECT count(*) FROM trials").fetchone()
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
print("released", flush=True)
'''
LOCK_S = 5.0


def sqlite_locked(tmp: Path) -> Case:
    """Another process holds SQLite's write lock for LOCK_S seconds while trials are running."""
    from tpsearch.search import run_search

    opts = run_options(tmp, trials=3, epochs=3, enqueue=write_archs(tmp / "archs", SMALL[:3]))
    db = tmp / "studies.db"

    def lock(result: dict[str, Any]) -> dict[str, Any]:
        # At the first report: that trial and its neighbour are running, and the driver's next writes (this
        # report, the tells) meet the lock, held by another process for LOCK_S seconds from now.
        ts = trials(opts.storage, STUDY)
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(LOCK_S)], stdout=subprocess.PIPE,
                                  text=True)
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        return {"before": snapshot(ts), "locker": locker, "locked_at": time.time(), "running_then": len(running(ts))}

    with at_report(None, 1, lock) as seen:
        summary = run_search(opts)
    locked = fired(seen)
    rest, _ = locked.pop("locker").communicate(timeout=60)
    locked.update(held_s=time.time() - locked.pop("locked_at"), released="released" in rest)
    ts = trials(opts.storage, STUDY)
    return Case(f"SQLite write-locked {LOCK_S:.0f} s by another process", 3, ts, [locked["before"]],
                rc=0 if summary.error is None and not summary.interrupted else 1, error=summary.error,
                extra={"lock": locked, "summary": summary})


def mount_tmpfs(folder: Path, size: str = "64k") -> str | None:
    """A size-limited filesystem at `folder`; the reason it cannot be made (not root, no mount), or None."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                       text=True)
    return None if r.returncode == 0 else f"mount -t tmpfs is not permitted here: {r.stderr.strip()}"


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)


FILLER = 48 * 1024  # of 64 KiB: the 16 KiB left cannot hold even the smallest checkpoint (about 25 KB)


def disk_full(tmp: Path) -> Case:
    """The checkpoint folder on a 64 KiB filesystem that is nearly full: every checkpoint write runs out of space.

    Only the checkpoint folder is small: Ray's own files under RUNS_DIR/STUDY/ray/ have room, since the fault
    under test is a full disk at the moment the worker writes the trial's weights.
    """
    from tpsearch.search import run_search

    opts = run_options(tmp, trials=2, epochs=2, enqueue=write_archs(tmp / "archs", SMALL[:2]))
    checkpoints = tmp / "runs" / STUDY / "checkpoints"
    why = mount_tmpfs(checkpoints)
    if why:
        return Case("disk full while writing a checkpoint", 2, [], rc=None, extra={"skipped": why})
    try:
        (checkpoints / "filler").write_bytes(b"\0" * FILLER)
        summary = run_search(opts)
        left = sorted(p.name for p in checkpoints.iterdir())
    finally:
        unmount(checkpoints)
    ts = trials(opts.storage, STUDY)
    study = optuna.load_study(study_name=STUDY, storage=opts.storage)
    return Case("disk full while writing a checkpoint", 2, ts, rc=0 if summary.error is None else 1,
                error=summary.error, extra={"files_left": left, "kept": study.user_attrs.get("checkpoints"),
                                            "summary": summary})


def postgres_restart_command(data_dir: str | None = None) -> tuple[list[str] | None, str]:
    """How to restart the test server, or None and why not: the private server scripts/services.sh runs for a
    user who is not root (its data folder `data_dir`, owned by that user: pg_ctl), else Debian's system cluster
    (pg_ctlcluster, root only)."""
    versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".")]) \
        if os.path.isdir("/usr/lib/postgresql") else []
    if not versions:
        return None, "restarting the server needs Debian's PostgreSQL (/usr/lib/postgresql)"
    if data_dir:
        # -l: a restarted server must not hold the caller's stdout and stderr open (they are pipes here).
        return [f"/usr/lib/postgresql/{versions[-1]}/bin/pg_ctl", "-D", data_dir, "-l", f"{data_dir}/server.log",
                "-w", "restart"], ""
    if os.geteuid() != 0:
        return None, ("restarting the system cluster needs root (as another user, scripts/services.sh runs a "
                      "private server the test can restart: TPSEARCH_TEST_POSTGRES_DATA)")
    return ["pg_ctlcluster", versions[-1], "main", "restart"], ""


def postgres_restart(tmp: Path, url: str, restart_command: list[str]) -> Case:
    """The PostgreSQL server restarted (`restart_command`, see `postgres_restart_command`) mid-search: in the
    driver, right after it told the study of the first trained trial, with two more to train and tell
    (`after_trained`)."""
    from tpsearch.search import run_search

    name = f"faults-pg-{os.getpid()}-{int(time.time())}"
    opts = run_options(tmp, trials=3, epochs=3, storage=url, study=name,
                       enqueue=write_archs(tmp / "archs", SMALL[:3]))
    storage = opts.storage

    def restart() -> dict[str, Any]:
        before = snapshot(trials(storage, name))
        r = subprocess.run(restart_command, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return {"before": before}

    try:
        with after_trained(1, restart) as seen:
            try:
                summary = run_search(opts)
                rc, error = (0 if summary.error is None and not summary.interrupted else 1), summary.error
            except Exception as e:  # noqa: BLE001 - the case reports how the search ended
                rc, error, summary = 1, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", None
        restarted = fired(seen)
        ts = trials(url, name)
    finally:
        try:
            optuna.delete_study(study_name=name, storage=url)
        except Exception:  # noqa: BLE001 - never created, or the server is down: nothing to clean
            pass
    return Case("PostgreSQL restarted mid-search", 3, ts, [restarted["before"]], rc=rc, error=error,
                extra={"summary": summary})


# -- 6. a Ray node lost mid-trial, on a cluster started with `ray start` ------------------------------------------
ON_CLUSTER = r"""
import json, sys
from pathlib import Path
from tpsearch.cli import main
from tpsearch.testing.search import _in_driver, kill_processes_of

tmp, address, node2, node2_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
on_node2 = []  # trial numbers in the order they reached the second node


def second_trial_there(searcher, before, trial_id, result):
    # The second node dies at the first report of the second trial it runs: the first one has ended there (one
    # CPU), so a trial trained on that node is in the study, and the second is mid-training for certain.
    if result.get("node_id") != node2_id or trial_id not in searcher.live:
        return False
    number = searcher.live[trial_id].number
    if number not in on_node2:
        on_node2.append(number)
    return len(on_node2) == 2 and result.get("epoch") == 1


def kill(searcher, trial_id, result):
    return {"number": searcher.live[trial_id].number, "killed": kill_processes_of(node2)}


with _in_driver("on_trial_result", second_trial_there, kill) as seen:
    rc = main(["run", "--address", address, "--dataset", "digits", "--data-dir", str(tmp / "data"),
               "--storage", f"sqlite:///{tmp}/studies.db", "--runs-dir", str(tmp / "runs"), "--trials", "4",
               "--epochs", "2", "--train-images", "512", "--max-params", "60000", "--sampler", "random",
               "--scheduler", "none", "--warmup-epochs", "0", "--concurrency", "2", "--max-retries", "3",
               "--no-progress"])
print(json.dumps({"rc": rc, "fault": seen.get("result"), "on_node2": on_node2}, default=str))
"""


def free_ports(n: int) -> list[int]:
    """Ports nothing listens on now (the kernel's choice), so that the test's cluster meets no other Ray."""
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pids() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live process, read from /proc. A zombie (killed, not yet reaped
    by its parent) is left out: it runs nothing, and how soon its parent reaps it is a race no test should count on."""
    out: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if state != "Z":
            out[int(entry.name)] = (int(ppid), cmd)
    return out


def processes_of(folder: str | Path) -> list[int]:
    """The processes of the Ray node(s) whose temp folder is `folder`, and their descendants (Ray's workers rename
    their command line, so they are found as the node's children)."""
    procs = _pids()
    found = {pid for pid, (_, cmd) in procs.items() if str(folder) in cmd and pid != os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def kill_processes_of(folder: str | Path) -> list[int]:
    """SIGKILL every process of the node(s) under `folder`: a machine lost, as far as Ray can tell."""
    pids = processes_of(folder)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def stop_processes_of(folder: str | Path, timeout: float = 60.0) -> None:
    """Kill the node(s) under `folder` until none of their processes is left: a process that one of them started
    between the listing and its own kill is found, and killed, in the next round."""
    deadline = time.monotonic() + timeout
    while kill_processes_of(folder) and time.monotonic() < deadline:
        time.sleep(0.1)  # the killed ones become zombies, which `processes_of` no longer lists


@contextmanager
def ray_cluster(tmp: Path, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A two-node Ray cluster started with the `ray` command as the README says: `ray start --head`, then a second
    node joined with `ray start --address`, each with its own ports and temp folder (one CPU each), token
    authentication on. Stopped on exit by killing exactly its processes: `ray stop` would also stop every other Ray
    on the machine (the test session's own, a neighbour's)."""
    ray = str(Path(sys.executable).with_name("ray"))
    port, dash, agent1, agent2 = free_ports(4)
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    # Short temp folders of their own: Ray's socket paths under them must fit AF_UNIX's 107 bytes.
    short = Path(tempfile.mkdtemp(prefix="tpsc-", dir="/tmp"))
    head, node2 = short / "head", short / "node2"
    try:
        # The token that `ray start` on a new machine would find: generated once, in the test's own home folder.
        subprocess.run([ray, "get-auth-token", "--generate"], capture_output=True, check=True, env=env, timeout=60)
        for cmd in ([ray, "start", "--head", "--port", str(port), "--temp-dir", str(head), "--include-dashboard",
                     "false", "--dashboard-port", str(dash), "--dashboard-agent-listen-port", str(agent1), *common],
                    [ray, "start", "--address", f"127.0.0.1:{port}", "--temp-dir", str(node2),
                     "--dashboard-agent-listen-port", str(agent2), *common]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp)
            if r.returncode != 0:
                raise AssertionError(f"{' '.join(cmd[1:3])} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        raylet = [cmd for pid, (_, cmd) in _pids().items() if str(node2) in cmd and "--node_id=" in cmd]
        node2_id = raylet[0].split("--node_id=")[1].split()[0]
        yield {"address": f"127.0.0.1:{port}", "head": head, "node2": node2, "node2_id": node2_id}
    finally:
        stop_processes_of(head)
        stop_processes_of(node2)
        shutil.rmtree(short, ignore_errors=True)


def search_on_cluster(tmp: Path) -> dict[str, Any]:
    """`tpsearch run --address` on a `ray_cluster`, its second node killed mid-trial; every file that node wrote is
    then deleted, and `tpsearch export` runs for the best trial and for one trained on that node."""
    home = tmp / "home"  # where `ray start` finds (or writes) the cluster's token, ~/.ray/auth_token
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env = {**base, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    with ray_cluster(tmp, {**env, "RAY_AUTH_MODE": "token"}) as cluster:
        # First with a token that is not the cluster's: refused in one line, before the storage is created. The
        # refusal takes about 15 s (README "On a cluster"): a connect timeout shorter than that would end the run
        # first with the timeout's line, so it is set far above, and the refusal is what ends the run.
        r = subprocess.run([sys.executable, "-m", "tpsearch", "run", "--address", cluster["address"],
                            "--connect-timeout", "90", "--dataset", "digits", "--storage",
                            f"sqlite:///{tmp}/studies.db", "--no-progress"], capture_output=True, text=True,
                           timeout=240, env={**env, "RAY_AUTH_TOKEN": "0" * 64}, cwd=tmp)
        refused = {"rc": r.returncode, "stderr": r.stderr, "storage_created": (tmp / "studies.db").exists()}
        # The driver gets no RAY_AUTH_MODE: tpsearch must find the token and use it, as the README promises.
        r = subprocess.run([sys.executable, "-c", ON_CLUSTER, str(tmp), cluster["address"], str(cluster["node2"]),
                            cluster["node2_id"]], capture_output=True, text=True, timeout=900, env=env, cwd=tmp)
        if r.returncode != 0 or not r.stdout.strip():
            raise AssertionError(f"the driver failed ({r.returncode}):\n{r.stderr[-4000:]}")
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["stderr"], out["refused"] = r.stderr, refused
        out["node2_id"] = cluster["node2_id"]
        out["left_running"] = processes_of(cluster["node2"])
        out["trials"] = trials(f"sqlite:///{tmp}/studies.db", STUDY)
        out["ray_failures"] = ray_failures(tmp / "runs")  # Ray Tune's own count of the attempts it retried
        # Every file the lost node wrote, gone: the kept weights must have reached the driver through Ray.
        shutil.rmtree(cluster["node2"])
        exports = {}
        for name, extra in (("best", []), ("node2", ["--trial", str(out["on_node2"][0])])):
            e = subprocess.run([sys.executable, "-m", "tpsearch", "export", "--storage", f"sqlite:///{tmp}/studies.db",
                                "--runs-dir", str(tmp / "runs"), "--data-dir", str(tmp / "data"),
                                "--out", str(tmp / f"{name}.pt"), "--no-progress", *extra],
                               capture_output=True, text=True, timeout=300, env=env, cwd=tmp)
            exports[name] = (e.returncode, last_line(e.stderr or e.stdout))
        out["exports"] = exports
    out["after_stop"] = processes_of(cluster["head"]) + processes_of(cluster["node2"])
    return out


# -- 5. two drivers on one study -------------------------------------------------------------------------------------
TWO_DRIVERS_ARGS = ["--trials", "3", "--epochs", "3", "--max-params", "200000", "--train-images", "512",
                    "--scheduler", "none", "--sampler", "random", "--concurrency", "2"]


def held_trial(config: dict[str, Any], *, opts: RunOptions, space: Any) -> None:
    """The worker's training, once the file `release` appears in the runs folder: a driver whose trials wait
    there cannot end, whatever the machine's speed, until the test that holds it lets it go."""
    from tpsearch.search._worker import run_trial

    release = Path(opts.runs_dir) / "release"
    while not release.exists():
        time.sleep(0.2)
    run_trial(config, opts=opts, space=space)


def held_driver(tmp: str, *enqueue: str) -> int:
    """`two_drivers`' first driver, in a process of its own: `tpsearch run TWO_DRIVERS_ARGS` as `run_search` with
    `held_trial` (the CLI takes no trainable); 0 when it completed, else its error on stderr and 1."""
    from tpsearch.search import run_search

    opts = run_options(Path(tmp), trials=3, epochs=3, max_params=200_000, train_images=512, scheduler="none",
                       sampler="random", concurrency=2, enqueue=list(enqueue))
    summary = run_search(opts, trainable=held_trial)
    if summary.error or summary.interrupted:
        print(summary.error or "interrupted", file=sys.stderr)
        return 1
    return 0


def two_drivers(tmp: Path) -> Case:
    """A second `tpsearch run` of the same study while the first is searching it; then the same command once the
    first has ended. The first driver's trials wait (`held_trial`) until the second has refused and exited, so
    it cannot have ended before the second started, however slow the second is to start."""
    paths = write_archs(tmp / "archs", [SLOW, *SMALL[:2]])
    args = [*TWO_DRIVERS_ARGS, *enqueue_args(paths)]
    storage = f"sqlite:///{tmp}/studies.db"
    first = subprocess.Popen([sys.executable, "-c", "import sys; from tpsearch.testing.search import held_driver; "
                              "sys.exit(held_driver(*sys.argv[1:]))", str(tmp), *paths],
                             cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        wait_for(lambda: bool(running(trials(storage, STUDY))), 300, first)
        before = snapshot(trials(storage, STUDY))
        second = start_run(tmp, *args)
        second_out, second_err = _communicate(second, 300)
        first_running_then = first.poll() is None
        (tmp / "runs").mkdir(exist_ok=True)
        (tmp / "runs" / "release").touch()  # the second has exited: now the first may train its trials
        _, first_err = _communicate(first, 600)
    finally:  # a failure above must not leave the first driver held for ever
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    after_first = trials(storage, STUDY)
    third = start_run(tmp, *args)
    _, third_err = _communicate(third, 300)
    ts = trials(storage, STUDY)
    return Case("two drivers on one SQLite study", 3, ts, [before], rc=first.returncode,
                error=None if first.returncode == 0 else last_line(first_err),
                extra={"second": (second.returncode, second_err), "first_running_then": first_running_then,
                       "third": (third.returncode, third_err), "after_first": after_first})


# -- 7. load: a 10,000-trial study -----------------------------------------------------------------------------------
BIG_STUDY = "resnet_5m-synthetic"


def make_big_study(path: Path, n: int, seed: int = 0) -> str:
    """A study of `n` finished trials in the driver's format, bulk-inserted (seconds, not minutes).

    dashboards.testing draws CIFAR-shaped (32x32x3) architectures; the synthetic data set has that shape and needs
    no download, so `tpsearch run --dataset synthetic` can resume the study.
    """
    from tpsearch.testing.dashboards import make_study

    url = f"sqlite:///{path}"
    study = make_study(n, storage=url, study_name=BIG_STUDY, seed=seed)
    # The records `resume_to_first_ask`'s options make, so that its run resumes the study (other flags are refused).
    for key, value in search_records(_big_resume_options(path.parent, url, 1)).items():
        study.set_user_attr(key, value)
    return url


def search_records(opts: RunOptions) -> dict[str, Any]:
    """The study attributes a search under `opts` records (`_driver._open_study`, `_run_locked`): what a hand-made
    study needs for a run under `opts` to resume it."""
    import dataclasses

    from tpsearch import trainers
    from tpsearch.search._auto import settled_max_macs
    from tpsearch.search._budget import budget_of
    from tpsearch.search._driver import RECORDED

    data = trainers.load_dataset(opts.dataset, opts.data_dir)
    opts = dataclasses.replace(opts, max_macs=settled_max_macs(opts.max_macs, data.image_size))
    return {**{key: getattr(opts, key) for key in RECORDED}, "training_budget": budget_of(opts, data).record()}


def _big_resume_options(tmp: Path, storage: str, trials: int) -> RunOptions:
    return run_options(tmp, storage=storage, trials=trials, dataset="synthetic", sampler="tpe", max_params=5_000_000,
                       keep_checkpoints=0, train_images=None)


def status_json(storage: str, cwd: Path) -> tuple[float, dict[str, Any], subprocess.CompletedProcess]:
    """`tpsearch status --json` as a user runs it: seconds and its JSON."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "tpsearch", "status", "--storage", storage, "--json"], cwd=cwd,
                       capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    return seconds, (json.loads(last_line(r.stdout)) if r.returncode == 0 else {}), r


def resume_to_first_ask(storage: str, tmp: Path, *, train: dict[str, Any] | None = None) -> tuple[float, int]:
    """Seconds from `run_search` to the searcher's first ask, on the caller's Ray session, one more trial.

    The searcher's `_ask_feasible` is wrapped to stop the clock; the trial then runs with the no-op trainer, or,
    with `train`, is that architecture (enqueued) and trains for real as any trial does.
    """
    from tpsearch.search import _searcher, run_search
    from tpsearch.search._worker import run_trial

    ts = trials(storage, BIG_STUDY)
    opts = _big_resume_options(tmp, storage, len(trained(ts)) + 1)
    if train is not None:
        opts = dataclasses.replace(opts, enqueue=write_archs(tmp / "archs", [train]))
    original = _searcher.StudySearcher._ask_feasible
    first: list[float] = []

    def timed(self: Any) -> Any:
        if not first:
            first.append(time.perf_counter())
        return original(self)

    _searcher.StudySearcher._ask_feasible = timed
    try:
        t0 = time.perf_counter()
        summary = run_search(opts, trainable=noop_trial if train is None else run_trial)
    finally:
        _searcher.StudySearcher._ask_feasible = original
    assert summary.error is None, summary.error
    return first[0] - t0, len(ts)


def tpe_seconds_per_suggestion(sizes: tuple[int, ...] = (100, 1000, 10_000), asks: int = 5,
                               seed: int = 0) -> dict[str, float]:
    """Seconds per TPE draw of a whole architecture, as the study grows; the driver's own sampler settings."""
    from tpsearch import spaces
    from tpsearch.testing.dashboards import make_study
    from tpsearch.search._samplers import make_sampler

    space = spaces.get("resnet_5m")
    out = {}
    for n in sizes:
        base = make_study(n, seed=seed)  # in memory: the sampler's cost, not the storage's
        study = optuna.create_study(direction="maximize", sampler=make_sampler(RunOptions(sampler="tpe", seed=seed)))
        study.add_trials(base.trials)
        t0 = time.perf_counter()
        for _ in range(asks):
            trial = study.ask()
            space.suggest(trial)  # CIFAR's shape, like the study's trials
            space.suggest_training(trial)
            study.tell(trial, state=TrialState.FAIL)
        out[str(n)] = (time.perf_counter() - t0) / asks
    return out


# -- storage: a commit whose answer is lost ------------------------------------------------------------------------
@contextmanager
def lose_acknowledgement(storage: Any, method: str, times: int = 1) -> Iterator[dict[str, int]]:
    """The database storage under `storage` (a `RetryingStorage`) commits `method` for real, then the answer is lost
    `times` times: the call raises SQLAlchemy's OperationalError, as when the server restarts right after a commit.
    Optuna's cache calls the database's `_create_new_trial` where a study asks for a trial. Yields the counts."""
    from sqlalchemy import exc as sa_exc

    backend = storage._database()
    original = getattr(backend, method)
    counts = {"calls": 0, "lost": 0}

    def committed_then_lost(*args: Any, **kwargs: Any) -> Any:
        counts["calls"] += 1
        out = original(*args, **kwargs)
        if counts["lost"] < times:
            counts["lost"] += 1
            raise sa_exc.OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))
        return out

    setattr(backend, method, committed_then_lost)
    try:
        yield counts
    finally:
        delattr(backend, method)


@contextmanager
def lose_commit_acknowledgement(storage: Any, method: str, times: int = 1) -> Iterator[dict[str, int]]:
    """Like `lose_acknowledgement`, one level down: while the database storage under `storage` runs `method`, its
    first `times` commits reach the database and then the database driver raises its own OperationalError ("server
    closed the connection unexpectedly"), which SQLAlchemy and Optuna then handle as they would a server restarted
    right after a commit (Optuna wraps it in StorageInternalError; RDBStorage retries a trial's creation itself).
    Yields the counts."""
    backend = storage._database()
    dialect = backend.engine.dialect
    commit, original = dialect.do_commit, getattr(backend, method)
    counts = {"calls": 0, "commits": 0, "lost": 0}
    inside = [False]

    def committed_then_lost(dbapi_connection: Any) -> None:
        commit(dbapi_connection)
        if inside[0]:
            counts["commits"] += 1
            if counts["lost"] < times:
                counts["lost"] += 1
                raise dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly")

    def watched(*args: Any, **kwargs: Any) -> Any:
        counts["calls"] += 1
        inside[0] = True
        try:
            return original(*args, **kwargs)
        finally:
            inside[0] = False

    dialect.do_commit = committed_then_lost
    setattr(backend, method, watched)
    try:
        yield counts
    finally:
        del dialect.do_commit
        delattr(backend, method)
