"""The defaults a search decides from its data and machine (`search/_auto.py`): the MACs cap and the GPUs per
trial, as `run --help` states them, as the options check them, and as a resumed study keeps them. No Ray here: the
searches that apply them are in test_run_search.py; the GPU packing itself is in trainers_tests/test_cuda.py."""
from __future__ import annotations

import optuna
import pytest

from tpsearch.exceptions import UsageError
from tpsearch.search import RunOptions
from tpsearch.search._auto import (auto_gpus_per_trial, default_max_macs, settled_max_macs, trials_per_gpu)
from tpsearch.search._driver import _settle_max_macs
from tpsearch.cli import main

GIB = 2**30


def test_the_default_cap_keeps_tpsnet_inside_and_the_giants_out_and_scales_with_the_image_area():
    from tpsearch import spaces

    space = spaces.get("resnet_5m")
    cap = default_max_macs(32)
    assert cap == 2_000_000_000
    assert space.count_macs(space.preset("tpsnet")) < cap / 2  # 0.73 GMAC, well inside
    # The largest of 3,000 random draws: eleven 5x5 blocks of 48 channels, all at 32x32.
    giant = {"layers": 1, "blocks": [11], "channels": 48, "kernels": [5], "skip_kernels": [1], "pool": 8}
    assert space.count_params(giant) <= 5_000_000 < space.count_macs(giant) and space.count_macs(giant) > 2 * cap
    assert (default_max_macs(8), default_max_macs(64), default_max_macs(224)) == (125_000_000, 8 * 10**9,
                                                                                  98 * 10**9)


def test_an_explicit_cap_wins_and_auto_keeps_a_resumed_studys_own():
    assert settled_max_macs(3_000_000, 32) == 3_000_000 and settled_max_macs(None, 32) is None
    assert settled_max_macs("auto", 8) == 125_000_000  # a new study
    assert settled_max_macs("auto", 8, recorded=None) is None  # a study searched without a cap stays without
    assert settled_max_macs("auto", 8, recorded=7) == 7


def test_the_driver_settles_auto_against_the_storage(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    opts = RunOptions(dataset="digits", storage=f"sqlite:///{tmp_path}/s.db")
    digits = {"image_size": 8, "in_channels": 1, "num_classes": 10}
    assert _settle_max_macs(opts, storage, digits).max_macs == 125_000_000  # no such study yet
    old = optuna.create_study(study_name=opts.study_name(), storage=storage)
    old.set_user_attr("max_macs", None)  # a study from before the default: searched without a cap
    assert _settle_max_macs(opts, storage, digits).max_macs is None
    old.set_user_attr("max_macs", 5_000_000)
    assert _settle_max_macs(opts, storage, digits).max_macs == 5_000_000
    given = RunOptions(dataset="digits", max_macs=9_000_000)
    assert _settle_max_macs(given, storage, digits) is given


@pytest.mark.parametrize("gib, trials", [(8, 1), (24, 1), (39.4, 2), (79.6, 4), (139.8, 8), (1000, 8)])
def test_trials_per_gpu_follow_its_memory_in_powers_of_two(gib, trials):
    assert trials_per_gpu(int(gib * GIB)) == trials


def test_auto_gpus_per_trial():
    h100 = int(79.6 * GIB)
    assert auto_gpus_per_trial(device="auto", cluster_gpus=0, capped=True, local_memory=None) == 0.0
    assert auto_gpus_per_trial(device="cpu", cluster_gpus=8, capped=True, local_memory=h100) == 0.0
    assert auto_gpus_per_trial(device="auto", cluster_gpus=1, capped=True, local_memory=h100) == 0.25
    assert auto_gpus_per_trial(device="auto", cluster_gpus=1, capped=False, local_memory=h100) == 1.0
    assert auto_gpus_per_trial(device="auto", cluster_gpus=4, capped=True, local_memory=None) == 1.0  # unmeasured


def test_options_take_auto_numbers_and_none_and_refuse_other_words():
    assert RunOptions().max_macs == "auto" and RunOptions().gpus_per_trial == "auto"
    assert RunOptions(gpus_per_trial=None).gpus_per_trial == "auto"  # the API's old default still works
    assert RunOptions(device="cpu").gpus_per_trial == "auto"  # auto on the CPU is 0, not a contradiction
    assert RunOptions(gpus_per_trial=0.5, max_macs=None).gpus_per_trial == 0.5
    with pytest.raises(UsageError, match="--max-macs must be an integer, auto or none, but got 'lots'"):
        RunOptions(max_macs="lots")
    with pytest.raises(UsageError, match="--gpus-per-trial must be a number or auto, but got 'all'"):
        RunOptions(gpus_per_trial="all")
    with pytest.raises(UsageError, match="--device cpu trains on the CPU"):
        RunOptions(device="cpu", gpus_per_trial=1)


def test_run_help_states_both_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default auto: 2 GMAC per 32x32 image, scaled by the image's area (125 MMAC for 8x8 digits)" in text
    assert "or the cap of the study resumed; none: no limit" in text
    assert "--gpus-per-trial G|auto" in text and "(4 on an 80 GB H100)" in text and "0 without GPUs" in text


@pytest.mark.parametrize("flag, value, message", [("--max-macs", "lots", "must be an integer, auto or none"),
                                                  ("--gpus-per-trial", "all", "must be a number or auto")])
def test_a_bad_word_is_one_line(flag, value, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", flag, value])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_latency_is_timed_only_where_an_objective_or_a_limit_reads_it():
    from tpsearch.search._worker import times_latency

    assert not times_latency(RunOptions())
    assert not times_latency(RunOptions(objectives=["accuracy", "macs"]))
    assert times_latency(RunOptions(objectives=["accuracy", "latency"]))
    assert times_latency(RunOptions(max_latency_ms=5.0))
