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
. tests/peers/python38.sh
"$PY38" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q -U "pip<24.1" "setuptools<58" wheel >&2
"$VENV/bin/pip" install -q -c tests/peers/constraints-client.txt python-iotronicclient==0.4.7 >&2
"$VENV/bin/iotronic" --version >/dev/null 2>&1 || { echo "the iotronic CLI does not start" >&2; exit 1; }
echo "$VENV/bin/iotronic"
