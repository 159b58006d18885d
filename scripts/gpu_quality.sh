#!/usr/bin/env bash
# The quality benchmark (scripts/bench_quality.py) on a GPU machine: many gsplat runs at once on one GPU,
# without Ray, each in its own process; the fusion bounds and tables are made afterwards on any machine
# (`python scripts/bench_quality.py --report OUT/quality.json --out DIR`).
#
#   scripts/gpu_quality.sh OUT [bench_quality.py options...]
#   e.g. scripts/gpu_quality.sh "$OUT/q" --scenes 8 --orbit --reruns 2 --backends gsplat \
#          --variant gsplat-nosmooth:gsplat.smooth_iters=0
#
# QUALITY_TIME_S (default 400) bounds the runs; whatever finished comes back: OUT/quality.json when all did,
# and always OUT/runs/<scene>__<run>__{eval,train_log}.json (small files; no checkpoints).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=()
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
source "$ROOT/scripts/_gpu_env.sh"
WORK="${QUALITY_WORK:-/tmp/laser_quality}"
CORES=$(nproc)
set +e
timeout "${QUALITY_TIME_S:-400}" $PY scripts/bench_quality.py --out "$WORK" --no-ray --no-bound \
  --parallel "${QUALITY_PARALLEL:-$CORES}" --json "$OUT/quality.json" "$@" 2>&1 | tail -n 60
RC=${PIPESTATUS[0]}
set -e
echo "[gpu_quality] bench_quality exit code $RC after $(( $(date +%s) - T0 )) s"
# flat names (SCENE__RUN__FILE): the device tool returns no deeply nested folders
( cd "$WORK" && find . -path ./scenes -prune -o \( -name eval.json -o -name train_log.json \) -print \
    | while read -r f; do f="${f#./}"; mkdir -p "$OUT/runs"; cp "$f" "$OUT/runs/${f//\//__}"; done )
exit "$RC"
