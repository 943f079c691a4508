"""How a benchmark ends: its JSON line last on stdout, then a non-zero exit when a claim it states did not hold.

A benchmark that prints a failed claim and exits 0 reads as a pass to every script and CI job that runs it; the
figures alone are not a verdict. Each benchmark lists what it claims as (description, held) pairs.
"""
from __future__ import annotations

import json
import sys


def finish(result: dict, claims: list[tuple[str, bool]]) -> None:
    """Print `result` (with the failed claims in it) as the last line; exit 1 if any claim failed."""
    failed = [what for what, held in claims if not held]
    result["claims_failed"] = failed
    # The verdicts go first, so that the JSON line is last even where stderr and stdout share one log.
    for what in failed:
        print(f"claim failed: {what}", file=sys.stderr, flush=True)
    print(json.dumps(result), flush=True)
    if failed:
        sys.exit(1)
