#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the test suite and print its SQLAlchemy URL.
# Uses the newest /usr/lib/postgresql/*/bin (Debian's postgresql package). Idempotent.
set -euo pipefail

PORT="${BERTSCOPE_TEST_PG_PORT:-54329}"
DATA="${BERTSCOPE_TEST_PG_DATA:-/tmp/bertscope-test-pg}"
DB=bertscope_test
URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/${DB}"

BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$BIN" ]]; then
  echo "PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
  exit 1
fi

as_owner() {
  if [[ "$(id -u)" == "0" ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [[ "$(id -u)" == "0" ]] && chown postgres "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust >/dev/null
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-h 127.0.0.1 -p $PORT -k $DATA -c fsync=off" start >/dev/null
fi
if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
fi
echo "$URL"
