#!/usr/bin/env bash
# Installs stock autobahn-python 21.3.1 (the Lightning-rod 0.5.0 era) with msgpack into a venv
# for the interop test, and prints the venv's python. Idempotent.
#   VENV (default target/peers/venv-autobahn), PY38 (default: CPython 3.8 from pyenv)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
VENV=${VENV:-$PWD/target/peers/venv-autobahn}
if "$VENV/bin/python" -c "import autobahn, msgpack" >/dev/null 2>&1; then
  echo "$VENV/bin/python"; exit 0
fi
if [ -z "${PY38:-}" ]; then
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  PY38=$(ls -d "$root"/versions/3.8.*/bin/python 2>/dev/null | tail -1 || true)
  [ -n "$PY38" ] || PY38=$(command -v python3.8 || command -v python3 || true)
fi
"$PY38" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q "autobahn==21.3.1" "msgpack<1.2" >&2
echo "$VENV/bin/python"
