"""The command line's front door: help everywhere, JSON last lines, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tpsearch import cli

COMMANDS = ["spaces", "describe", "train", "run", "calibrate", "ablate", "rerank", "status", "dashboard", "compare",
            "trials", "export", "evaluate", "explain", "delegate", "simulate"]


def test_every_command_of_the_design_card_is_there_with_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    top = capsys.readouterr().out
    for command in COMMANDS:
        assert command in top
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
        assert "usage: tpsearch " + command in capsys.readouterr().out


def test_describe_json_reports_params_macs_and_arch():
    r = subprocess.run([sys.executable, "-m", "tpsearch", "describe", "--space", "resnet_5m", "--preset", "tpsnet",
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["params"] == 4_959_770
    assert out["macs"] == 730_228_096  # thop's count for TPSNet on one 32x32 image
    assert out["arch"]["blocks"] == [13, 13, 13]


def test_latency_times_one_architecture_as_a_worker_does(capsys):
    assert cli.main(["latency", "--preset", "tiny", "--in-channels", "1", "--image-size", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["device"] == "cpu" and out["arch"]["channels"] == 8
    assert out["latency_ms"] > 0 and out["latency_cv"] >= 0
    assert out["throughput_batch"] == 32 and out["throughput"] > 0


def test_spaces_lists_dimensions_and_presets(capsys):
    assert cli.main(["spaces", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    space = out["spaces"]["resnet_5m"]
    assert [d["symbol"] for d in space["dimensions"]] == ["N", "B_i", "C_1", "F_i", "K_i", "P"]
    assert space["presets"]["tpsnet_model1"]["params"] == 4_865_580


@pytest.mark.parametrize("args", [
    ["run", "--sampler", "tpee"], ["run", "--max-params", "nan"], ["train", "--dataset", "cifar11"],
    ["calibrate", "--dataset", "mnist"], ["export", "--recipe", "short"], ["evaluate", "x.pt", "--dataset", "svhn"],
    ["run", "--tricks", "mixup,cutout"], ["train", "--schedule", "linear"], ["ablate", "--tricks", "cosine,nope"],
    ["ablate", "--tricks", "mixup,mixup"], ["ablate", "--batch-size", "32"],
    ["explain", "x.pt", "--method", "gradcam"], ["delegate", "a.pt", "b.pt", "--split", "train"],
    *([command, "--no-such-flag"] for command in [*COMMANDS, "latency"]), ["no-such-command"],
])
def test_a_bad_flag_or_choice_is_one_line_and_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "error:" in err and "usage:" not in err


@pytest.mark.parametrize("args, message", [
    (["describe", "--preset", "nope"], "unknown preset 'nope'"),
    (["describe", "--arch", "/no/such.json"], "cannot read architecture file"),
    (["describe", "--space", "resnet_9m", "--preset", "tpsnet"], "unknown space 'resnet_9m'"),
    (["describe", "--preset", "tpsnet", "--image-size", "4"], "layer 3: kernel 3 is larger than its 2x2"),
    (["run", "--dataset", "digits", "--enqueue", "tiny", "--enqueue", "tpsnet", "--storage", "sqlite:////nonexistent/s.db"],
     "--enqueue preset 'tpsnet' does not fit 8x8 images: pool"),
])
def test_user_errors_are_one_line(args, message, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_absurd_architecture_files_are_refused_quickly(tmp_path, capsys):
    for arch, dimension in (({"layers": 10**9, "blocks": 1, "channels": 8}, "layers"),
                            ({"layers": 2, "blocks": 10**9, "channels": 8}, "blocks"),
                            ({"layers": 2, "blocks": 1, "channels": 10**12}, "channels"),
                            ([1, 2], "JSON object")):
        path = tmp_path / "arch.json"
        path.write_text(json.dumps(arch))
        assert cli.main(["describe", "--arch", str(path)]) == 2
        assert dimension in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`tpsearch spaces | head -1`: the reader closes the pipe; the command ends as Unix tools do (141), no traceback.
    The read end is closed before the command starts, so its first write already finds no reader."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run([sys.executable, "-m", "tpsearch", "spaces"], stdout=write, stderr=subprocess.PIPE,
                           text=True, timeout=120)
    finally:
        os.close(write)
    assert r.returncode == 141 and r.stderr == "", r.stderr


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tpsearch {version('tpsearch')}"


def test_describe_finds_the_space_of_a_preset_when_no_space_is_given(capsys):
    """`describe --preset resnet18_cifar` as the README writes it: only the backbones space has it."""
    assert cli.main(["describe", "--preset", "resnet18_cifar", "--dataset", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["space"] == "backbones"
    assert cli.main(["describe", "--preset", "tiny", "--json"]) == 0  # the default space's own stays its
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["space"] == "resnet_5m"


def test_a_preset_no_space_has_is_one_line_listing_them(capsys):
    assert cli.main(["describe", "--preset", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown preset 'nope'; presets by space: backbones: densenet121" in err[0]


def test_run_help_names_every_form_of_space(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "FILE.py:CLASS" in " ".join(capsys.readouterr().out.split())


def test_status_columns_fit_the_longest_study_name(tmp_path, capsys):
    from tpsearch.testing.dashboards import make_study

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for name in ("short", "a-study-name-much-longer-than-thirty-two-characters"):
        make_study(3, storage=storage, study_name=name)
    assert cli.main(["status", "--storage", storage]) == 0
    header, *rows = capsys.readouterr().out.splitlines()[:3]
    # Every column starts where its header does: "space" right after the longest name and one space.
    at = header.index("space")
    assert at == len("a-study-name-much-longer-than-thirty-two-characters") + 1
    assert all(row[at:].startswith("resnet_5m") for row in rows), rows
    assert len({len(line.rstrip()) for line in (header, *rows)}) == 1  # the counts end in one column
