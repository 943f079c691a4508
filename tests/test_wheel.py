"""The wheel, installed where the repository cannot help: built from the sources, installed into a fresh venv outside
the repository, every module of `tpsearch` imported there and every benchmark's `--help` run there.

The suite imports `tpsearch` from the editable install with the repository root on sys.path, so a module that
imports a folder by its repository name (`import spaces`) passes it and fails every user. Here nothing of the
repository is on sys.path: the fresh venv's dependencies come from this interpreter's site-packages through a .pth
file, which adds those folders without processing the .pth files inside them, so the editable install's finder
never starts and `tpsearch` can only be the wheel's. The scripts run with a clean environment from a folder
outside the repository, beside a copy of `benchmarks/` (how a user runs them from an installed package).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and imports all of tpsearch in fresh processes: a minute or two

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@dataclass(frozen=True)
class Installed:
    python: Path    # the fresh venv's interpreter
    purelib: Path   # its site-packages, where the wheel went
    work: Path      # a folder outside the repository holding a copy of benchmarks/: the scripts' cwd

    def run(self, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=self.work, env=_clean_env(), capture_output=True, text=True, timeout=timeout)


def _clean_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "PYTHONUSERBASE", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _sys_path(python: Path | str) -> list[str]:
    """`python`'s sys.path as its site module makes it: no cwd, no PYTHONPATH (-I), the .pth files processed."""
    done = subprocess.run([str(python), "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
                          capture_output=True, text=True, check=True, env=_clean_env(), cwd="/")
    return json.loads(done.stdout)


def _check(done: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{what}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    # The sources the wheel is built from, copied: setuptools builds in the source tree and keeps build/ there,
    # whose stale files would go into the wheel; the repository's own build/ is left alone.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in {"tpsearch", *config["package-dir"].values()}:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # No network: --no-build-isolation builds with this interpreter's setuptools, --no-index fetches nothing.
    _check(subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                           "--no-build-isolation", "--check-build-dependencies", "-w", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300), "pip wheel")
    (wheel,) = (tmp / "dist").glob("tpsearch-*.whl")

    venv = tmp / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True,
                          timeout=120), "venv")
    python = venv / "bin" / "python"
    # This interpreter's pip installs into the fresh venv (--python), before the dependencies' folders are added:
    # pip then sees no other tpsearch to replace.
    _check(subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=300), "pip install")
    purelib = Path(_check(subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()"
                                          "['purelib'])"], capture_output=True, text=True), "purelib").stdout.strip())
    # The dependencies: the folders on this interpreter's path that the fresh one lacks, the repository root (an
    # editable install's .pth may put it there) left out.
    fresh = set(_sys_path(python))
    deps = [p for p in _sys_path(sys.executable) if p not in fresh and Path(p).resolve() != ROOT]
    (purelib / "_tpsearch_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))

    work = tmp / "work"
    work.mkdir()
    shutil.copytree(ROOT / "benchmarks", work / "benchmarks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Installed(python=python, purelib=purelib, work=work)


IMPORT_ALL = r"""
import importlib, json, pkgutil, sys, traceback
from pathlib import Path

root, purelib = Path(sys.argv[1]), Path(sys.argv[2])
import tpsearch

assert Path(tpsearch.__file__).resolve().is_relative_to(purelib.resolve()), f"tpsearch from {tpsearch.__file__}"
assert not [f for f in sys.meta_path if "editable" in type(f).__module__], f"an editable finder: {sys.meta_path}"
failed, names, walk_errors = [], [], []
for module in pkgutil.walk_packages(tpsearch.__path__, "tpsearch.", onerror=walk_errors.append):
    if module.name.rpartition(".")[2] == "__main__":  # importing it runs the command; test_the_command runs it
        continue
    names.append(module.name)
    try:
        importlib.import_module(module.name)
    except BaseException as e:
        failed.append(f"{module.name}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
failed += [f"{name}: failed while walking the package" for name in walk_errors]
# What a module reached for by its repository name would have come from the sources: nothing may.
sources = [root / name for name in ("tpsearch", "spaces", "trainers", "dashboards", "search", "benchmarks", "tests")]
strays = sorted(name for name, m in list(sys.modules.items())
                if getattr(m, "__file__", None) and any(Path(m.__file__).resolve().is_relative_to(s) for s in sources))
# The package data, in use: the simulator reads its default strategy table from the installed package.
try:  # a module that failed above may fail here too: that is reported above, not as a crash of this script
    from tpsearch.search.simulate import DEFAULT_TABLE, Table
    table = {"path": str(DEFAULT_TABLE), "configs": len(Table.read().final),
             "files": sorted(p.name for p in DEFAULT_TABLE.parent.iterdir())}
except Exception as e:
    table = {"error": f"{type(e).__name__}: {e}"}
print(json.dumps({"names": names, "failed": failed, "strays": strays, "table": table}))
"""


@pytest.fixture(scope="module")
def imported(installed) -> dict:
    """Every module of the installed `tpsearch` imported in one fresh process, then its default table read."""
    done = _check(installed.run([str(installed.python), "-c", IMPORT_ALL, str(ROOT), str(installed.purelib)]),
                  "importing every module")
    return json.loads(done.stdout.splitlines()[-1])


def test_every_module_of_the_wheel_imports_with_no_repository_on_the_path(imported):
    assert not imported["failed"], "modules of the installed wheel that fail to import:\n" + "\n".join(
        imported["failed"])
    assert not imported["strays"], f"modules loaded from the repository's sources: {imported['strays']}"
    # Every folder pyproject.toml maps is in the wheel: a subpackage left out of `packages` would be missing here.
    expected = {f"tpsearch.{p.parent.relative_to(ROOT).as_posix().replace('/', '.')}"
                for folder in ("spaces", "trainers", "dashboards", "search")
                for p in (ROOT / folder).rglob("__init__.py") if "__pycache__" not in p.parts}
    expected |= {p.parent.relative_to(ROOT).as_posix().replace("/", ".")  # the rooms under tpsearch/
                 for p in (ROOT / "tpsearch").glob("*/**/__init__.py") if "__pycache__" not in p.parts}
    missing = sorted(expected - set(imported["names"]))
    assert not missing, f"subpackages missing from the wheel: {missing}"


def test_the_strategy_tables_are_in_the_wheel(imported, installed):
    table = imported["table"]
    assert "error" not in table, f"reading the default strategy table: {table.get('error')}"
    assert Path(table["path"]).resolve().is_relative_to(installed.purelib.resolve())
    assert table["configs"] > 0
    # Every table the repository ships; the partial tables build_table.py leaves while it runs are not shipped.
    shipped = sorted(p.name for p in (ROOT / "search" / "simulate" / "tables").iterdir() if ".part" not in p.name)
    assert table["files"] == shipped


def _helps(installed: Installed, commands: dict[str, list[str]]) -> list[str]:
    """Runs each command (a `--help`) at once, a few at a time: the failures, or those that printed no usage."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:  # each imports torch: seconds apiece
        runs = dict(zip(commands, pool.map(installed.run, commands.values())))
    return [f"{name}: exit {done.returncode}, stdout {done.stdout[:200]!r}\n{done.stderr[-2000:]}"
            for name, done in runs.items() if done.returncode != 0 or not done.stdout.startswith("usage: ")]


def test_the_command_runs_from_the_wheel(installed):
    failed = _helps(installed, {"tpsearch --help": [str(installed.python.with_name("tpsearch")), "--help"],
                                "python -m tpsearch --help": [str(installed.python), "-m", "tpsearch", "--help"]})
    assert not failed, "\n".join(failed)


def test_every_benchmark_answers_help_from_the_installed_package(installed):
    assert len(BENCHMARKS) >= 10  # the glob found them
    failed = _helps(installed, {name: [str(installed.python), f"benchmarks/{name}", "--help"] for name in BENCHMARKS})
    assert not failed, "benchmarks whose --help fails from the installed package:\n" + "\n".join(failed)


def test_gpu_report_answers_help_without_running(installed):
    done = _check(installed.run(["bash", "benchmarks/gpu_report.sh", "--help"], timeout=30), "gpu_report.sh --help")
    assert done.stdout.startswith("usage: bash benchmarks/gpu_report.sh")
    assert not (installed.work / "--help").exists() and not (installed.work / "gpu_report.json").exists()
