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
#
# Python: LASER_PYTHON if set; else a python3 that already imports torch, gsplat and open_clip (a GPU
# machine's system Python with the wheels the devices' README describes on PYTHONPATH); else the project's
# virtual environment (scripts/_env.sh creates or reuses it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=()
if [ "${1:-}" = "--dry-run" ]; then DRY=(--dry-run); shift; fi
OUT="$(mkdir -p "${1:-$ROOT/gpu_check_out}" && cd "${1:-$ROOT/gpu_check_out}" && pwd)"
[ $# -gt 0 ] && shift
EXTRA=("$@")   # e.g. --train-steps 1500 --gaussians 300000
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"                      # parallel compile of gsplat's CUDA code
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-}"     # empty: torch picks the GPU's own arch
[ -z "$TORCH_CUDA_ARCH_LIST" ] && unset TORCH_CUDA_ARCH_LIST
cd "$ROOT"
if [ -n "${LASER_PYTHON:-}" ]; then
  PY="$LASER_PYTHON"
elif python3 -c 'import torch, gsplat, open_clip, plyfile' 2>/dev/null; then
  PY=python3
  # no pip install there: the repository itself is the package, and cli/ is importable as laser_gs_cli
  SHIM="$OUT/.pyshim"; mkdir -p "$SHIM"; ln -sfn "$ROOT/cli" "$SHIM/laser_gs_cli"
  export PYTHONPATH="$ROOT:$SHIM:${PYTHONPATH:-}"
else
  source "$ROOT/scripts/_env.sh"
  PY=python
fi
echo "[gpu_check] python: $($PY -c 'import sys, torch; print(sys.executable, "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
T0=$(date +%s)
TOTAL="${GPU_CHECK_TOTAL_S:-450}"
# 0. gsplat's CUDA extension (a JIT build on first import of its kernels): alone, timed, logged
if [ ${#DRY[@]} -eq 0 ]; then
  set +e
  B0=$(date +%s)
  VERBOSE=1 timeout "${GSPLAT_BUILD_TIMEOUT_S:-360}" $PY -c 'from gsplat.cuda._backend import _C; import sys
sys.exit(0 if _C is not None else "gsplat: no CUDA extension after the build")' >"$OUT/gsplat_build.log" 2>&1
  echo "[gpu_check] gsplat CUDA build exit code $? after $(( $(date +%s) - B0 )) s (log: $OUT/gsplat_build.log)"
  tail -n 5 "$OUT/gsplat_build.log"
  set -e
fi
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
