#!/usr/bin/env bash
# Idempotent installer for the effvit_mm stack (see README "Installation").
#
# Creates (or reuses) a virtual environment, installs the pinned OpenMMLab stack into it, builds
# mmcv 2.1.0 with its compiled ops from the PyPI source package (CUDA ops when `nvidia-smi` finds a
# GPU), caches the built wheel under ~/.cache/effvit_mm/wheels, and installs effvit_mm in editable mode.
# A second run on the same machine only checks versions and re-links the package.
#
# Environment:
#   EFFVIT_MM_PYTHON  use this existing interpreter instead of a venv (nothing is created)
#   EFFVIT_MM_VENV    venv location (default ~/.cache/effvit_mm/venv)
#   EFFVIT_MM_CACHE   cache root (default ~/.cache/effvit_mm)
# Prints the interpreter path on its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${EFFVIT_MM_CACHE:-$HOME/.cache/effvit_mm}
VENV=${EFFVIT_MM_VENV:-$CACHE/venv}
log() { echo "[install] $*" >&2; }

# The stack of shared/README.md, measured to work together.
TORCH=2.14.1 TORCHVISION=0.29.1 MMCV=2.1.0
PINS=(
  "setuptools>=77,<81"          # torch needs >=77; >=81 drops pkg_resources (mmcv build, mmengine configs)
  wheel "numpy<2.5" "opencv-python-headless<4.13"
  mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0 "timm>=1.0.20,<1.1"
  ftfy regex                    # imported by mmsegmentation, not declared
  pycocotools "shapely" "scipy" "pytest>=8"
  "onnx>=1.17" "onnxruntime>=1.20" "onnxscript>=0.2"  # tools/export_onnx.py
  "coremltools==9.0"            # tools/export_coreml.py (conversion only on Linux)
  "grad-cam==1.5.7"             # tools/vis_cam.py
)
# torchattacks pins requests~=2.25 (unused by the attacks we run): installed without its dependencies.
NODEPS_PINS=("torchattacks==3.5.1")

if [[ -n "${EFFVIT_MM_PYTHON:-}" ]]; then
  PY=$EFFVIT_MM_PYTHON
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
  fi
  PY=$VENV/bin/python
fi
PIP=("$PY" -m pip install -q --disable-pip-version-check)

stack_ok() {
  "$PY" - "$TORCH" "$MMCV" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
torch_v, mmcv_v = sys.argv[1:]
assert md.version('torch').split('+')[0] == torch_v
assert md.version('mmcv') == mmcv_v
want = {'mmengine': '0.10.7', 'mmdet': '3.3.0', 'mmsegmentation': '1.2.2', 'mmpretrain': '1.2.0'}
for k, v in want.items():
    assert md.version(k) == v, k
import setuptools, pkg_resources, ftfy, regex, timm, pytest, pycocotools, onnx, onnxruntime, onnxscript  # noqa
import coremltools, pytorch_grad_cam, torchattacks  # noqa
from mmcv.ops import RoIAlign, nms  # compiled ops present
PY
}

if stack_ok; then
  log "stack already installed in $("$PY" -c 'import sys; print(sys.prefix)')"
else
  t0=$(date +%s)
  log "installing torch $TORCH / torchvision $TORCHVISION and the pinned stack"
  "${PIP[@]}" --upgrade pip
  "${PIP[@]}" "torch==$TORCH" "torchvision==$TORCHVISION" "setuptools>=77,<81" wheel
  if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV'" 2>/dev/null; then
    GPU=cpu; command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && GPU=cuda
    WHEELS=$CACHE/wheels/mmcv-$MMCV-torch$TORCH-$GPU
    if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
      log "building mmcv $MMCV with $GPU ops from source (about 10 min on 2 cores)"
      SRC=$(mktemp -d)
      "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV" -d "$SRC"
      tar -xzf "$SRC"/mmcv-"$MMCV".tar.gz -C "$SRC"
      sed -i 's/-std=c++17/-std=c++20/g' "$SRC/mmcv-$MMCV/setup.py"   # torch 2.14 headers need C++20
      "${PIP[@]}" addict yapf packaging pyyaml Pillow mmengine==0.10.7 ninja
      [[ $GPU == cuda ]] && export FORCE_CUDA=1
      MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel -q --no-build-isolation --no-deps \
        -w "$SRC/dist" "$SRC/mmcv-$MMCV"
      mkdir -p "$WHEELS" && mv "$SRC"/dist/mmcv-*.whl "$WHEELS"/ && rm -rf "$SRC"
    fi
    log "installing cached wheel $(ls "$WHEELS"/mmcv-*.whl)"
    "${PIP[@]}" --no-deps "$WHEELS"/mmcv-*.whl
  fi
  "${PIP[@]}" "${PINS[@]}" "mmcv==$MMCV"
  "${PIP[@]}" --no-deps "${NODEPS_PINS[@]}"
  stack_ok || { log "ERROR: the stack does not import after installing; see the messages above"; exit 1; }
  log "stack installed in $(( $(date +%s) - t0 )) s"
fi

# effvit_mm itself, editable, pointing at this checkout (cheap: no dependency resolution).
out=$("${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT" 2>&1) || { echo "$out" >&2; exit 1; }
echo "$PY"
