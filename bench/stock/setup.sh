#!/bin/bash
# Install the STOCK IoTronic (Python, iotronic==0.4.17 from PyPI) for side-by-side benchmarks. Idempotent.
#   setup.sh          the REST API only: Debian mariadb-server/wrk/curl, CPython 3.8 venv with
#                     iotronic==0.4.17 + uWSGI (start.sh)
#   setup.sh --full   also what start-full.sh needs: Debian rabbitmq-server, autobahn[serialization] in
#                     the IoTronic venv (wamp-agent, conductor), and a CPython 3.11 venv with
#                     crossbar==26.10.1 (constraints-crossbar.txt)
# Needs root for apt, a CPython 3.8 (pyenv's, or PY38=/path/to/python3.8) and, with --full, a
# CPython 3.11 (pyenv's, or PY311=/path/to/python3.11).
# State: ${STOCK_DIR:-$HOME/.cache/s4t-stock} (venvs, DB data, logs, pids).
set -euo pipefail
. "$(dirname "$0")/common.sh"
FULL=0
case "${1:-}" in
  --full) FULL=1 ;;
  "") ;;
  *) echo "usage: $0 [--full]"; exit 2 ;;
esac
mkdir -p "$STOCK_DIR"

pkgs=()
command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null || pkgs+=(mariadb-server mariadb-client)
command -v wrk >/dev/null || pkgs+=(wrk)
command -v curl >/dev/null || pkgs+=(curl)
[ $FULL = 0 ] || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || pkgs+=(rabbitmq-server)
if [ ${#pkgs[@]} -gt 0 ]; then
  # Debian's postinst would start RabbitMQ as a system service on every interface; a policy-rc.d
  # that denies service starts (as container images have) prevents that. start-full.sh runs it by hand.
  echo "== apt: ${pkgs[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi

# pyenv_python MINOR : newest pyenv CPython 3.MINOR, else python3.MINOR on PATH
pyenv_python() {
  local root p
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  p=$(ls -d "$root"/versions/3."$1".*/bin/python3."$1" 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$p" ] || p=$(command -v "python3.$1" || true)
  echo "$p"
}

# iotronic 0.4.17 declares Python 3.6-3.8 and its 2021-era dependencies (eventlet 0.32, WSME, SQLAlchemy 1.3)
# do not run on newer CPython, so a 3.8 interpreter is required.
PY38=${PY38:-$(pyenv_python 8)}
[ -n "${PY38:-}" ] && [ -x "$PY38" ] || { echo "no CPython 3.8 found: install one (pyenv install 3.8) or set PY38=/path/to/python3.8"; exit 1; }
echo "== CPython: $PY38 ($("$PY38" --version 2>&1))"

if [ ! -x "$VENV/bin/pip" ]; then
  "$PY38" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -U "pip<24.1" "setuptools<70" wheel
extra=()
[ $FULL = 1 ] && extra=("autobahn[serialization]")
echo "== pip: iotronic==0.4.17 uwsgi ${extra[*]} (constraints-iotronic.txt)"
"$VENV/bin/pip" install -q -c "$STOCK_HERE/constraints-iotronic.txt" iotronic==0.4.17 uwsgi "${extra[@]}"
"$VENV/bin/pip" check >/dev/null 2>&1 && echo "pip check: ok" || echo "pip check: reports conflicts (see '$VENV/bin/pip check')"
ls "$VENV"/lib/python3*/site-packages/iotronic/wsgi/app.wsgi >/dev/null

if [ $FULL = 1 ]; then
  # Crossbar 26 needs a current CPython (3.11 here); it runs in a venv of its own.
  PY311=${PY311:-$(pyenv_python 11)}
  [ -n "${PY311:-}" ] && [ -x "$PY311" ] || { echo "no CPython 3.11 found: install one (pyenv install 3.11) or set PY311=/path/to/python3.11"; exit 1; }
  echo "== CPython: $PY311 ($("$PY311" --version 2>&1))"
  [ -x "$CROSSBAR_VENV/bin/pip" ] || "$PY311" -m venv "$CROSSBAR_VENV"
  "$CROSSBAR_VENV/bin/pip" install -q -U pip setuptools wheel
  echo "== pip: crossbar==26.10.1 (constraints-crossbar.txt)"
  "$CROSSBAR_VENV/bin/pip" install -q -c "$STOCK_HERE/constraints-crossbar.txt" crossbar==26.10.1
  "$CROSSBAR_VENV/bin/crossbar" version >/dev/null 2>&1 || { echo "crossbar does not start: $CROSSBAR_VENV/bin/crossbar version"; exit 1; }
  "$CROSSBAR_VENV/bin/pip" check >/dev/null 2>&1 && echo "crossbar pip check: ok" || echo "crossbar pip check: reports conflicts"
fi
echo "setup done: $STOCK_DIR"
