#!/usr/bin/env bash
# End-to-end demo on the embedded synthetic scene: generate, inspect, train, evaluate, export.
# Usage: scripts/demo.sh [OUT_DIR]   (default: demo_out/)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT="${1:-$LASER_ROOT/demo_out}"
mkdir -p "$OUT"
echo "== 1. Generate a synthetic labeled scene (3D-OVS layout, with synthetic dense features)"
laser make-scene "$OUT/scene" --force
echo "== 2. Inspect it"
laser inspect "$OUT/scene"
echo "== 3. Score the 2D teacher (dense features alone) on the annotated views"
python - "$OUT/scene" <<'PY'
import sys
from laser_gs.data import load_scene
from laser_gs.features import load_feature_dir
from laser_gs.metrics import segmentation_scores
from laser_gs.synthetic.features import teacher_predictions
scene = load_scene(sys.argv[1])
fs = load_feature_dir(scene.feature_dir, scene.image_names, scene.classes)
preds = {v: teacher_predictions(fs.grids[scene.image_names[v]], fs.text, (scene.height, scene.width))
         for v in scene.annotated_views}
r = segmentation_scores(preds, scene.gt_masks, scene.classes)
print(f"2D teacher: mIoU {r['miou']:.1f}  accuracy {r['accuracy']:.1f}")
PY
BACKENDS=$(python -c 'from laser_gs.backends import list_backends; print(" ".join(list_backends()))')
if [ -z "$BACKENDS" ]; then
  echo "== 4. No 3D backend is installed yet in this version: training, evaluation and export are not available."
  exit 0
fi
for B in $BACKENDS; do
  echo "== 4. Train the $B backend (fast preset)"
  rm -rf "$OUT/run_$B"
  laser train --backend "$B" --scene "$OUT/scene" --out "$OUT/run_$B" --preset fast
done
