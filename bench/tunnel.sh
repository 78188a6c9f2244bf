#!/usr/bin/env bash
# Service tunnels: s4t cloud's tunnel server + s4t agent's tunnel client against raw loopback, in one
# run. A board-side service (crates/tunnel/examples/tunnel_load.rs) is exposed through the REST API
# (ServiceEnable); the same client then talks to it directly (raw) and through its public port.
#   single stream: upload and download of BYTES, each RUNS times, median MB/s (target: tunnel >= 50% of raw)
#   new connections: CONC workers for SECS seconds, each connect + 1 byte each way + close (target: >= 10k/s)
#   memory: VmRSS / VmHWM of the cloud and the agent after the load
# Knobs: BYTES (1000000000), RUNS (3), SECS (5), CONC (64), KEEP=1 keeps logs.
# Every process runs in its own process group and is stopped on exit. No stock peer: the wstun
# package Lightning-rod uses is not on the npm registry this machine reaches (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${BYTES:-1000000000}
RUNS=${RUNS:-3}
SECS=${SECS:-5}
CONC=${CONC:-64}

cargo build --release -q -p s4t -p s4t-tunnel --example tunnel_load
WORK=$(mktemp -d "${TMPDIR:-/tmp}/s4t-tunnel.XXXXXX")
cp target/release/s4t target/release/examples/tunnel_load "$WORK/"
BIN=$WORK/s4t
LOAD=$WORK/tunnel_load
PGS=()

stop_group() {
  local p=$1 i
  kill -TERM -- "-$p" 2>/dev/null || return 0
  for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  for p in "${PGS[@]}"; do stop_group "$p"; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
spawn() {
  local name=$1; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
  LAST=$!
  PGS+=("$LAST")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
median() { python3 -c 'import sys,statistics; print("%.1f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
mem() { awk '/VmRSS|VmHWM/ {printf "%s %.1f MiB  ", $1, $2/1024}' "/proc/$1/status"; }

# the cloud, with a public port range of its own
BASEP=$(( 41000 + RANDOM % 2000 ))
spawn cloud "$BIN" cloud --data-dir "$WORK/cloud" --api-addr 127.0.0.1:0 --wamp-addr 127.0.0.1:0 \
  --tunnel-addr 127.0.0.1:0 --overlay-addr 127.0.0.1:0 --public-ports "$BASEP-$((BASEP + 9))"
CLOUD=$LAST
for i in $(seq 1 200); do
  grep -q "service tunnel server on" "$WORK/cloud.log" && [ -s "$WORK/cloud/admin-token" ] && break
  sleep 0.05
done
API=$(sed -n 's/.*REST API on \(http[^ ]*\).*/\1/p' "$WORK/cloud.log" | head -1)
WAMP=$(sed -n 's/.*boards are given \(ws[^ ]*\).*/\1/p' "$WORK/cloud.log" | head -1)
HDR="X-Auth-Token: $(cat "$WORK/cloud/admin-token")"
call() { curl -sf -H "$HDR" -H 'Content-Type: application/json' "$@"; }

call -X POST "$API/v1/boards" -d '{"name": "tb", "code": "CODE-TB", "type": "virtual",
  "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]}' >/dev/null
spawn agent "$BIN" agent --data-dir "$WORK/agent" --code CODE-TB --cloud "$WAMP"
AGENT=$LAST
for i in $(seq 1 300); do
  [ "$(call "$API/v1/boards/tb" | json '["status"]')" = online ] && break
  sleep 0.05
done

spawn service "$LOAD" serve
for i in $(seq 1 100); do [ -s "$WORK/service.log" ] && break; sleep 0.05; done
SVC_PORT=$(head -1 "$WORK/service.log")
SVC=$(call -X POST "$API/v1/services" -d "{\"name\": \"load\", \"port\": $SVC_PORT, \"protocol\": \"TCP\"}" | json '["uuid"]')
call -X POST "$API/v1/boards/tb/services/$SVC/action" -d '{"action": "ServiceEnable"}' >/dev/null
PUB=$(call "$API/v1/boards/tb/services" | json '["exposed"][0]["public_port"]')
echo "service on 127.0.0.1:$SVC_PORT, public port $PUB; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
for dir in up down; do
  raw=() tun=()
  for r in $(seq 1 "$RUNS"); do
    raw+=("$("$LOAD" throughput "127.0.0.1:$SVC_PORT" "$dir" "$BYTES" | json '["mb_per_s"]')")
    tun+=("$("$LOAD" throughput "127.0.0.1:$PUB" "$dir" "$BYTES" | json '["mb_per_s"]')")
  done
  R=$(median "${raw[@]}"); T=$(median "${tun[@]}")
  echo "single stream $dir ($BYTES bytes, median of $RUNS): raw $R MB/s, tunnel $T MB/s, tunnel/raw $(ratio "$T" "$R")  [raw ${raw[*]}; tunnel ${tun[*]}]"
done

RAWC=$("$LOAD" connect "127.0.0.1:$SVC_PORT" "$SECS" "$CONC")
sleep 2
TUNC=$("$LOAD" connect "127.0.0.1:$PUB" "$SECS" "$CONC")
echo "new connections ($CONC workers, ${SECS} s): raw $RAWC"
echo "new connections ($CONC workers, ${SECS} s): tunnel $TUNC"
echo "tunnel/raw connections per second: $(ratio "$(echo "$TUNC" | json '["per_s"]')" "$(echo "$RAWC" | json '["per_s"]')")"
echo "memory after the load: cloud $(mem "$CLOUD")"
echo "memory after the load: agent $(mem "$AGENT")"
echo "tunnel counters: $(call "$API/v1/boards/tb/services/status" | head -c 400)"
