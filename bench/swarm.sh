#!/usr/bin/env bash
# Many boards on one s4t cloud: `s4t swarm` runs N simulated boards (real WebSockets, real
# registration and authentication) against `s4t cloud` on SQLite. For each N it reports the time
# until all are online, the cloud's resident memory per idle board, and the cloud's CPU while
# the boards sit idle. Boards are created through the REST API first (not timed as "online").
#   NS="10000 50000 100000" (board counts), IDLE=20 (seconds of idle measurement),
#   PING=30 (WebSocket ping interval, cloud and boards), SOURCES=32 (127.0.0.2..: source addresses)
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${NS:-"10000 50000 100000"}
IDLE=${IDLE:-20}
PING=${PING:-30}
SOURCES=${SOURCES:-32}
cargo build --release -q -p s4t
BIN=$PWD/target/release/s4t
# One descriptor per board in the cloud and in the swarm: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
# A full accept queue drops SYNs; boards then wait for a retransmit before they retry.
sysctl -qw net.core.somaxconn=65535 2>/dev/null || true
sysctl -qw net.ipv4.tcp_max_syn_backlog=65535 2>/dev/null || true
HZ=$(getconf CLK_TCK)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-8s %14s %16s %16s %18s %22s\n' boards "online in (s)" "cloud RSS (MiB)" "per board (KiB)" "idle CPU (% core)" "back after restart (s)"
for N in $NS; do
  if [ "$N" -gt $((FD_LIMIT - 500)) ]; then
    printf '%-8s skipped: the open-files limit is %s here (raise the hard limit: ulimit -Hn)\n' "$N" "$FD_LIMIT"
    continue
  fi
  WORK=$(mktemp -d)
  "$BIN" cloud --data-dir "$WORK/cloud" --api-addr 127.0.0.1:18950 --wamp-addr 127.0.0.1:18951 --tunnel-addr 127.0.0.1:0 --overlay-addr 127.0.0.1:0 \
    --wamp-ping-interval "$PING" >"$WORK/cloud.out" 2>"$WORK/cloud.log" &
  CLOUD=$!
  PIDS+=("$CLOUD")
  for _ in $(seq 100); do grep -q "board WAMP router" "$WORK/cloud.out" 2>/dev/null && break; sleep 0.1; done
  TOKEN=$(cat "$WORK/cloud/admin-token")
  RSS0=$(rss_kib "$CLOUD")
  S4T_LOG=warn "$BIN" swarm --cloud ws://127.0.0.1:18951/ --boards "$N" --code-prefix B- \
    --api http://127.0.0.1:18950 --token "$TOKEN" --source-ips "$SOURCES" --ping-interval "$PING" \
    >"$WORK/swarm.out" 2>"$WORK/swarm.log" &
  SWARM=$!
  PIDS+=("$SWARM")
  ONLINE=""
  for _ in $(seq 3600); do
    ONLINE=$(awk '/all .* boards online after/ {print $(NF-1)}' "$WORK/swarm.out")
    [ -n "$ONLINE" ] && break
    kill -0 "$SWARM" 2>/dev/null || { echo "swarm exited:"; tail -5 "$WORK/swarm.out" "$WORK/swarm.log"; exit 1; }
    sleep 0.5
  done
  [ -n "$ONLINE" ] || { echo "N=$N: not all online after 30 min"; tail -3 "$WORK/swarm.out"; exit 1; }
  sleep 3
  T0=$(cpu_ticks "$CLOUD")
  sleep "$IDLE"
  T1=$(cpu_ticks "$CLOUD")
  RSS1=$(rss_kib "$CLOUD")
  ONLINE_DB=$(curl -s -H "X-Auth-Token: $TOKEN" "http://127.0.0.1:18950/v1/boards?status=online&limit=1000&fields=uuid" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["boards"]))')
  # The cloud killed (SIGKILL) and started again on the same data: every board reconnects by
  # itself (already provisioned: no registration). Timed until the swarm sees all online.
  SEEN=$(grep -c "boards online after" "$WORK/swarm.out")
  kill -9 "$CLOUD"; wait "$CLOUD" 2>/dev/null || true
  RESTART=$(date +%s.%N)
  "$BIN" cloud --data-dir "$WORK/cloud" --api-addr 127.0.0.1:18950 --wamp-addr 127.0.0.1:18951 --tunnel-addr 127.0.0.1:0 --overlay-addr 127.0.0.1:0 \
    --wamp-ping-interval "$PING" >>"$WORK/cloud.out" 2>>"$WORK/cloud.log" &
  CLOUD=$!
  PIDS+=("$CLOUD")
  BACK=""
  for _ in $(seq 7200); do
    if [ "$(grep -c "boards online after" "$WORK/swarm.out")" -gt "$SEEN" ]; then
      BACK=$(echo "$(date +%s.%N) - $RESTART" | bc -l); break
    fi
    sleep 0.25
  done
  printf '%-8s %14s %16.1f %16.1f %18.2f %22.1f   (cloud says online: %s of first 1000 listed)\n' "$N" "$ONLINE" \
    "$(echo "$RSS1/1024" | bc -l)" "$(echo "($RSS1-$RSS0)/$N" | bc -l)" \
    "$(echo "100*($T1-$T0)/$HZ/$IDLE" | bc -l)" "${BACK:-nan}" "$ONLINE_DB"
  kill "$SWARM" "$CLOUD" 2>/dev/null || true
  wait "$SWARM" "$CLOUD" 2>/dev/null || true
  PIDS=()
  rm -rf "$WORK"
done
