#!/usr/bin/env bash
# Overlay networks: two boards (each an `s4t agent` in its own network namespace) on one s4t
# network, through the hub of an `s4t cloud` in a third namespace, against the same boards'
# underlay and against the upstream transport (a TAP bridged by socat over one TCP stream).
#   iperf3 TCP throughput board A -> board B (SECS seconds, median of RUNS), and ping RTT:
#     - underlay: A to B's underlay address, through the cloud namespace's bridge;
#     - overlay over UDP: A's TAP to B's TAP through the hub (default MTU 1380, and 8000);
#     - overlay over the WebSocket fallback: the same, UDP to the hub dropped in A (nftables);
#     - socat over TCP: TAPs made by socat in A and B, joined by one TCP connection A <-> B
#       (direct, not even through a relay as upstream's wstun: generous to it).
#   CPU: user+system seconds of the agents, the cloud (or the socats) per Gbit/s carried.
# Needs root, iproute2, iperf3, socat and nftables. Knobs: SECS (5), RUNS (3), KEEP=1 keeps logs.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
RUNS=${RUNS:-3}

cargo build --release -q -p s4t
WORK=$(mktemp -d "${TMPDIR:-/tmp}/s4t-overlay.XXXXXX")
cp target/release/s4t "$WORK/"
BIN=$WORK/s4t
TAG=$(printf '%04x' $((RANDOM % 65536)))
NC=s4tc$TAG NA=s4ta$TAG NB=s4tb$TAG
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
  for n in "$NA" "$NB" "$NC"; do ip netns del "$n" 2>/dev/null; done
  ip link del "h$TAG" 2>/dev/null
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
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
median() { python3 -c 'import sys,statistics; print("%.2f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
cpu_seconds() { # user+system seconds of the given pids
  local total=0 p
  for p in "$@"; do
    total=$(awk -v t="$total" -v hz="$(getconf CLK_TCK)" '{print t + ($14 + $15) / hz}' "/proc/$p/stat")
  done
  echo "$total"
}

# --- topology: cloud namespace with a bridge; each board namespace joined to it by a veth
ip netns add "$NC"; ip netns add "$NA"; ip netns add "$NB"
for n in "$NC" "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NC" link add br0 type bridge
ip -n "$NC" addr add 10.60.0.1/24 dev br0
ip -n "$NC" link set br0 up
ip link add "h$TAG" type veth peer name api
ip link set api netns "$NC"
ip addr add 10.61.0.1/30 dev "h$TAG"; ip link set "h$TAG" up
ip -n "$NC" addr add 10.61.0.2/30 dev api; ip -n "$NC" link set api up
i=11
for n in "$NA" "$NB"; do
  ip -n "$NC" link add "u$i" type veth peer name u0 netns "$n"
  ip -n "$NC" link set "u$i" master br0 up
  ip -n "$n" addr add "10.60.0.$i/24" dev u0
  ip -n "$n" link set u0 up
  i=$((i + 1))
done

# --- the cloud and the two boards
spawn cloud ip netns exec "$NC" "$BIN" cloud --data-dir "$WORK/cloud" --api-addr 10.61.0.2:8812 \
  --wamp-addr 10.60.0.1:8181 --tunnel-addr 10.60.0.1:8080 --overlay-addr 10.60.0.1:8814
CLOUD=$LAST
for i in $(seq 1 200); do [ -s "$WORK/cloud/admin-token" ] && grep -q "overlay network hub" "$WORK/cloud.log" && break; sleep 0.05; done
export S4T_URL=http://10.61.0.2:8812 S4T_TOKEN
S4T_TOKEN=$(cat "$WORK/cloud/admin-token")
"$BIN" board create --name a --code BENCH-A --lat 0 --lon 0 >/dev/null
"$BIN" board create --name b --code BENCH-B --lat 0 --lon 0 >/dev/null
spawn agent-a ip netns exec "$NA" "$BIN" agent --data-dir "$WORK/a" --code BENCH-A --cloud ws://10.60.0.1:8181/
spawn agent-b ip netns exec "$NB" "$BIN" agent --data-dir "$WORK/b" --code BENCH-B --cloud ws://10.60.0.1:8181/
for b in a b; do
  for i in $(seq 1 200); do
    [ "$("$BIN" -o json board show "$b" | json '["status"]')" = online ] && break; sleep 0.1
  done
done
"$BIN" network create --name bench --cidr 10.70.0.0/24 >/dev/null
PA=$("$BIN" -o json port create --board a --network bench)
PB=$("$BIN" -o json port create --board b --network bench)
VA=$(echo "$PA" | json '["VIF_name"]'); IPB=$(echo "$PB" | json '["ip"]')
PORT_A=$(echo "$PA" | json '["uuid"]')
VB=$(echo "$PB" | json '["VIF_name"]')
for i in $(seq 1 100); do ip netns exec "$NA" ping -c1 -W1 -q "$IPB" >/dev/null 2>&1 && break; sleep 0.2; done
pid_of() { pgrep -f -- "$1" | head -1; }
AGENT_A=$(pid_of "$WORK/a"); AGENT_B=$(pid_of "$WORK/b"); CLOUD_PID=$(pid_of "$WORK/cloud")

if [ "${PAUSE:-0}" = 1 ]; then # for a look by hand: the namespaces stay for 10 minutes
  echo "namespaces: cloud $NC, boards $NA ($VA) and $NB ($VB, $IPB); S4T_TOKEN=$S4T_TOKEN"; sleep 600
fi
ping_rtt() { # median RTT in ms of 20 pings from A to $1
  ip netns exec "$NA" ping -c 20 -i 0.05 -q "$1" | awk -F'/' '/rtt/ {print $5}'
}
iperf_runs() { # $1: server address in B, then the pids whose CPU counts; the median Gbit/s
  # (the CPU seconds per Gbit of each run go to $WORK/cpu)
  local addr=$1; shift
  local pids=("$@") runs=() before after gbit
  local server
  for r in $(seq 1 "$RUNS"); do
    spawn iperf-server ip netns exec "$NB" iperf3 -s -B "$addr" -1
    server=$LAST
    sleep 0.3
    before=$(cpu_seconds "${pids[@]}")
    gbit=$(ip netns exec "$NA" iperf3 -c "$addr" -t "$SECS" -J | json '["end"]["sum_received"]["bits_per_second"]/1e9')
    after=$(cpu_seconds "${pids[@]}")
    runs+=("$gbit")
    python3 -c "print(($after - $before) / ($gbit * $SECS))" >> "$WORK/cpu"
    wait "$server" 2>/dev/null || true
  done
  median "${runs[@]}"
}

echo "== overlay bench: $RUNS runs of $SECS s, 2 cores, $(date -u +%FT%TZ)"
rm -f "$WORK/cpu"
U=$(iperf_runs 10.60.0.12); U_RTT=$(ping_rtt 10.60.0.12)
echo "underlay            : $U Gbit/s, ping $U_RTT ms"
rm -f "$WORK/cpu"
if [ "${PROFILE:-0}" = 1 ]; then # a system-wide profile of one overlay run, kept in $WORK
  perf record -a -g -o "$WORK/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
  PERF=$!
fi
O=$(iperf_runs "$IPB" "$AGENT_A" "$AGENT_B" "$CLOUD_PID"); O_RTT=$(ping_rtt "$IPB")
[ -n "${PERF:-}" ] && wait "$PERF"
if [ "${DIAG:-0}" = 1 ]; then
  for n in "$NC" "$NA" "$NB"; do
    echo "  $n: $(ip netns exec "$n" nstat -az UdpRcvbufErrors UdpSndbufErrors UdpInErrors TcpRetransSegs 2>/dev/null | awk 'NR>1 {printf "%s=%s ", $1, $2}')"
  done
  for v in "$VA" "$VB"; do ip -n "$([ "$v" = "$VA" ] && echo "$NA" || echo "$NB")" -s link show dev "$v" | sed -n '4p;6p' | tr -s ' ' | sed "s/^/  $v /"; done
fi
O_CPU=$(median $(cat "$WORK/cpu"))
echo "overlay (UDP)       : $O Gbit/s, ping $O_RTT ms, $O_CPU CPU-s per Gbit (agents + cloud)"

# The same path with jumbo overlay frames (a network of MTU 8000): the underlay fragments the
# sealed datagrams, so there are fewer packets to seal, switch and move per byte.
"$BIN" network create --name jumbo --cidr 10.71.0.0/24 --mtu 8000 >/dev/null
"$BIN" port create --board a --network jumbo >/dev/null
JB=$("$BIN" -o json port create --board b --network jumbo | json '["ip"]')
for i in $(seq 1 100); do ip netns exec "$NA" ping -c1 -W1 -q "$JB" >/dev/null 2>&1 && break; sleep 0.2; done
rm -f "$WORK/cpu"
J=$(iperf_runs "$JB" "$AGENT_A" "$AGENT_B" "$CLOUD_PID"); J_RTT=$(ping_rtt "$JB")
J_CPU=$(median $(cat "$WORK/cpu"))
echo "overlay (UDP, MTU 8000): $J Gbit/s, ping $J_RTT ms, $J_CPU CPU-s per Gbit (agents + cloud)"

# WebSocket fallback: drop A's UDP to the hub, wait for the tunnel to move.
ip netns exec "$NA" nft add table inet s4tbench
ip netns exec "$NA" nft add chain inet s4tbench out '{ type filter hook output priority 0; }'
ip netns exec "$NA" nft add rule inet s4tbench out udp dport 8814 drop
for i in $(seq 1 300); do
  [ "$("$BIN" -o json port show "$PORT_A" | json '["status"].get("transport")')" = websocket ] && break; sleep 0.2
done
for i in $(seq 1 100); do ip netns exec "$NA" ping -c1 -W1 -q "$IPB" >/dev/null 2>&1 && break; sleep 0.2; done
rm -f "$WORK/cpu"
W=$(iperf_runs "$IPB" "$AGENT_A" "$AGENT_B" "$CLOUD_PID"); W_RTT=$(ping_rtt "$IPB")
W_CPU=$(median $(cat "$WORK/cpu"))
echo "overlay (WebSocket) : $W Gbit/s, ping $W_RTT ms, $W_CPU CPU-s per Gbit (agents + cloud)"
ip netns exec "$NA" nft delete table inet s4tbench

# socat: a TAP in each board joined by one TCP stream (MTU as the overlay's).
MTU=$(ip -n "$NA" -j link show dev "$VA" | json '[0]["mtu"]')
spawn socat-b ip netns exec "$NB" socat TCP-LISTEN:9000,reuseaddr "TUN:10.80.0.2/24,tun-type=tap,iff-up,tun-name=sb$TAG"
sleep 0.5
spawn socat-a ip netns exec "$NA" socat TCP:10.60.0.12:9000 "TUN:10.80.0.1/24,tun-type=tap,iff-up,tun-name=sa$TAG"
sleep 0.5
ip -n "$NA" link set "sa$TAG" mtu "$MTU"; ip -n "$NB" link set "sb$TAG" mtu "$MTU"
for i in $(seq 1 100); do ip netns exec "$NA" ping -c1 -W1 -q 10.80.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
SOCAT_PIDS=($(pgrep -f "socat TCP" | tr '\n' ' '))
rm -f "$WORK/cpu"
S=$(iperf_runs 10.80.0.2 "${SOCAT_PIDS[@]}"); S_RTT=$(ping_rtt 10.80.0.2)
S_CPU=$(median $(cat "$WORK/cpu"))
echo "socat TAP over TCP  : $S Gbit/s, ping $S_RTT ms, $S_CPU CPU-s per Gbit (socats)"
echo "raw UDP A -> B       : $(ip netns exec "$NB" iperf3 -s -1 >/dev/null 2>&1 & sleep 0.5; ip netns exec "$NA" iperf3 -c 10.60.0.12 -u -b 0 -l 1409 -t "$SECS" -J | json '["end"]["sum"]["bits_per_second"]/1e9' | xargs printf '%.2f') Gbit/s sent in 1,409-byte datagrams (one underlay hop; the overlay makes two)"
echo "ratios              : overlay/underlay $(python3 -c "print('%.2f' % ($O/$U))"), overlay/socat $(python3 -c "print('%.2f' % ($O/$S))"), websocket/socat $(python3 -c "print('%.2f' % ($W/$S))")"
echo "hub counters        : $(curl -s -H "X-Auth-Token: $S4T_TOKEN" "$S4T_URL/v1/overlay" | json '["counters"]')"
