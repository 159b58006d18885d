#!/usr/bin/env bash
# End-to-end demo on a synthetic scene: generate, inspect, train every backend, evaluate, export, bench.
# Usage: scripts/demo.sh [--quick] [OUT_DIR]   (default: demo_out/)
#   --quick   the `quick` preset, both backends trained side by side (one thread each): about 10 minutes
#             on a 2-core CPU; without it the `fast` preset, one backend after the other (about 30 minutes).
set -euo pipefail
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT="${1:-$LASER_ROOT/demo_out}"
mkdir -p "$OUT"
T0=$(date +%s)
echo "== 1. Generate a synthetic labeled scene (3D-OVS layout, with synthetic dense features)"
laser make-scene "$OUT/scene" --force
echo "== 2. Inspect it"
laser inspect "$OUT/scene"
BACKENDS=$(python -c 'from laser_gs.backends import list_backends; print(" ".join(list_backends()))')
RUNS=()
if [ "$QUICK" = 1 ]; then
  CORES=$(python -c 'import os; print(len(os.sched_getaffinity(0)))')
  N=$(echo $BACKENDS | wc -w)
  THREADS=$(( CORES / N > 0 ? CORES / N : 1 ))
  echo "== 3. Train the backends side by side (quick preset, $THREADS thread(s) each; logs in $OUT/run_*.log)"
  PIDS=()
  for B in $BACKENDS; do
    rm -rf "$OUT/run_$B"
    laser --threads "$THREADS" train --backend "$B" --scene "$OUT/scene" --out "$OUT/run_$B" --preset quick \
      > "$OUT/run_$B.log" 2>&1 &
    PIDS+=($!)
  done
  for P in "${PIDS[@]}"; do wait "$P"; done
  for B in $BACKENDS; do tail -n 1 "$OUT/run_$B.log"; done
else
  for B in $BACKENDS; do
    echo "== 3. Train the $B backend (fast preset)"
    rm -rf "$OUT/run_$B"
    laser train --backend "$B" --scene "$OUT/scene" --out "$OUT/run_$B" --preset fast
  done
fi
for B in $BACKENDS; do
  echo "== 4. Evaluate $B against the 2D teacher (pictures and report.html in $OUT/run_$B/eval/)"
  laser eval "$OUT/run_$B" --json "$OUT/run_$B/scores.json"
  echo "== 5. Export a labeled PLY"
  laser export "$OUT/run_$B" --ply "$OUT/run_$B/scene.ply" --color-by-label
  RUNS+=("$OUT/run_$B")
done
echo "== 6. Compare render speed"
laser bench "${RUNS[@]}" --json "$OUT/bench.json" --frames "$([ "$QUICK" = 1 ] && echo 2 || echo 3)"
echo "== Done in $(( $(date +%s) - T0 )) s. Look at the scene in the browser: laser view $OUT/run_gsplat"
