#!/usr/bin/env bash
# Fleet-wide plugin operations on N swarm boards (default 10,000): `s4t fleet inject` and then
# `s4t fleet plugin-action ... PluginCall`, each timed from the POST to the last board's result,
# with the cloud's CPU over the same span. Swarm boards answer plugin procedures from memory, so
# this measures the cloud: fan-out, WAMP calls, and a request + result row per board.
#   N (10000), BATCH (500: boards called at once), PING (30)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
BATCH=${BATCH:-500}
PING=${PING:-30}
cargo build --release -q -p s4t
BIN=$PWD/target/release/s4t
ulimit -n "$(ulimit -Hn)"
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

"$BIN" cloud --data-dir "$WORK/cloud" --api-addr 127.0.0.1:18960 --wamp-addr 127.0.0.1:18961 --tunnel-addr 127.0.0.1:0 --overlay-addr 127.0.0.1:0 \
  --wamp-ping-interval "$PING" >"$WORK/cloud.out" 2>"$WORK/cloud.log" &
CLOUD=$!
PIDS+=("$CLOUD")
for _ in $(seq 100); do grep -q "board WAMP router" "$WORK/cloud.out" 2>/dev/null && break; sleep 0.1; done
export S4T_URL=http://127.0.0.1:18960 S4T_TOKEN
S4T_TOKEN=$(cat "$WORK/cloud/admin-token")
S4T_LOG=warn "$BIN" swarm --cloud ws://127.0.0.1:18961/ --boards "$N" --code-prefix R- \
  --api "$S4T_URL" --token "$S4T_TOKEN" --fleet bench --source-ips 32 --ping-interval "$PING" \
  >"$WORK/swarm.out" 2>"$WORK/swarm.log" &
PIDS+=($!)
until grep -q "boards online after" "$WORK/swarm.out" 2>/dev/null; do sleep 0.5; done
printf 'print("echo")\n' >"$WORK/echo.py"
"$BIN" plugin create --name echo --file "$WORK/echo.py" >/dev/null

timed() { # NAME command...: wall time and cloud CPU of one rollout
  local name=$1; shift
  local t0 c0 t1 c1
  t0=$(date +%s.%N); c0=$(cpu_ticks "$CLOUD")
  "$@" -o json >"$WORK/$name.json" 2>"$WORK/$name.err" || true
  t1=$(date +%s.%N); c1=$(cpu_ticks "$CLOUD")
  local ok
  ok=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(1 for x in r if x["result"]=="SUCCESS"), len(r))' "$WORK/$name.json")
  printf '%-22s %8.2f s   cloud CPU %7.2f s   succeeded/boards: %s\n' "$name" \
    "$(echo "$t1 - $t0" | bc -l)" "$(echo "($c1 - $c0)/$HZ" | bc -l)" "$ok"
}
echo "== $N swarm boards in fleet 'bench', batches of $BATCH"
timed "fleet inject" "$BIN" fleet inject bench echo --batch-size "$BATCH"
timed "fleet PluginCall" "$BIN" fleet plugin-action bench echo PluginCall -p x=1 --batch-size "$BATCH"
