#!/usr/bin/env bash
# GET /v1/boards and GET /v1/boards/{uuid} with 1,000 boards, with wrk on loopback:
# s4t cloud on SQLite, s4t cloud on PostgreSQL, and the stock IoTronic API (bench/stock/), in one run.
# Prints one line per case and the ratios. Needs root for apt (wrk, mariadb) on first use.
#   DURATION (10), CONNS (8, s4t), STOCK=0 to skip the stock API.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-8}
N=1000
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q -p s4t
BIN=$PWD/target/release/s4t
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/postgres.sh stop; rm -rf "$WORK"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# wrk_case NAME URL [header...]: one wrk run, summarised as "NAME req/s p50 p99".
wrk_case() {
  local name=$1 url=$2; shift 2
  local args=() c=$CONNS t=2
  for hdr in "$@"; do args+=(-H "$hdr"); done
  [ -n "${WRK_CONNS:-}" ] && c=$WRK_CONNS && t=1
  local out
  out=$(wrk -t"$t" -c"$c" -d"${WRK_DURATION:-$DURATION}s" --timeout 60s --latency "${args[@]}" "$url")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-34s %12s req/s   p50 %10s   p99 %10s\n' "$name" "$rps" "$p50" "$p99"
  echo "$name $rps" >> "$WORK/rates"
}

start_s4t() { # NAME PORT [--database-url URL]
  local name=$1 port=$2; shift 2
  "$BIN" cloud --data-dir "$WORK/$name" --api-addr "127.0.0.1:$port" --wamp-addr 127.0.0.1:0 --tunnel-addr 127.0.0.1:0 --overlay-addr 127.0.0.1:0 "$@" > "$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -f "$WORK/$name/admin-token" ] && grep -q "REST API" "$WORK/$name.out" && break; sleep 0.1; done
}

bench_s4t() { # NAME PORT [--database-url URL]
  local name=$1 port=$2
  start_s4t "$@"
  local token sample
  token=$(cat "$WORK/$name/admin-token")
  sample=$(python3 bench/populate.py "http://127.0.0.1:$port" "$token" $N | awk '/sample_board/ {print $2}')
  wrk_case "s4t-$name GET /v1/boards" "http://127.0.0.1:$port/v1/boards" "X-Auth-Token: $token"
  wrk_case "s4t-$name GET /v1/boards/{uuid}" "http://127.0.0.1:$port/v1/boards/$sample" "X-Auth-Token: $token"
}

echo "== s4t, $N boards, wrk -t2 -c$CONNS -d${DURATION}s (keep-alive)"
bench_s4t sqlite 18901
PG_URL=$(scripts/postgres.sh start)
DB="s4t_bench_$$"
psql -q "$PG_URL" -c "CREATE DATABASE $DB" >/dev/null
bench_s4t postgres 18902 --database-url "${PG_URL%/*}/$DB"
psql -q "$PG_URL" -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1 || true

if [ "${STOCK:-1}" = 1 ]; then
  echo "== stock IoTronic 0.4.17 API (uWSGI 2x1, MariaDB, noauth), $N boards, wrk -t1 -c2"
  bench/stock/setup.sh >/dev/null
  bench/stock/start.sh >/dev/null
  sample=$(python3 bench/stock/populate.py $N | awk '/sample_board/ {print $2}')
  WRK_CONNS=2 WRK_DURATION=$((DURATION * 3)) wrk_case "stock GET /v1/boards" "http://127.0.0.1:1288/v1/boards" "X-Roles: admin" "Connection: close"
  sleep 8   # let the workers finish abandoned list requests
  WRK_CONNS=2 wrk_case "stock GET /v1/boards/{uuid}" "http://127.0.0.1:1288/v1/boards/$sample" "X-Roles: admin" "Connection: close"
  bench/stock/stop.sh >/dev/null
  echo "== ratios (s4t / stock, req/s)"
  python3 - "$WORK/rates" <<'PY'
import sys
r = dict(l.rsplit(" ", 1) for l in open(sys.argv[1]).read().splitlines())
r = {k: float(v) for k, v in r.items()}
for engine in ("sqlite", "postgres"):
    for route in ("GET /v1/boards", "GET /v1/boards/{uuid}"):
        s, o = r.get("s4t-%s %s" % (engine, route)), r.get("stock %s" % route)
        if s and o:
            print("%-10s %-24s %10.0fx" % (engine, route, s / o))
PY
fi
