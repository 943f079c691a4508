#!/usr/bin/env bash
# Set up and run the whole test suite: .venv, the real services (PostgreSQL, Chromium), then pytest.
#
#   bash scripts/test.sh [--no-postgres] [--no-browser] [PYTEST ARGS...]
#
# A missing service stops the run before pytest starts, in one line saying how to get it: a suite that skips the
# PostgreSQL storage contract or the browser's pages would pass without testing them. --no-postgres and
# --no-browser (or TPSEARCH_TEST_NO_POSTGRES=1, TPSEARCH_TEST_NO_BROWSER=1) opt out on purpose; their tests then
# skip with that reason. CI (CI set) never opts out.
set -euo pipefail
cd "$(dirname "$0")/.."
no_postgres="${TPSEARCH_TEST_NO_POSTGRES:-}" no_browser="${TPSEARCH_TEST_NO_BROWSER:-}"
args=()
for arg in "$@"; do
  case "$arg" in
    --no-postgres) no_postgres=1 ;;
    --no-browser) no_browser=1 ;;
    *) args+=("$arg") ;;
  esac
done
if [ -n "${CI:-}" ]; then no_postgres="" no_browser=""; fi
scripts/setup.sh
eval "$(TPSEARCH_SERVICES_QUIET=1 scripts/services.sh)"
if [ -z "${TPSEARCH_TEST_POSTGRES_URL:-}" ] && [ -z "$no_postgres" ]; then
  echo "test.sh: no PostgreSQL server: install it (apt-get install postgresql) and rerun, or pass --no-postgres" >&2
  exit 2
fi
browser="${TPSEARCH_CHROMIUM:-}"
for name in chromium chromium-browser google-chrome google-chrome-stable; do  # as tests/dashboards_tests/_browser.py
  [ -n "$browser" ] || browser="$(command -v "$name" || true)"
done
if [ -z "$browser" ] && [ -z "$no_browser" ]; then
  echo "test.sh: no Chromium: install it (apt-get install chromium) or set TPSEARCH_CHROMIUM, or pass --no-browser" >&2
  exit 2
fi
[ -z "$no_postgres" ] || export TPSEARCH_TEST_NO_POSTGRES=1
[ -z "$no_browser" ] || export TPSEARCH_TEST_NO_BROWSER=1
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest ${args[@]+"${args[@]}"}
