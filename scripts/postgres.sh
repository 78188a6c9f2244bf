#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL server on loopback for the test suite and benchmarks.
#   scripts/postgres.sh start   -> prints the admin URL (postgres://postgres@127.0.0.1:PORT/postgres)
#   scripts/postgres.sh stop
# State lives in ${S4T_PG_DIR:-target/pg}; the port is ${S4T_PG_PORT:-25432} (below the ephemeral
# range 32768-60999, so no client connection can hold it). Installs the
# server from apt when it is missing. Runs as the unprivileged `postgres` user.
set -euo pipefail
cd "$(dirname "$0")/.."
PGDIR=${S4T_PG_DIR:-$PWD/target/pg}
PORT=${S4T_PG_PORT:-25432}

find_bin() {
  local b
  for b in /usr/lib/postgresql/*/bin; do [ -x "$b/pg_ctl" ] && { echo "$b"; return 0; }; done
  return 1
}

case "${1:-start}" in
start)
  if ! BIN=$(find_bin); then
    echo "installing PostgreSQL from apt" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN=$(find_bin)
  fi
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  mkdir -p "$PGDIR"
  chown postgres "$PGDIR"
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! as_pg "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
    as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w start \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGDIR -c max_connections=400 -c fsync=off -c synchronous_commit=off" >/dev/null
  fi
  echo "postgres://postgres@127.0.0.1:$PORT/postgres"
  ;;
stop)
  BIN=$(find_bin) || exit 0
  [ -f "$PGDIR/data/PG_VERSION" ] || exit 0
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
  else "$BIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true; fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
