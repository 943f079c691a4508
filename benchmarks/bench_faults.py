"""The fault suite's cases as one table: each runs a real small search, injects its fault and counts what survived.

    python benchmarks/bench_faults.py [--skip-node-loss] [--load-sizes 100,1000,10000] [--cases NAME,...]
                                      [--skip-load] [--allow-skips]

Columns: fault; trials requested; finished (trained: COMPLETE or PRUNED and feasible); lost (finished before the
fault, gone or changed after it); retried (Ray Tune's failed attempts, or trials the driver requeued after a kill);
outcome. The cases are those of tests/search_tests/faults_tests/ (the same functions, from
`tpsearch.testing.search`), the lost Ray node included. Then the load figures: seconds
per TPE suggestion (the driver's sampler settings) as the study grows, `tpsearch status --json` and a resume up to
the first ask on a 10,000-trial study. The last line is JSON.

Each case claims that its search completed with every trial finished and none lost. The table is printed whole;
then the script exits 1 if a case crashed, ended otherwise than "completed" or lost a trial, or was skipped (no
PostgreSQL, not root for the tmpfs) unless --allow-skips says a partial table is what is wanted.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

from _claims import finish  # noqa: E402  (this script's folder)

from tpsearch.testing import search as _cases  # noqa: E402  (after the environment above)

CASES = ("driver-sigkill", "two-drivers", "node-loss", "worker-faults", "sqlite-locked", "disk-full",
         "postgres-restart")


def node_loss(tmp: Path) -> dict:
    """A cluster started with `ray start` (two nodes) losing its second node mid-trial, as a row."""
    try:
        out = _cases.search_on_cluster(tmp)
    except AssertionError as e:
        return {"fault": "Ray node lost", "requested": 4, "finished": 0, "lost": None, "retried": None,
                "outcome": f"error: {_cases.last_line(str(e))}"[:160]}
    finished = len(_cases.trained(out["trials"]))
    ok = out["rc"] == 0 and finished == 4 and all(rc == 0 for rc, _ in out["exports"].values())
    return {"fault": "Ray node lost", "requested": 4, "finished": finished, "lost": None,
            "retried": sum(out["ray_failures"].values()),
            "outcome": "completed" if ok else f"error (exit {out['rc']}): {_cases.last_line(out['stderr'])}"[:160]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--skip-node-loss", action="store_true", help="leave out the two-node cluster (a minute or two)")
    p.add_argument("--load-sizes", default="100,1000,10000", help="study sizes for the TPE timing")
    p.add_argument("--cases", default=",".join(CASES), help="the cases to run, comma-separated (default: all)")
    p.add_argument("--skip-load", action="store_true", help="leave out the 10,000-trial load figures")
    p.add_argument("--allow-skips", action="store_true",
                   help="exit 0 even if a case was skipped for want of PostgreSQL or root")
    args = p.parse_args()
    wanted = set(args.cases.split(","))
    if args.skip_node_loss:
        wanted.discard("node-loss")
    if unknown := wanted - set(CASES):
        p.error(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")

    import ray

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def case(name: str, fn, *a) -> None:
            if name not in wanted:
                return
            folder = tmp / name
            folder.mkdir()
            t0 = time.perf_counter()
            try:
                row = fn(folder, *a).row()
            except Exception as e:  # noqa: BLE001 - a case that breaks is a row, not the end of the table
                traceback.print_exc()
                row = {"fault": name, "requested": None, "finished": None, "lost": None, "retried": None,
                       "outcome": f"crashed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:160]}
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(f"  {row['fault']}: {row['outcome']} ({row['seconds']} s)", file=sys.stderr, flush=True)

        # Subprocess cases first: they start their own Ray, and SIGKILL takes their process group down with it.
        case("driver-sigkill", _cases.driver_sigkill)
        case("two-drivers", _cases.two_drivers)
        if "node-loss" in wanted:
            t0 = time.perf_counter()
            folder = tmp / "node-loss"
            folder.mkdir()
            row = node_loss(folder)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(f"  {row['fault']}: {row['outcome']} ({row['seconds']} s)", file=sys.stderr, flush=True)

        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
        try:
            case("worker-faults", _cases.worker_faults)
            case("sqlite-locked", _cases.sqlite_locked)
            case("disk-full", _cases.disk_full)
            url = os.environ.get("TPSEARCH_TEST_POSTGRES_URL")
            command, why = _cases.postgres_restart_command(os.environ.get("TPSEARCH_TEST_POSTGRES_DATA"))
            if not url:
                why = "no TPSEARCH_TEST_POSTGRES_URL (eval \"$(scripts/services.sh)\")"
            if "postgres-restart" not in wanted:
                pass
            elif url and command:
                case("postgres-restart", _cases.postgres_restart, url, command)
            else:
                rows.append({"fault": "PostgreSQL restarted mid-search", "requested": 3, "finished": None,
                             "lost": None, "retried": None, "outcome": f"skipped: {why}"})

            if not args.skip_load:  # a 10,000-trial study
                load = tmp / "load"
                load.mkdir()
                t0 = time.perf_counter()
                storage = _cases.make_big_study(load / "studies.db", 10_000)
                build_s = time.perf_counter() - t0
                status_s, status, r = _cases.status_json(storage, load)
                if r.returncode != 0:
                    print(r.stderr, file=sys.stderr)
                resume_s, n = _cases.resume_to_first_ask(storage, load)
        finally:
            ray.shutdown()
        tpe = {} if args.skip_load else _cases.tpe_seconds_per_suggestion(
            tuple(int(s) for s in args.load_sizes.split(",")))

    print(f"\n{'fault':<42} {'requested':>9} {'finished':>8} {'lost':>5} {'retried':>7} {'seconds':>7}  outcome")
    for row in rows:
        cells = [("-" if row.get(k) is None else row[k]) for k in ("requested", "finished", "lost", "retried",
                                                                    "seconds")]
        print(f"{row['fault']:<42} {cells[0]:>9} {cells[1]:>8} {cells[2]:>5} {cells[3]:>7} {cells[4]:>7}  "
              f"{row['outcome']}")
    result, claims = {"cases": rows}, []
    for row in rows:
        skipped = row["outcome"].startswith("skipped")
        claims.append((f"{row['fault']}: {row['outcome']}", row["outcome"] == "completed" or
                       (skipped and args.allow_skips)))
        claims.append((f"{row['fault']}: none of the trials finished before the fault lost, lost {row['lost']}",
                       not row.get("lost")))
    if not args.skip_load:
        print(f"\nload: a {n:,}-trial study (built in {build_s:.1f} s): `tpsearch status --json` {status_s:.2f} s "
              f"(process start included), resume to the first ask {resume_s:.2f} s")
        print("TPE seconds per suggestion: " + ", ".join(f"{k} trials {v:.3f} s" for k, v in tpe.items()))
        result.update({"tpe_s_per_suggestion": {k: round(v, 4) for k, v in tpe.items()},
                       "status_s_10000": round(status_s, 3), "resume_s_10000": round(resume_s, 3),
                       "status_trained_10000": status.get("studies", {}).get(_cases.BIG_STUDY, {}).get("trained")})
        claims.append(("`tpsearch status --json` reads the 10,000-trial study", r.returncode == 0))
    finish(result, claims)


if __name__ == "__main__":
    main()
