"""benchmarks/readme_figures.py: every entry still finds its figure in README.md, so a stale entry fails here, in
the quick loop, rather than an hour into a run of the figures."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "readme_figures.py"


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("readme_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while it is being made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_list_finds_every_figure_once():
    done = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line and not line.startswith(" ")]
    assert len(listed) > 100 and len(set(listed)) == len(listed)


def test_an_edited_figure_sentence_is_a_stale_entry(figures):
    text = figures.readme_text()
    entry = next(f for f in figures.FIGURES if f.name == "quickstart.best")
    figures.find(entry, text)  # found once in today's README
    with pytest.raises(LookupError, match="quickstart.best"):
        figures.find(entry, text.replace("finds **", "found **"))


def test_a_factor_holds_both_ways_and_exact_means_the_printed_digits(figures):
    ratio = figures.Figure("r", "w", "x", (), lambda out: "", factor=1.3)
    assert figures.holds(ratio, "1.14 / 0.97", "1.40 / 0.80") and not figures.holds(ratio, "1.14", "0.80")
    exact = figures.Figure("e", "w", "x", (), lambda out: "")
    assert figures.holds(exact, "98.60%", "98.60%") and not figures.holds(exact, "98.60%", "98.6%")
