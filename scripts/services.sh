#!/usr/bin/env bash
# The real servers and browser the tests use: Debian's PostgreSQL (started on loopback, with a test database)
# and Chromium. Installs them with apt-get when run as root and they are missing. Prints the export lines for
# TPSEARCH_TEST_POSTGRES_URL (and, for a private server, TPSEARCH_TEST_POSTGRES_DATA), so:
# eval "$(scripts/services.sh)".
# As root it uses the system cluster (pg_ctlcluster). As any other user it runs a private server of its own:
# initdb under TPSEARCH_PG_DIR (default /tmp/tpsearch-pg-UID), on 127.0.0.1:TPSEARCH_PG_PORT (default 55432),
# password-protected; the fault test that restarts the server restarts that one (pg_ctl, no root needed).
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
    # scripts/test.sh says it itself, in one line per missing service
    [ -n "${TPSEARCH_SERVICES_QUIET:-}" ] || echo "services.sh: missing ${need[*]} and cannot apt-get install them" \
      "(not root, or no apt-get): scripts/test.sh will stop unless told --no-postgres / --no-browser" >&2
  fi
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >&2
  pg_ctlcluster "$version" main start >/dev/null 2>&1 || true  # "already running" is no news
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  runuser -u postgres -- psql -qtc "SELECT 1 FROM pg_roles WHERE rolname='tpsearch'" | grep -q 1 \
    || runuser -u postgres -- psql -qc "CREATE ROLE tpsearch LOGIN SUPERUSER PASSWORD 'tpsearch'" >&2
  runuser -u postgres -- psql -qtc "SELECT 1 FROM pg_database WHERE datname='tpsearch_test'" | grep -q 1 \
    || runuser -u postgres -- createdb -O tpsearch tpsearch_test >&2
  echo "export TPSEARCH_TEST_POSTGRES_URL=postgresql+psycopg2://tpsearch:tpsearch@127.0.0.1:5432/tpsearch_test"
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  bin="/usr/lib/postgresql/$version/bin"
  dir="${TPSEARCH_PG_DIR:-/tmp/tpsearch-pg-$(id -u)}" port="${TPSEARCH_PG_PORT:-55432}"
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir" && chmod 700 "$dir"
    (umask 077 && echo tpsearch >"$dir.pw")
    "$bin/initdb" -D "$dir" -U tpsearch --auth=scram-sha-256 --pwfile="$dir.pw" >/dev/null
    rm -f "$dir.pw"
  fi
  # The socket in the data folder, not /var/run/postgresql, which only the postgres user may write.
  "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1 \
    || "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >&2
  export PGPASSWORD=tpsearch
  "$bin/psql" -qtAh 127.0.0.1 -p "$port" -U tpsearch -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname='tpsearch_test'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$port" -U tpsearch tpsearch_test >&2
  echo "export TPSEARCH_TEST_POSTGRES_URL=postgresql+psycopg2://tpsearch:tpsearch@127.0.0.1:$port/tpsearch_test"
  echo "export TPSEARCH_TEST_POSTGRES_DATA=$dir"
fi
