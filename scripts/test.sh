#!/usr/bin/env bash
# Lint with ruff, then run the test suite (sets up .venv on first use). Extra arguments go to pytest.
# The viewer's browser tests need Debian's chromium: installed here when run as root with apt-get,
# otherwise they are skipped with a note (under CI=true a skip is a failure).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$LASER_ROOT"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the viewer's browser tests" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Note: no chromium here, so the viewer's browser tests are skipped; to run them: apt-get install chromium" >&2
  fi
fi
echo "Linting (ruff; settings in pyproject.toml)" >&2
python -m ruff check "$LASER_ROOT"
exec python -m pytest -q "$@"
