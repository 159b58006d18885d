# Sourced by the GPU scripts (gpu_check.sh, gpu_quality.sh) with ROOT, OUT and DRY set: picks the Python
# (PY) and, on a GPU, builds gsplat's CUDA extension first, alone, timed, with its log in OUT/gsplat_build.log.
#
# Python: LASER_PYTHON if set; else a python3 that already imports torch, gsplat and open_clip (a GPU
# machine's system Python with the wheels the devices' README describes on PYTHONPATH); else the project's
# virtual environment (scripts/_env.sh creates or reuses it).
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
