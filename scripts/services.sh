#!/usr/bin/env bash
# The real servers and browser the tests use: Debian's PostgreSQL (started on loopback, with a test database)
# and Chromium. Installs them with apt-get when run as root and they are missing. Prints the export line for
# TPSEARCH_TEST_POSTGRES_URL, so: eval "$(scripts/services.sh)".
set -euo pipefail
need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${need[@]}" >&2
  else
    echo "services.sh: missing ${need[*]} and cannot apt-get install them; their tests will skip" >&2
  fi
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >&2
  pg_ctlcluster "$version" main start >&2 2>/dev/null || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  runuser -u postgres -- psql -qtc "SELECT 1 FROM pg_roles WHERE rolname='tpsearch'" | grep -q 1 \
    || runuser -u postgres -- psql -qc "CREATE ROLE tpsearch LOGIN SUPERUSER PASSWORD 'tpsearch'" >&2
  runuser -u postgres -- psql -qtc "SELECT 1 FROM pg_database WHERE datname='tpsearch_test'" | grep -q 1 \
    || runuser -u postgres -- createdb -O tpsearch tpsearch_test >&2
  echo "export TPSEARCH_TEST_POSTGRES_URL=postgresql+psycopg2://tpsearch:tpsearch@127.0.0.1:5432/tpsearch_test"
fi
