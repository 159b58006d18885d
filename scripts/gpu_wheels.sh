#!/usr/bin/env bash
# Download the wheels a GPU machine without network needs beside its own PyTorch (gsplat, open_clip and
# their small pure-Python needs, and pycolmap for 360-degree scenes: 38 MB of the 64 MB a call carries) into
# .whl/ (git-ignored), for Python 3.12 on x86-64.
#
# Then, on the GPU machine (the device tool: carry [".whl"], timeout 540 s):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site && bash scripts/gpu_check.sh "$OUT/gpu_check"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl gsplat==1.5.3 open_clip_torch==3.3.0 plyfile==1.1.5 ftfy==6.3.1 wcwidth==0.9.4 pycolmap==4.2.1
ls -la .whl
