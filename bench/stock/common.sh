# Shared settings for bench/stock/*.sh (sourced, not run).
STOCK_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STOCK_DIR=${STOCK_DIR:-$HOME/.cache/s4t-stock}
STOCK_API_PORT=${STOCK_API_PORT:-1288}
STOCK_DB_PORT=${STOCK_DB_PORT:-3307}
STOCK_API_PROCS=${STOCK_API_PROCS:-2}
STOCK_API_THREADS=${STOCK_API_THREADS:-1}
# close (default): uWSGI --http-socket, "Connection: close" on every response; right at any concurrency.
# keepalive: --http11-socket; a worker is pinned to one connection, so only for wrk -c <= processes.
# router: uWSGI's HTTP router process (keep-alive) in front of the workers, like Apache + mod_wsgi daemon.
STOCK_HTTP=${STOCK_HTTP:-close}
# Full stack only (setup.sh --full, start-full.sh): RabbitMQ (AMQP + Erlang distribution + epmd, all on
# loopback) and Crossbar (WAMP router, realm s4t).
STOCK_AMQP_PORT=${STOCK_AMQP_PORT:-5672}
STOCK_ERL_DIST_PORT=${STOCK_ERL_DIST_PORT:-25672}
STOCK_EPMD_PORT=${STOCK_EPMD_PORT:-4369}
STOCK_WAMP_PORT=${STOCK_WAMP_PORT:-8181}
VENV=$STOCK_DIR/venv
CROSSBAR_VENV=$STOCK_DIR/venv-crossbar
RABBIT_DIR=$STOCK_DIR/rabbitmq
CROSSBAR_DIR=$STOCK_DIR/crossbar
DATA=$STOCK_DIR/mariadb-data
RUN=$STOCK_DIR/run
LOGS=$STOCK_DIR/logs
DB_SOCK=$RUN/mariadb.sock
IOTRONIC_CONF=$STOCK_DIR/iotronic.conf
export STOCK_DIR STOCK_API_PORT STOCK_DB_PORT STOCK_WAMP_PORT

# start_bg NAME CMD... : start CMD in its own session (pgid == pid) in the background, pid in $RUN/NAME.pid
start_bg() {
  local name=$1; shift
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0
  fi
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  echo "$name started, pid $!, log $LOGS/$name.log"
}

# alive NAME : true if the process recorded for NAME runs
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# wait_until SECONDS NAME CMD... : poll CMD every 0.2 s; fail if NAME's process dies or time runs out
wait_until() {
  local t=$1 name=$2; shift 2
  local i=0
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then echo "$name died; last lines of $LOGS/$name.log:"; tail -20 "$LOGS/$name.log"; return 1; fi
    i=$((i + 1)); [ $i -ge $((t * 5)) ] && { echo "$name not ready after ${t}s (see $LOGS/$name.log)"; return 1; }
    sleep 0.2
  done
}

db() { mariadb --socket="$DB_SOCK" -uroot "$@"; }

# port_open PORT : true if something accepts TCP connections on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_recorded NAME... : stop each recorded process group (TERM, then KILL after 30 s), forget its pid
stop_recorded() {
  local n f p
  for n in "$@"; do
    f=$RUN/$n.pid; [ -f "$f" ] || continue
    p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p"
      for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$p" 2>/dev/null; then kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p"; echo "killed $n (pid $p)"
      else echo "stopped $n (pid $p)"; fi
    fi
    rm -f "$f"
  done
}
