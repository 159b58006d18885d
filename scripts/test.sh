#!/usr/bin/env bash
# Run the test suite (sets up .venv on first use). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$LASER_ROOT"
exec python -m pytest -q "$@"
