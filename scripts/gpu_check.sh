#!/usr/bin/env bash
# One prepared GPU check: the CUDA-marked tests, both backends trained with the `default` (paper) preset,
# `laser bench` at the 3D-OVS evaluation resolution and 1080p on a real scene's Gaussian count, the lift
# time; one JSON and one markdown table in OUT (see scripts/gpu_check.py).
#
#   scripts/gpu_check.sh [--dry-run] [OUT [gpu_check.py options...]]   (default OUT: gpu_check_out/)
#
# --dry-run runs the same steps on the CPU at tiny sizes (CI runs it). On a GPU machine the whole check
# is sized for about 8 minutes (GPU_CHECK_TOTAL_S, default 450 s), gsplat's CUDA build included: it is
# built first, on its own, with its log in OUT/gsplat_build.log (a failed build is then plain to see).
# Python and the build: scripts/_gpu_env.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=()
if [ "${1:-}" = "--dry-run" ]; then DRY=(--dry-run); shift; fi
OUT="$(mkdir -p "${1:-$ROOT/gpu_check_out}" && cd "${1:-$ROOT/gpu_check_out}" && pwd)"
[ $# -gt 0 ] && shift
EXTRA=("$@")   # e.g. --train-steps 1500 --gaussians 300000
source "$ROOT/scripts/_gpu_env.sh"
# 1. the CUDA-marked tests (skipped, not failed, on a machine without CUDA); their counts go into the JSON
set +e
$PY -m pytest -q -p no:cacheprovider -m cuda tests --junitxml "$OUT/cuda_tests.xml" 2>&1 | tee "$OUT/cuda_tests.log"
TESTS_RC=${PIPESTATUS[0]}
set -e
echo "[gpu_check] CUDA tests exit code $TESTS_RC after $(( $(date +%s) - T0 )) s"
# 2-4. training, bench, lift, the JSON and the table (budget: what is left of ~8 minutes)
LEFT=$(( TOTAL - ($(date +%s) - T0) )); [ "$LEFT" -lt 120 ] && LEFT=120
$PY scripts/gpu_check.py --out "$OUT" --budget-s "$LEFT" "${DRY[@]}" "${EXTRA[@]}"
echo "[gpu_check] done in $(( $(date +%s) - T0 )) s: $OUT/gpu_check.json, $OUT/gpu_check.md"
exit "$TESTS_RC"
