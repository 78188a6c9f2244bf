#!/bin/bash
# Start the FULL stock Stack4Things cloud on loopback, in dependency order:
#   RabbitMQ (Debian, oslo.messaging transport; epmd, Erlang distribution and AMQP on 127.0.0.1)
#   Crossbar 26.10.1 (realm s4t, anonymous role with every permission, ws://127.0.0.1:$STOCK_WAMP_PORT/)
#   MariaDB + schema + IoTronic API (start.sh, on a FRESH iotronic database unless STOCK_FRESH_DB=0)
#   iotronic-wamp-agent (registration agent: stack4things.register, AMQP topic s4t)
#   iotronic-conductor (AMQP topic iotronic.conductor_manager)
# Returns once each AMQP server has a consumer on its queue, so POST /v1/boards and board actions work.
# Board agents (stock Lightning-rod or `s4t agent`) connect to ws://127.0.0.1:$STOCK_WAMP_PORT/ with a
# board code created through the API. Run `setup.sh --full` first; stop.sh stops everything.
# Why a fresh database: the conductor needs exactly one online registration agent in `wampagents`,
# and populate.py writes a fake one ('stock-agent'), which would make the conductor fail.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -x "$CROSSBAR_VENV/bin/crossbar" ] && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] \
  && "$VENV/bin/python" -c 'import cbor2, ujson, ubjson' 2>/dev/null \
  || { echo "run $(dirname "$0")/setup.sh --full first"; exit 1; }
mkdir -p "$RUN" "$LOGS"

# start from nothing: neither a half-started stack of ours nor a foreign listener on one of our ports
for n in mariadb iotronic-api epmd rabbitmq crossbar iotronic-wamp-agent iotronic-conductor; do
  if alive "$n"; then echo "$n already runs (pid $(cat "$RUN/$n.pid")): run $(dirname "$0")/stop.sh first"; exit 1; fi
done
for pair in "rabbitmq $STOCK_AMQP_PORT" "rabbitmq $STOCK_ERL_DIST_PORT" "epmd $STOCK_EPMD_PORT" "crossbar $STOCK_WAMP_PORT" \
            "iotronic-api $STOCK_API_PORT" "mariadb $STOCK_DB_PORT"; do
  set -- $pair
  if port_open "$2"; then echo "127.0.0.1:$2 is already in use by another process (needed by $1)"; exit 1; fi
done

# ---- RabbitMQ, started by hand with all state under $RABBIT_DIR (its default user iotronic/iotronic
# is created on first boot of that state directory and gets every permission on vhost /).
mkdir -p "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log" "$RABBIT_DIR/home"
cat >"$RABBIT_DIR/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$STOCK_AMQP_PORT
default_user = iotronic
default_pass = iotronic
loopback_users = none
log.console = true
log.console.level = warning
log.file = false
CONF
echo "[]." >"$RABBIT_DIR/enabled_plugins"
rabbit_env=(env HOME="$RABBIT_DIR/home"
  RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$STOCK_AMQP_PORT"
  RABBITMQ_DIST_PORT="$STOCK_ERL_DIST_PORT" RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq"
  RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia" RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
  RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins" RABBITMQ_PID_FILE="$RABBIT_DIR/rabbit.pid"
  ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$STOCK_EPMD_PORT"
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
# epmd first and in the foreground (no -daemon), so that it stays in a process group we recorded
start_bg epmd "${rabbit_env[@]}" /usr/bin/epmd -address 127.0.0.1 -port "$STOCK_EPMD_PORT"
wait_until 10 epmd port_open "$STOCK_EPMD_PORT"
start_bg rabbitmq "${rabbit_env[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server

# ---- Crossbar (config regenerated on every start)
mkdir -p "$CROSSBAR_DIR"
cat >"$CROSSBAR_DIR/config.json" <<JSON
{
  "version": 2,
  "controller": {},
  "workers": [{
    "type": "router",
    "realms": [{
      "name": "s4t",
      "roles": [{
        "name": "anonymous",
        "permissions": [{
          "uri": "", "match": "prefix",
          "allow": {"call": true, "register": true, "publish": true, "subscribe": true},
          "disclose": {"caller": false, "publisher": false},
          "cache": true
        }]
      }]
    }],
    "transports": [{
      "type": "websocket",
      "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $STOCK_WAMP_PORT},
      "options": {
        "enable_webstatus": false,
        "max_frame_size": 1048576, "max_message_size": 1048576, "auto_fragment_size": 65536,
        "fail_by_drop": true, "open_handshake_timeout": 2500, "close_handshake_timeout": 1000,
        "auto_ping_interval": 50000, "auto_ping_timeout": 10000, "auto_ping_size": 12
      }
    }]
  }]
}
JSON
start_bg crossbar "$CROSSBAR_VENV/bin/crossbar" start --cbdir "$CROSSBAR_DIR" --loglevel "${STOCK_CROSSBAR_LOGLEVEL:-warn}"

# ---- MariaDB + schema + API (RabbitMQ and Crossbar boot meanwhile)
STOCK_FRESH_DB=${STOCK_FRESH_DB:-1} "$STOCK_HERE/start.sh"

wait_until 120 rabbitmq port_open "$STOCK_AMQP_PORT"
echo "rabbitmq ready on 127.0.0.1:$STOCK_AMQP_PORT (user iotronic/iotronic)"
wait_until 90 crossbar port_open "$STOCK_WAMP_PORT"
echo "crossbar ready on ws://127.0.0.1:$STOCK_WAMP_PORT/ (realm s4t)"

# amqp_consumers QUEUE : true if QUEUE exists and has a consumer (passive declare, with the venv's kombu)
amqp_consumers() {
  "$VENV/bin/python" - "$1" <<PY
import sys, kombu
with kombu.Connection("amqp://iotronic:iotronic@127.0.0.1:$STOCK_AMQP_PORT//", connect_timeout=2) as c:
    ok = c.default_channel.queue_declare(queue=sys.argv[1], passive=True)
sys.exit(0 if ok.consumer_count > 0 else 1)
PY
}
log_has() { grep -q "$2" "$LOGS/$1.log"; }

# ---- wamp-agent, then conductor (it waits for an online registration agent in the DB)
start_bg iotronic-wamp-agent "$VENV/bin/iotronic-wamp-agent" --config-file "$IOTRONIC_CONF"
wait_until 60 iotronic-wamp-agent log_has iotronic-wamp-agent "WAMP session ready"
wait_until 30 iotronic-wamp-agent amqp_consumers s4t
echo "iotronic-wamp-agent ready (registration agent, host $(hostname))"
start_bg iotronic-conductor "$VENV/bin/iotronic-conductor" --config-file "$IOTRONIC_CONF"
wait_until 60 iotronic-conductor log_has iotronic-conductor "Found registration agent"
wait_until 30 iotronic-conductor amqp_consumers iotronic.conductor_manager
echo "iotronic-conductor ready"
echo "full stock stack ready: API http://127.0.0.1:$STOCK_API_PORT/v1 (send 'X-Roles: admin'), boards connect to ws://127.0.0.1:$STOCK_WAMP_PORT/ realm s4t"
