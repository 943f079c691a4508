"""A checkpoint never makes tpsearch import or run code, nor build a model its weights do not fit (issue 26).

Checkpoints crafted from the digits pair (tests/search_tests/conftest.py): the `space` of one edited to name a file
or a module whose import writes a marker file, or its `arch` enlarged a million times. Every command that reads
checkpoints (evaluate, explain, delegate) and `load_checkpoint` refuse them in one line; the marker never appears
until the user names the space themselves, and then it loads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tpsearch import load_checkpoint
from tpsearch.exceptions import CheckpointError
from tests.search_tests._cli import cli, one_line_error
from tpsearch.checkpoints import weights_sha256

pytestmark = pytest.mark.slow  # trains, and runs commands as processes

# resnet_5m with 4096 channels and 64 blocks: 77 billion parameters (308 GB of float32) for digits' 8x8 images.
ENLARGED = {"layers": 1, "blocks": [64], "channels": 4096, "pool": 8}




def _edited(source: Path, dest: Path, **changes) -> Path:
    """`source` with some of its metadata changed, saved as `dest` (the weights' digest still holds: it covers
    the weights only, which is what a stranger who edits a checkpoint keeps)."""
    ckpt = torch.load(source, weights_only=True)
    ckpt.update(changes)
    assert ckpt["weights_sha256"] == weights_sha256(ckpt["state_dict"])
    torch.save(ckpt, dest)
    return dest


def _own_space(folder: Path, module: str, name: str, marker: Path) -> None:
    """A space of one's own, `module`.py in `folder`: resnet_5m under another name, whose import writes `marker`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(f"""\
        from pathlib import Path

        Path({str(marker)!r}).write_text("this file ran")  # the side effect: the marker exists once it runs

        from tpsearch.spaces.resnet_5m import ResNet5M


        class Mine(ResNet5M):
            name = {name!r}
        """))


@pytest.mark.parametrize("kind", ["file", "module"])
def test_a_checkpoint_naming_code_is_refused_until_the_user_names_it(digits_pair, tmp_path, capsys, monkeypatch,
                                                                     kind):
    marker = tmp_path / "ran"
    module = f"trust_probe_{kind}"
    _own_space(tmp_path / "shared", module, f"trust_probe_{kind}", marker)
    if kind == "file":
        spec = f"{tmp_path / 'shared' / module}.py:Mine"  # beside the checkpoint, as in a shared archive
    else:
        monkeypatch.syspath_prepend(str(tmp_path / "shared"))  # importable: on the path
        spec = f"{module}:Mine"
    small = _edited(digits_pair.small, tmp_path / "shared" / "small.pt", space=spec)
    large = _edited(digits_pair.large, tmp_path / "shared" / "large.pt", space=spec)

    with pytest.raises(CheckpointError, match="never imports or runs"):
        load_checkpoint(small)
    for argv in (["evaluate", str(small)],
                 ["explain", str(small), "--test-images", "1", "--out", str(tmp_path / "maps.html")],
                 ["delegate", str(small), str(digits_pair.large), "--threshold", "0.5"],
                 ["delegate", str(digits_pair.small), str(large), "--threshold", "0.5"]):
        rc, out, err = cli(capsys, *argv)
        one_line_error(rc, err, f"names the space {spec!r}", f"--space {spec}")
    assert not marker.exists() and module not in sys.modules  # nothing was imported, let alone run
    assert not (tmp_path / "maps.html").exists()

    # Named by the user, the same checkpoints load: the file runs (the marker appears) because they said so.
    model, meta = load_checkpoint(small, space=spec)
    assert marker.exists() and meta["space"] == spec
    assert sum(p.numel() for p in model.parameters()) == meta["metrics"]["params"]
    rc, out, err = cli(capsys, "evaluate", str(small), "--space", spec, "--json")
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["test_accuracy"] == pytest.approx(
        json.loads(cli(capsys, "evaluate", str(digits_pair.small), "--json")[1].splitlines()[-1])["test_accuracy"])
    rc, out, err = cli(capsys, "explain", str(small), "--space", spec, "--test-images", "1", "--samples", "2",
                        "--out", str(tmp_path / "maps.html"))
    assert rc == 0, err
    rc, out, err = cli(capsys, "delegate", str(small), str(large), "--space", spec, "--threshold", "0.5")
    assert rc == 0, err


def test_a_space_named_that_is_not_the_checkpoints_is_refused(digits_pair, tmp_path, capsys):
    rc, out, err = cli(capsys, "evaluate", str(digits_pair.small), "--space", "xresnet")
    one_line_error(rc, err, "made with the space 'resnet_5m', but --space gives the space 'xresnet'")
    with pytest.raises(CheckpointError, match="made with the space 'resnet_5m'"):
        load_checkpoint(digits_pair.small, space="convnets")


def test_an_enlarged_architecture_is_refused_at_once_without_allocating(digits_pair, tmp_path, capsys):
    arch = torch.load(digits_pair.small, weights_only=True)["arch"]
    enlarged = _edited(digits_pair.small, tmp_path / "enlarged.pt", arch={**arch, **ENLARGED})
    # In a process of its own whose address space may grow by 1 GiB at most: building the enlarged model (308 GB)
    # would fail there with a MemoryError instead of the refusal, and never take the shared machine's memory.
    probe = textwrap.dedent(f"""\
        import resource, time
        from tpsearch import load_checkpoint
        from tpsearch.exceptions import CheckpointError

        vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))
        started = time.perf_counter()
        try:
            load_checkpoint({str(enlarged)!r})
        except CheckpointError as e:
            print(f"{{time.perf_counter() - started:.3f}} {{e}}")
        """)
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 0 and r.stdout, r.stderr[-3000:]
    seconds, message = r.stdout.strip().split(" ", 1)
    assert "do not fit its architecture" in message and "77,043,216,394 parameters" in message, message
    assert float(seconds) < 2.0  # milliseconds measured; a generous bound on a busy shared machine

    rc, out, err = cli(capsys, "evaluate", str(enlarged))
    one_line_error(rc, err, "do not fit its architecture")
    # An architecture of the same size but another shape is caught by the meta-device model, still before building.
    wider = _edited(digits_pair.small, tmp_path / "wider.pt", arch={**arch, "kernels": [1]})
    with pytest.raises(CheckpointError, match="of another shape"):
        load_checkpoint(wider)


def test_a_space_of_ones_own_exports_and_loads_from_any_folder_when_named(tmp_path, capsys, monkeypatch):
    from tpsearch.testing.search import trained_study

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _own_space(project, "own", "trust_probe_export", tmp_path / "ran")
    monkeypatch.chdir(project)  # `tpsearch run --space own.py:Mine` records the spec as typed, relative to here
    storage, _ = trained_study(tmp_path, {"layers": 1, "blocks": [1], "channels": 8}, {"batch_size": 64},
                               epochs=1, space="own.py:Mine")
    paths = ["--storage", storage, "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
             "--no-progress"]
    best = tmp_path / "best.pt"
    rc, out, err = cli(capsys, "export", *paths, "--out", str(best))
    assert rc == 0, err
    absolute = f"{project / 'own.py'}:Mine"
    meta = torch.load(best, weights_only=True)
    assert meta["space"] == "own.py:Mine"
    assert meta["space_source"] == {"name": "trust_probe_export", "file": str(project / "own.py"), "class": "Mine"}

    monkeypatch.chdir(elsewhere)  # where own.py:Mine means nothing
    # In a process of its own: this one holds own.py:Mine already, as a session that loaded it would.
    r = subprocess.run([sys.executable, "-m", "tpsearch", "export", *paths, "--out", str(tmp_path / "again.pt")],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    one_line_error(r.returncode, r.stderr, "records the space 'own.py:Mine', which does not load from",
                    "give --space")
    rc, out, err = cli(capsys, "export", *paths, "--out", str(tmp_path / "again.pt"), "--space", absolute)
    assert rc == 0, err
    assert torch.load(tmp_path / "again.pt", weights_only=True)["space"] == absolute

    # The checkpoint points at the file it came from, as a suggestion: the user names it, the checkpoint never does.
    rc, out, err = cli(capsys, "evaluate", str(best))
    one_line_error(rc, err, "names the space 'own.py:Mine'", f"--space {absolute}")
    rc, out, err = cli(capsys, "evaluate", str(best), "--space", absolute)
    assert rc == 0, err
    model, meta = load_checkpoint(best, space=absolute)
    assert meta["space_source"]["name"] == "trust_probe_export"
    rc, out, err = cli(capsys, "evaluate", str(best), "--space", "resnet_5m")
    one_line_error(rc, err, "made with the space 'trust_probe_export', but --space gives the space 'resnet_5m'")
