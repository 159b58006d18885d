#!/usr/bin/env bash
# End-to-end demo on a synthetic scene: generate, inspect, train every backend, evaluate, export, bench.
# Usage: scripts/demo.sh [OUT_DIR]   (default: demo_out/)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT="${1:-$LASER_ROOT/demo_out}"
mkdir -p "$OUT"
echo "== 1. Generate a synthetic labeled scene (3D-OVS layout, with synthetic dense features)"
laser make-scene "$OUT/scene" --force
echo "== 2. Inspect it"
laser inspect "$OUT/scene"
BACKENDS=$(python -c 'from laser_gs.backends import list_backends; print(" ".join(list_backends()))')
# LASER_DEMO_ITERS shortens training (e.g. 60 for a quick look); unset = the full fast preset.
ITERS=()
if [ -n "${LASER_DEMO_ITERS:-}" ]; then ITERS=(--iters "$LASER_DEMO_ITERS"); fi
RUNS=()
for B in $BACKENDS; do
  echo "== 3. Train the $B backend (fast preset; the 2D teacher's scores are printed by eval)"
  rm -rf "$OUT/run_$B"
  laser train --backend "$B" --scene "$OUT/scene" --out "$OUT/run_$B" --preset fast "${ITERS[@]}"
  echo "== 4. Evaluate it (pictures in $OUT/run_$B/eval/)"
  laser eval "$OUT/run_$B" --json "$OUT/run_$B/scores.json"
  echo "== 5. Export a labeled PLY"
  laser export "$OUT/run_$B" --ply "$OUT/run_$B/scene.ply" --color-by-label
  RUNS+=("$OUT/run_$B")
done
echo "== 6. Compare render speed"
laser bench "${RUNS[@]}" --json "$OUT/bench.json"
