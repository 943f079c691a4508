"""The route of one sampled architecture from `tpsearch run` to its row in the study, traced, not recalled.

Runs `tpsearch run` for one trial of one epoch on digits (about 20 s on 2 CPU cores) with a profiler in the driver
and in the worker's trainable, and prints, for each moment of the architecture's journey (drawn, recorded,
shipped, built, trained, reported, told), the chain of tpsearch's own functions on the stack. Each step of the
route is one hand-off: the architecture (or the trial that carries it, or its scores) passing from one function
to the next; a crossing through Ray Tune counts as one.

    python scripts/route.py
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
# The moments, by the function called and the module it belongs to.
MOMENTS = {("suggest_with_options", "spaces"): "drawn", ("set_user_attr", "optuna"): "recorded",
           ("build", "spaces"): "built", ("train", "tpsearch.trainers"): "trained",
           ("report", "ray"): "reported by the worker", ("report", "optuna"): "its curve told",
           ("tell", "optuna"): "its value told"}


def _own(frame) -> bool:
    name = frame.f_code.co_filename
    return name.startswith(ROOT) and "/.venv/" not in name and "/scripts/" not in name


def _chain(frame) -> list[str]:
    out = []
    while frame is not None:
        if _own(frame):
            out.append(f"{os.path.relpath(frame.f_code.co_filename, ROOT)}:{frame.f_code.co_qualname}")
        frame = frame.f_back
    return out[::-1]


def _profiler(events: list):
    def profile(frame, event, arg):
        if event != "call" or frame.f_back is None or not _own(frame.f_back):
            return
        module = frame.f_globals.get("__name__", "")
        for (function, package), moment in MOMENTS.items():
            # Ray's `tune.report` is wrapped: known by its caller, the worker's report.
            called = (frame.f_back.f_code.co_name if package == "ray" else frame.f_code.co_name)
            if called == function and (module.startswith(package) or (package == "spaces" and "spaces" in module)):
                if function == "set_user_attr" and frame.f_locals.get("key") != "arch":
                    return
                if function == "tell" and frame.f_back.f_code.co_name != "_complete":
                    return  # an infeasible draw's tell, not the trained trial's
                events.append((moment, _chain(frame.f_back) + [f"{module}.{frame.f_code.co_qualname}"]))
    return profile


def _traced_trial(config, **kwargs):
    from tpsearch.search._worker import run_trial

    events: list = []
    sys.setprofile(_profiler(events))
    try:
        run_trial(config, **kwargs)
    finally:
        sys.setprofile(None)
        Path(os.environ["TPSEARCH_ROUTE"]).write_text(json.dumps(events))


def main() -> int:
    import tpsearch.cli._run as cli_run

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TPSEARCH_ROUTE"] = worker_file = f"{tmp}/worker.json"
        real = cli_run.run_search
        cli_run.run_search = lambda opts, **kw: real(opts, trainable=_traced_trial, **kw)
        events: list = []
        profile = _profiler(events)
        threading.setprofile(profile)
        sys.setprofile(profile)
        from tpsearch._cli import main as tpsearch_main

        sys.argv = ["tpsearch", "run", "--dataset", "digits", "--trials", "1", "--epochs", "1", "--max-params",
                    "60000", "--max-macs", "none", "--scheduler", "none", "--warmup-epochs", "0", "--no-progress",
                    "--storage", f"sqlite:///{tmp}/route.db", "--runs-dir", f"{tmp}/runs"]
        code = tpsearch_main()
        sys.setprofile(None)
        threading.setprofile(None)
        worker = json.loads(Path(worker_file).read_text())
    seen, route = set(), []
    for moment, chain in events[:2] + worker + events[2:]:
        if moment not in seen:
            seen.add(moment)
            route.append((moment, chain))
    for moment, chain in route:
        print(f"{moment}:\n  " + "\n  -> ".join(chain))
    return code


if __name__ == "__main__":
    sys.exit(main())
