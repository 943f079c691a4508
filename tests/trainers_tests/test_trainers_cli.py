"""`tpsearch train` through the real command: learning on digits, and the one-line errors of missing or bad data."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, through the command

ROOT = Path(__file__).resolve().parents[2]
# The installed console script beside this interpreter; the module itself where the script is not installed.
_SCRIPT = Path(sys.executable).with_name("tpsearch")
TPSEARCH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "tpsearch"]


def _tpsearch(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*TPSEARCH, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tpsearch train: error: ")
    return lines[0]


def test_tiny_resnet_learns_digits():
    start = time.perf_counter()
    proc = _tpsearch("train", "--space", "resnet_5m", "--preset", "tiny", "--dataset", "digits", "--epochs", "10",
                     "--json")
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"digits, tiny, 10 epochs: val_accuracy {result['val_accuracy']:.4f} in {seconds:.1f} s "
          f"({result['seconds']:.1f} s training)")
    assert result["val_accuracy"] >= 0.95
    assert result["epochs"] == 10 and result["status"] == "completed"
    for key in ("val_loss", "seconds", "images_per_s", "params"):
        assert key in result
    assert result["params"] > 0 and len(result["history"]) == 10
    assert "epoch" in proc.stderr  # the progress bar is on stderr; stdout ends with the JSON


def test_missing_cifar_is_one_line(tmp_path):
    line = _one_line_error(_tpsearch("train", "--preset", "tiny", "--dataset", "cifar10", "--data-dir",
                                     str(tmp_path / "data"), "--no-download"))
    assert str(tmp_path / "data") in line
    assert "cifar-10-python.tar.gz" in line and "cifar-10-batches-py/" in line and "--dataset digits" in line


def test_corrupt_cifar_is_one_line(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    line = _one_line_error(_tpsearch("train", "--preset", "tiny", "--dataset", "cifar10", "--data-dir",
                                     str(tmp_path), "--no-download"))
    assert "corrupt" in line and str(tmp_path / "cifar-10-python.tar.gz") in line


def test_trains_on_cifar_format_archive(cifar_archive):
    root, _ = cifar_archive
    proc = _tpsearch("train", "--preset", "tiny", "--dataset", "cifar10", "--data-dir", str(root), "--no-download",
                     "--epochs", "1", "--batch-size", "32", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["dataset"] == "cifar10" and result["epochs"] == 1 and 0 <= result["val_accuracy"] <= 1


def test_diverged_training_exits_non_zero_with_the_reason():
    proc = _tpsearch("train", "--preset", "tiny", "--dataset", "digits", "--epochs", "2", "--lr", "1e30", "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "tpsearch train: error: training failed: diverged"
    assert json.loads(proc.stdout.strip().splitlines()[-1])["status"] == "failed"
