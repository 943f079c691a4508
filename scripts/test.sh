#!/usr/bin/env bash
# Set up and run the whole test suite: .venv, the real services (PostgreSQL, Chromium), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
eval "$(scripts/services.sh)"
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest "$@"
