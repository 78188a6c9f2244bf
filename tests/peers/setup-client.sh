#!/usr/bin/env bash
# Installs the stock IoTronic CLI (python-iotronicclient 0.4.7 from PyPI) into a venv, for the
# compatibility tests. Prints the path of the `iotronic` executable. Idempotent.
#   VENV (default target/peers/venv-client), PY38 (default: CPython 3.8 from pyenv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-$PWD/target/peers/venv-client}
if [ -x "$VENV/bin/iotronic" ] && "$VENV/bin/iotronic" --version >/dev/null 2>&1; then
  echo "$VENV/bin/iotronic"; exit 0
fi
# The client and its 2019 dependency set (cmd2 0.8, keystoneauth 3.17) need CPython 3.8.
if [ -z "${PY38:-}" ]; then
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  PY38=$(ls -d "$root"/versions/3.8.*/bin/python 2>/dev/null | tail -1 || true)
  [ -n "$PY38" ] || PY38=$(command -v python3.8 || true)
fi
if [ -z "$PY38" ] || [ ! -x "$PY38" ]; then
  echo "no CPython 3.8 found: install it (pyenv install 3.8) or set PY38=/path/to/python3.8" >&2
  exit 1
fi
"$PY38" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q -U "pip<24.1" "setuptools<58" wheel >&2
"$VENV/bin/pip" install -q -c tests/peers/constraints-client.txt python-iotronicclient==0.4.7 >&2
"$VENV/bin/iotronic" --version >/dev/null 2>&1 || { echo "the iotronic CLI does not start" >&2; exit 1; }
echo "$VENV/bin/iotronic"
