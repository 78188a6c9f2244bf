#!/usr/bin/env bash
# Installs the stock board agent (iotronic-lightningrod 0.5.0 from PyPI) into a venv, for the
# interop tests. Prints the venv's python. Idempotent.
#   VENV (default target/peers/venv-lr), PY38 (default: CPython 3.8 from pyenv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-$PWD/target/peers/venv-lr}
probe() { "$VENV/bin/python" -c 'import iotronic_lightningrod.lightningrod, flask' >/dev/null 2>&1; }
if [ -x "$VENV/bin/python" ] && probe; then
  echo "$VENV/bin/python"; exit 0
fi
# Lightning-rod 0.5.0 declares CPython 3.6-3.8, and its pinned dependencies need it.
. tests/peers/python38.sh
"$PY38" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q -U "pip<24.1" "setuptools<70" wheel >&2
"$VENV/bin/pip" install -q -c tests/peers/constraints-lr.txt iotronic-lightningrod==0.5.0 "autobahn[serialization]" >&2
probe || { echo "iotronic-lightningrod does not import" >&2; exit 1; }
echo "$VENV/bin/python"
