# Sourced by the peer setup scripts: sets PY38 to a CPython 3.8 (from $PY38, pyenv, or PATH), or
# exits with what to do. The stock peers' 2019-2022 dependency pins need it.
if [ -z "${PY38:-}" ]; then
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  PY38=$(ls -d "$root"/versions/3.8.*/bin/python 2>/dev/null | tail -1 || true)
  [ -n "$PY38" ] || PY38=$(command -v python3.8 || true)
fi
if [ -z "$PY38" ] || [ ! -x "$PY38" ]; then
  echo "no CPython 3.8 found: install it (pyenv install 3.8) or set PY38=/path/to/python3.8" >&2
  exit 1
fi
