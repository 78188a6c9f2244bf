#!/bin/bash
# Stop what start.sh started (uWSGI API, then MariaDB), by the pids it recorded. Each was started
# with setsid, so its pid is its process-group id and the whole group is signalled.
. "$(dirname "$0")/common.sh"
for n in iotronic-api mariadb; do
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
rm -f "$RUN/uwsgi.sock"
