"""A real small search on the default path (TPE past its start-up trials, ASHA with its step rule): digits, Ray local,
concurrency 2; then the study read back with plain Optuna."""
from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from tpsearch import spaces
from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions, run_search
from tpsearch.testing.search import run_options

pytestmark = pytest.mark.slow  # runs searches on Ray

SPACE = spaces.get("resnet_5m")
DIGITS = dict(num_classes=10, in_channels=1, image_size=8)
BUDGET = 200_000


def _options(tmp_path, **kw) -> RunOptions:
    """Fourteen trials (TPE's ten start-up ones, then four of TPE proper) of six epochs of 512 images under ASHA:
    rungs after 1,024 and 2,048 images seen, where a batch of 128 has taken 8 and 16 steps."""
    base = dict(trials=14, epochs=6, train_images=512, max_params=BUDGET, seed=1, sampler="tpe", scheduler="asha",
                grace_epochs=2, reduction_factor=2)
    return run_options(tmp_path, **{**base, **kw})


@pytest.fixture(scope="module")
def small_search(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    opts = _options(tmp)
    summary = run_search(opts)
    return opts, summary


def test_search_finishes_the_requested_trials(small_search):
    opts, summary = small_search
    assert summary.error is None and not summary.interrupted
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)  # plain Optuna, no tpsearch
    trained = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               and t.user_attrs["feasible"]]
    assert len(trained) == opts.trials == summary.finished
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert study.best_trial.value > 0.3  # ten classes: chance is 0.1


def test_every_trained_trial_is_under_budget_and_counted_exactly(small_search):
    opts, _ = small_search
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    for t in study.trials:
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or not t.user_attrs["feasible"]:
            continue
        arch = t.user_attrs["arch"]
        with torch.device("meta"):
            built = sum(p.numel() for p in SPACE.build(arch, **DIGITS).parameters())
        assert t.user_attrs["params"] == built <= BUDGET
        assert SPACE.suggest(optuna.trial.FixedTrial(t.params), in_channels=1, image_size=8) == arch
        for key in ("arch", "params", "macs", "feasible", "epochs", "seconds", "images_per_s", "device", "node"):
            assert key in t.user_attrs, key
        assert t.user_attrs["macs"] > 0 and t.user_attrs["device"] == "cpu"
        # Nothing asked for latency (no latency objective, no --max-latency-ms): no trial was timed.
        assert not {"latency_ms", "latency_cv", "throughput", "throughput_batch"} & set(t.user_attrs)
        scored = (*opts.rung_epochs(), opts.epochs)  # a search scores at the rungs and at the end
        assert list(t.intermediate_values) == [e for e in scored if e <= t.user_attrs["epochs"]]


def test_the_default_macs_cap_is_applied_scaled_to_the_image_and_recorded(small_search):
    """--max-macs auto: 2 GMAC per 32x32 image scaled by area, 125 MMAC for 8x8 digits, far above any draw under
    the search's 200k parameters (the quick start's too): no draw within them is refused for its MACs."""
    opts, _ = small_search
    assert opts.max_macs == "auto"
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    assert study.user_attrs["max_macs"] == 125_000_000
    assert all(t.constraints["macs"] == t.user_attrs["macs"] - 125_000_000 for t in study.trials)
    assert all(t.constraints["macs"] < 0 for t in study.trials if t.user_attrs["params"] <= opts.max_params)


def test_infeasible_draws_are_told_at_once_and_not_counted(small_search):
    opts, _ = small_search
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    infeasible = [t for t in study.trials if t.user_attrs.get("feasible") is False]
    assert infeasible, "a 60k budget on this space rejects most random draws"
    for t in infeasible:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["params"] > BUDGET
        assert not t.intermediate_values  # never trained
        assert t.constraints == {"params": float(t.user_attrs["params"] - BUDGET),
                                 "macs": float(t.user_attrs["macs"] - 125_000_000),  # the default cap for 8x8
                                 "memory": 0.0, "latency": 0.0, "diverged": 0.0}


def test_pruned_trials_are_pruned_not_truncated_completes(small_search):
    opts, _ = small_search
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.user_attrs["feasible"]]
    assert complete and pruned, "ASHA with reduction factor 2 over 8 trials stops some"
    rungs = opts.rung_epochs()
    for t in complete:
        assert t.user_attrs["epochs"] == opts.epochs and list(t.intermediate_values) == [*rungs, opts.epochs]
        assert t.value == t.intermediate_values[opts.epochs]
    for t in pruned:
        assert t.user_attrs["epochs"] in rungs  # stopped where it was compared, with its score there
        assert list(t.intermediate_values) == [r for r in rungs if r <= t.user_attrs["epochs"]]


def test_the_study_records_the_budget_in_images_and_asha_judges_no_trial_before_its_warm_up_ends(small_search):
    opts, _ = small_search
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    budget = study.user_attrs["training_budget"]
    per_epoch = opts.train_images
    assert (budget["unit"], budget["images_per_epoch"], budget["total"], budget["intermediate_step"]) == \
        ("images", per_epoch, opts.epochs * per_epoch, "epoch")
    assert budget["rungs"] == [2 * per_epoch, 4 * per_epoch]  # grace 2 epochs' images, reduction factor 2, below 6
    assert 0 < budget["warmup"] <= budget["rungs"][0] * 0.25  # warm-up over by a quarter of the first cycle
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.user_attrs["feasible"]]
    assert pruned
    for t in pruned:
        stopped_at = max(t.intermediate_values) * budget["images_per_epoch"]  # steps are epochs of equal images
        assert stopped_at in budget["rungs"] and stopped_at >= budget["warmup"], (t.number, stopped_at)


def test_asha_stops_a_trial_only_clearly_behind_another_at_its_rung(small_search):
    """Every pruned trial's score at the rung where it stopped is below some other trial's score at that rung by
    more than --stop-margin standard errors of the difference on the validation split (the default, 0: ASHA's
    rule), and it had taken --min-rung-steps optimizer steps there; the evidence the scheduler recorded agrees with
    the study's curves."""
    opts, _ = small_search
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    budget = study.user_attrs["training_budget"]
    n = budget["val_images"]
    assert n == 143  # digits' validation split
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.user_attrs["feasible"]
              and "stopped" in t.user_attrs]
    assert pruned
    for t in pruned:
        epoch = max(t.intermediate_values)
        score, evidence = t.intermediate_values[epoch], t.user_attrs["stopped"]
        assert evidence["images"] == epoch * budget["images_per_epoch"] and evidence["score"] == score
        assert evidence["images"] // t.params["batch_size"] >= opts.min_rung_steps
        others = [o.intermediate_values[epoch] for o in study.trials
                  if o.number != t.number and epoch in o.intermediate_values]
        margin = opts.stop_margin
        assert any(o - score > margin * ((o * (1 - o) + score * (1 - score)) / n) ** 0.5 for o in others), \
            (t.number, score)


def test_a_trial_is_scored_only_at_the_rungs_and_the_end(tmp_path):
    opts = run_options(tmp_path, epochs=9, scheduler="asha", grace_epochs=1, reduction_factor=3, tta_flip=True)
    config = opts.train_config({})
    assert config.restarts == config.eval_epochs == (1, 3)
    assert [e for e in range(1, 10) if config.evaluates_after(e)] == [1, 3, 9]
    assert config.tta_flip
    assert run_options(tmp_path, epochs=4).train_config({}).eval_epochs == ()  # no ASHA: the last epoch only


def test_best_checkpoints_are_kept_and_recorded(small_search):
    opts, _ = small_search
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    kept = study.user_attrs["checkpoints"]
    complete = sorted((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    assert len(kept) == min(opts.keep_checkpoints, len(complete))
    assert {int(n) for n in kept} == {t.number for t in complete[:len(kept)]}
    for number, path in kept.items():
        assert path == f"{opts.study_name()}/checkpoints/trial_{number}.pt"  # relative to the runs folder
        state = torch.load(Path(opts.runs_dir) / path, weights_only=True)
        arch = study.trials[int(number)].user_attrs["arch"]
        model = SPACE.build(arch, **DIGITS)
        model.load_state_dict(state["state_dict"])
        assert state["arch"] == arch


def test_rerun_resumes_without_training_finished_trials_again(small_search, ray_session):
    opts, _ = small_search
    before = optuna.load_study(study_name=opts.study_name(), storage=opts.storage).trials
    again = run_search(opts)  # same command: nothing to do
    assert again.finished == opts.trials
    assert len(optuna.load_study(study_name=opts.study_name(), storage=opts.storage).trials) == len(before)
    more = run_search(RunOptions(**{**vars(opts), "trials": opts.trials + 2}))
    after = optuna.load_study(study_name=opts.study_name(), storage=opts.storage).trials
    assert more.finished == opts.trials + 2
    for old, new in zip(before, after):  # finished trials untouched
        assert (old.state, old.value, old.params) == (new.state, new.value, new.params)


def test_enqueued_preset_is_trained_first_and_a_repeat_of_it_is_said(ray_session, tmp_path, capsys):
    tiny = SPACE.validate(SPACE.presets["tiny"], in_channels=1, image_size=8)
    (tmp_path / "same.json").write_text(json.dumps(tiny))
    opts = _options(tmp_path, trials=2, enqueue=["tiny", str(tmp_path / "same.json")], scheduler="none", epochs=2,
                    max_params=5_000_000)
    run_search(opts)
    assert f"--enqueue {tmp_path / 'same.json'} is the same network as --enqueue tiny" in capsys.readouterr().err
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    assert study.trials[0].user_attrs["arch"] == tiny and study.trials[0].state == TrialState.COMPLETE
    assert [t.user_attrs.get("arch") for t in study.trials].count(tiny) == 1
    # Resumed for one more trial, with the progress bar: the enqueued preset is in the study already; the bar
    # counts the study's trained trials, its words this run's outcomes and the running trial's epoch.
    run_search(RunOptions(**{**vars(opts), "trials": 3, "progress": True}))
    err = capsys.readouterr().err
    assert "--enqueue tiny is in study" in err
    assert "2/3" in err and "3/3" in err and "this run: complete 0" in err and "this run: complete 1" in err
    assert " ep 1/2" in err and "running 1 (#" in err


def test_a_latency_limit_refuses_slow_architectures_before_training(ray_session, tmp_path):
    """--max-latency-ms far below any model: every trial is timed by its worker, told back infeasible with its
    `latency` constraint and reason, never trained; as many as --max-infeasible-draws in a row end the run."""
    from tpsearch.testing.search import SMALL, write_archs

    enqueued = write_archs(tmp_path / "archs", SMALL[:4])  # feasible draws, whatever the sampler's seed
    opts = run_options(tmp_path, trials=2, epochs=1, max_latency_ms=1e-6, max_infeasible_draws=3, enqueue=enqueued)
    summary = run_search(opts)
    assert summary.error and "--max-latency-ms" in summary.error and summary.finished == 0
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    assert study.user_attrs["max_latency_ms"] == 1e-6
    timed = [t for t in study.trials if "latency_ms" in t.user_attrs]
    assert len(timed) >= 3
    for t in timed:
        assert t.state == TrialState.PRUNED and t.user_attrs["feasible"] is False
        assert t.constraints["latency"] == pytest.approx(t.user_attrs["latency_ms"] - 1e-6) and \
            t.constraints["latency"] > 0
        assert "over --max-latency-ms" in t.user_attrs["reason"]
        assert t.user_attrs["epochs"] == 0 and not t.intermediate_values  # timed, never trained


@pytest.mark.parametrize("resources, message", [
    (dict(gpus_per_trial=1), "1 CPU and 1 GPU per trial asked, its largest node has 2 CPU and 0 GPU"),
    (dict(cpus_per_trial=3), "3 CPU and 0 GPU per trial asked, its largest node has 2 CPU and 0 GPU"),
])
def test_a_trial_no_node_can_hold_is_refused_before_anything_is_written(ray_session, tmp_path, resources, message):
    from tpsearch.exceptions import UsageError

    opts = run_options(tmp_path, **resources)  # the shared session: 2 CPUs, no GPU
    with pytest.raises(UsageError, match=message):
        run_search(opts)
    assert not (tmp_path / "studies.db").exists() and not (tmp_path / "runs").exists()


def test_a_macs_budget_is_applied_before_training_and_recorded(ray_session, tmp_path, capsys):
    """--max-macs: every draw carries both constraints, draws over either budget are told back untrained, and an
    enqueued width off the sampled grid (C_1 = 12) is trained as given while every sampled one is a multiple of 8."""
    from tpsearch.cli import main

    max_macs = 3_000_000  # about one random draw in fifty on digits is under both this and 200k parameters
    off_grid = {"layers": 2, "blocks": [1, 1], "channels": 12, "kernels": [3, 3], "skip_kernels": [1, 1], "pool": 4}
    (tmp_path / "off_grid.json").write_text(json.dumps(off_grid))
    opts = run_options(tmp_path, trials=3, epochs=1, max_macs=max_macs, enqueue=[str(tmp_path / "off_grid.json")])
    summary = run_search(opts)
    assert summary.error is None and summary.finished == opts.trials
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)  # plain Optuna
    assert study.user_attrs["max_macs"] == max_macs
    assert study.trials[0].user_attrs["arch"] == off_grid and study.trials[0].state == TrialState.COMPLETE
    for t in study.trials:
        arch, params, macs = t.user_attrs["arch"], t.user_attrs["params"], t.user_attrs["macs"]
        assert macs == SPACE.count_macs(arch, **DIGITS)  # recorded when drawn, trained or not
        assert t.constraints == {"params": float(params - opts.max_params), "macs": float(macs - max_macs),
                                 "memory": 0.0, "latency": 0.0, "diverged": 0.0}
        assert t.user_attrs["feasible"] is (params <= opts.max_params and macs <= max_macs)
        assert t.number == 0 or arch["channels"] % 8 == 0
    trained = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               and t.user_attrs["feasible"]]
    assert len(trained) == opts.trials and all(t.user_attrs["macs"] <= max_macs for t in trained)
    over = [t for t in study.trials if t.constraints["macs"] > 0]
    assert any(t.constraints["params"] <= 0 for t in over), "some draws are refused for their MACs alone"
    for t in over:
        assert t.state == TrialState.PRUNED and t.user_attrs["feasible"] is False and not t.intermediate_values
    assert main(["status", "--storage", opts.storage, "--study", opts.study_name(), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["studies"][opts.study_name()]["max_macs"] == out["detail"]["max_macs"] == max_macs
    assert out["detail"]["best"] and all(0 < row["macs"] <= max_macs for row in out["detail"]["best"])
    assert main(["status", "--storage", opts.storage, "--study", opts.study_name()]) == 0
    assert "(at most 3,000,000 MACs per image;" in capsys.readouterr().out
    # A resume under another MACs budget is refused (its records are the study's); under the default it keeps the
    # study's own cap, not the default's.
    with pytest.raises(UsageError, match=r"--max-macs 3000000 \(this run: none\)"):
        run_search(RunOptions(**{**vars(opts), "max_macs": None, "enqueue": []}))
    again = run_search(RunOptions(**{**vars(opts), "max_macs": "auto", "enqueue": []}))
    assert again.error is None and again.finished == opts.trials
    assert optuna.load_study(study_name=opts.study_name(), storage=opts.storage).user_attrs["max_macs"] == max_macs


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tpsearch", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--space", "nope"], "unknown space 'nope'"),
    (["--sampler", "grid"], "invalid choice"),
    (["--enqueue", "nope"], "neither a preset"),
    (["--max-params", "100"], "below the smallest configuration"),
    (["--max-macs", "1000"], "--max-macs 1,000 is below the smallest configuration of space 'resnet_5m' on digits"),
    (["--dataset", "imagenet"], "imagenet"),
    (["--train-images", "100000"], "more than the 1295 training images"),
    (["--storage", "postgresql+psycopg2://u:secret@127.0.0.1:1/db"], "cannot open storage"),
    (["--storage", "sqlite:////proc/nope/studies.db"], "cannot open storage"),
])
def test_bad_input_is_one_line_and_leaves_storage_untouched(ray_session, tmp_path, capsys, args, message):
    # In process, on the session's Ray (a refusal after Ray's start is then the same refusal, seconds sooner);
    # the command as a process is tested for its bad input in faults_tests/test_bad_input.py.
    db = tmp_path / "studies.db"
    code, err = _main(capsys, "run", "--dataset", "digits", "--trials", "1", "--storage", f"sqlite:///{db}",
                      "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "secret" not in err
    assert not db.exists()


def _main(capsys, *args: str) -> tuple[int, str]:
    """`tpsearch ARGS` in this process: its exit code (argparse's too) and what it printed on stderr."""
    from tpsearch.cli import main

    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, capsys.readouterr().err


def test_existing_study_with_other_space_or_direction_is_refused(ray_session, tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/studies.db"
    optuna.create_study(study_name="taken", storage=db, direction="minimize")
    optuna.create_study(study_name="other", storage=db, direction="maximize").set_user_attr("space", "x")
    before = _dump(tmp_path / "studies.db")
    for study, message in (("taken", "directions minimize"), ("other", "--space x (this run: resnet_5m)")):
        code, err = _main(capsys, "run", "--dataset", "digits", "--study", study, "--storage", db, "--runs-dir",
                          str(tmp_path / "runs"))
        assert code == 2 and message in err and "Traceback" not in err
    assert _dump(tmp_path / "studies.db") == before


def _dump(path) -> list[str]:
    """Every row of every table (the journal mode in the file header may change; the content may not)."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_status_reports_counts_and_best(small_search, tmp_path):
    opts, _ = small_search
    r = _cli("status", "--storage", opts.storage, "--study", opts.study_name(), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    counts = out["studies"][opts.study_name()]
    assert counts["trained"] >= opts.trials and counts["infeasible"] > 0
    best = out["detail"]["best"]
    assert best and best[0]["val_accuracy"] == max(b["val_accuracy"] for b in best)
    trained = sorted(t.number for t in optuna.load_study(study_name=opts.study_name(), storage=opts.storage).trials
                     if t.state != TrialState.FAIL and t.user_attrs.get("feasible") is not False
                     and t.state in (TrialState.COMPLETE, TrialState.PRUNED))
    assert all(trained[b["trained"] - 1] == b["trial"] for b in best)  # Optuna's number and the trained index


def test_status_of_several_studies_shows_each_best_and_one_study_its_failure_reasons(tmp_path, capsys):
    from tpsearch.cli import main

    storage = f"sqlite:///{tmp_path}/two.db"
    for name, values in (("first", (0.5, 0.75)), ("second", (0.6, 0.25))):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr("space", "resnet_5m")
        for value in values:
            study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"feasible": True, "params": 1000}))
    second = optuna.load_study(study_name="second", storage=storage)
    for _ in range(2):
        trial = second.ask()
        trial.set_user_attr("reason", "the worker raised or died")
        second.tell(trial, state=TrialState.FAIL)
    assert main(["status", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert [line.split()[5] for line in out.splitlines()[1:3]] == ["0.7500", "0.6000"]
    assert "2 studies: add --study NAME" in out
    assert main(["status", "--storage", storage, "--study", "second"]) == 0
    out = capsys.readouterr().out
    assert "2 x the worker raised or died (trials 2, 3)" in out
    assert [line.split()[:3] for line in out.splitlines() if line.split()[:1] in (["0"], ["1"])] == \
        [["0", "1", "0.6000"], ["1", "2", "0.2500"]]  # trial, trained index, accuracy


def test_dashboard_of_the_real_study_renders_in_chromium(small_search, tmp_path):
    from tests.dashboards_tests._browser import Browser, require_chromium
    from tests.dashboards_tests.test_browser import HOOKS, PLOTS

    opts, _ = small_search
    page = tmp_path / "real.html"
    r = _cli("dashboard", "--storage", opts.storage, "--study", opts.study_name(), "--out", str(page), "--json",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["trials"] > opts.trials
    binary = require_chromium()
    with Browser(binary, timeout=60) as browser:
        browser.open(page, init_script=HOOKS)
        plots = browser.eval(PLOTS)
        errors = browser.console_errors() + (browser.eval("window.__dialogs") or [])
    assert errors == []
    ids = {p["id"] for p in plots}
    assert {"fig-history", "fig-params", "fig-macs", "fig-curves", "fig-states", "fig-parallel",
            "fig-timeline"} <= ids
    for p in plots:
        assert p["points"] > 0 and p["marks"] > 0, p


def test_live_dashboard_is_written_during_the_run_off_the_drivers_path(ray_session, tmp_path):
    """The page appears while the driver is held inside its handling of the first trained trial: it is written by
    a thread of its own, never on the path of a trial's report."""
    from tpsearch.testing.search import after_trained, fired, wait_for

    from tpsearch import dashboards

    page = tmp_path / "live.html"
    opts = _options(tmp_path, trials=2, scheduler="none", epochs=1, dashboard=str(page), dashboard_every=0.0)
    with pytest.raises(UsageError, match="needs the page's writer"):  # the search draws no page of its own
        run_search(opts)
    with after_trained(1, lambda: wait_for(page.exists, 120)) as seen:
        run_search(opts, page=lambda study: dashboards.write_dashboard(study, page))
    fired(seen)  # raises if the page never appeared while the driver waited
    text = page.read_text()
    assert opts.study_name() in text and "plotly" in text.lower()


def test_a_budget_the_space_cannot_meet_ends_the_run_with_a_clear_error(ray_session, tmp_path):
    smallest = SPACE.count_params(SPACE.smallest(in_channels=1, image_size=8), **DIGITS)
    opts = _options(tmp_path, trials=2, max_params=smallest, max_infeasible_draws=50)
    summary = run_search(opts)
    assert summary.finished == 0
    assert summary.error and "no configuration of space 'resnet_5m' under" in summary.error
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    assert len(study.trials) == 50 and all(t.user_attrs["feasible"] is False for t in study.trials)


def test_a_user_space_searches_and_exports_without_touching_tpsearch(ray_session, tmp_path):
    """`--space FILE.py:CLASS`: the workers get the class by value (they could not import the file), and export
    rebuilds it from the study's record of the space; load_checkpoint once the user names it."""
    from tpsearch import load_checkpoint
    from tpsearch.cli import main
    from tests.spaces_tests.test_spaces_contract import USER_SPACE

    opts = _options(tmp_path, space=USER_SPACE, study="mine", trials=2, epochs=1, scheduler="none",
                    max_params=5_000_000)
    summary = run_search(opts)
    assert summary.error is None and summary.counts["complete"] == 2, summary
    study = optuna.load_study(study_name="mine", storage=opts.storage)
    assert study.user_attrs["space"] == USER_SPACE
    assert all(set(t.user_attrs["arch"]) == {"widths"} for t in study.trials)
    out = tmp_path / "best.pt"
    assert main(["export", "--study", "mine", "--storage", opts.storage, "--data-dir", opts.data_dir,
                 "--runs-dir", opts.runs_dir, "--out", str(out), "--no-progress"]) == 0
    model, meta = load_checkpoint(out, space=USER_SPACE)  # a space of one's own loads only when named
    assert meta["space"] == USER_SPACE and type(model).__name__ == "Sequential"


def _arriving_late(parity: int):
    """The worker's trainable, with the trials of one parity held back a second before training: the order in
    which trials report is then another one than the other parity's run gives."""
    import time

    from tpsearch.search._worker import run_trial

    def trainable(config, *, opts, space):
        if config["trial_number"] % 2 == parity:
            time.sleep(1.0)
        run_trial(config, opts=opts, space=space)

    return trainable


def test_a_reproducible_search_gives_the_same_study_whatever_order_trials_report_in(ray_session, tmp_path):
    """--reproducible: two seeded runs whose trials report in different orders (one parity held back in each) draw
    the same trials, stop the same ones at the same rungs and score them the same, TPE past its start-up. Stock
    ASHA's rule (--stop-margin 0), whose decisions hang most on who reported first: without --reproducible these
    two runs differ (seen when the test was written)."""
    def study_of(run: Path, parity: int) -> list[tuple]:
        run.mkdir()
        opts = _options(run, trials=12, epochs=4, train_images=256, grace_epochs=1, reduction_factor=2,
                        min_rung_steps=2, stop_margin=0.0, reproducible=True)
        summary = run_search(opts, trainable=_arriving_late(parity))
        assert summary.error is None and summary.finished == 12
        study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
        return [(t.number, t.state, t.params, t.intermediate_values, t.user_attrs.get("stopped"))
                for t in study.trials]

    first, second = study_of(tmp_path / "a", 0), study_of(tmp_path / "b", 1)
    assert first == second
    assert any(state == TrialState.PRUNED and stopped for _, state, _, _, stopped in first)
