#!/bin/bash
# Install the STOCK IoTronic REST API (Python, iotronic==0.4.17 from PyPI) for side-by-side benchmarks.
# Idempotent. Needs root for apt (mariadb-server, wrk) and a CPython 3.8 (pyenv's, or PY38=/path/to/python3.8).
# State: ${STOCK_DIR:-$HOME/.cache/s4t-stock} (venv, DB data, logs, pids).
set -euo pipefail
. "$(dirname "$0")/common.sh"
mkdir -p "$STOCK_DIR"

if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null || ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
  echo "== apt: mariadb-server wrk"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mariadb-server mariadb-client wrk curl
fi

# iotronic 0.4.17 declares Python 3.6-3.8 and its 2021-era dependencies (eventlet 0.32, WSME, SQLAlchemy 1.3)
# do not run on newer CPython, so a 3.8 interpreter is required.
if [ -z "${PY38:-}" ]; then
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  PY38=$(ls -d "$root"/versions/3.8.*/bin/python3.8 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$PY38" ] || PY38=$(command -v python3.8 || true)
fi
[ -n "${PY38:-}" ] && [ -x "$PY38" ] || { echo "no CPython 3.8 found: install one (pyenv install 3.8) or set PY38=/path/to/python3.8"; exit 1; }
echo "== CPython: $PY38 ($("$PY38" --version 2>&1))"

if [ ! -x "$VENV/bin/pip" ]; then
  "$PY38" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -U "pip<24.1" "setuptools<70" wheel
echo "== pip: iotronic==0.4.17 uwsgi (constraints-iotronic.txt)"
"$VENV/bin/pip" install -q -c "$STOCK_HERE/constraints-iotronic.txt" iotronic==0.4.17 uwsgi
"$VENV/bin/pip" check >/dev/null 2>&1 && echo "pip check: ok" || echo "pip check: reports conflicts (see '$VENV/bin/pip check')"
ls "$VENV"/lib/python3*/site-packages/iotronic/wsgi/app.wsgi >/dev/null
echo "setup done: $STOCK_DIR"
