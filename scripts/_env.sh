#!/usr/bin/env bash
# Shared set-up for scripts/*.sh: create or reuse a virtual environment and install laser_gs into it.
# Source it: `source scripts/_env.sh`. Reinstalls only when pyproject.toml or setup.py changes.
#   LASER_VENV  virtual environment folder (default: .venv in the repository)
#   PYTHON      interpreter used to create it (default: python3; needs >= 3.10)
set -euo pipefail
LASER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LASER_VENV:-$LASER_ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "laser_gs needs Python >= 3.10")'
  echo "Creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.laser_gs_install"
WANT="$(cat "$LASER_ROOT/pyproject.toml" "$LASER_ROOT/setup.py" | sha256sum | cut -d' ' -f1) $LASER_ROOT"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "Installing laser_gs and its dependencies (torch from PyPI: a few minutes the first time)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$LASER_ROOT[dev]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# Never wait on the network for model weights (there is none in CI).
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
