#!/bin/bash
# Stop everything start.sh / start-full.sh started, by the pids they recorded: conductor, wamp-agent,
# API, Crossbar, RabbitMQ, epmd, MariaDB (whichever runs). Each was started with setsid, so its pid is
# its process-group id and the whole group is signalled (TERM, KILL after 30 s).
. "$(dirname "$0")/common.sh"
stop_recorded iotronic-conductor iotronic-wamp-agent iotronic-api crossbar rabbitmq epmd mariadb
rm -f "$RUN/uwsgi.sock"
