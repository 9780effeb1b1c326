#!/usr/bin/env bash
# Idempotent installer for the effvit_mm stack (docs/en/get_started.md, "Installation").
#
#   bash tools/install.sh [--cuda-ops] [--wheelhouse DIR]
#
# Creates (or reuses) a virtual environment, or uses an existing interpreter with its own torch;
# installs the stack of tools/requirements*.txt (the documentation tools of requirements-docs.txt online
# only); builds mmcv 2.1.0 from its source package with CPU
# kernels (no CUDA compiler needed: on GPU machines `import effvit_mm` routes the ops our configs use
# on CUDA tensors to torchvision / PyTorch), or with CUDA kernels too under --cuda-ops; caches each
# built mmcv wheel per Python, torch and flavour; installs effvit_mm in editable mode.
#   --cuda-ops        build mmcv's CUDA kernels (nvcc of torch's CUDA major version needed); if the
#                     build or its CUDA check fails, the CPU-kernel mmcv is installed instead
#   --wheelhouse DIR  install offline from DIR (written by tools/misc/make_wheelhouse.sh), no network
# Environment:
#   EFFVIT_MM_PYTHON  use this interpreter (its torch / torchvision are kept when supported)
#   EFFVIT_MM_VENV    venv location (default $EFFVIT_MM_CACHE/venv)
#   EFFVIT_MM_CACHE   cache root (default ~/.cache/effvit_mm): venv, built mmcv wheels, mmcv source
#   MAX_JOBS          parallel compile jobs (default: all cores)
# Prints the interpreter on its last line, and records it in $EFFVIT_MM_CACHE/python for the
# tools/*.sh launchers.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${EFFVIT_MM_CACHE:-$HOME/.cache/effvit_mm}
VENV=${EFFVIT_MM_VENV:-$CACHE/venv}
log() { echo "[install] $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

# Pinned for new environments; an existing interpreter keeps its torch within the supported range.
TORCH=2.14.1 TORCHVISION=0.29.1 MMCV=2.1.0
SUPPORTED="Python 3.11-3.12, torch 2.11-2.14 with its torchvision (0.26-0.29)"

CUDA_OPS=0 WHEELHOUSE=
while [[ $# -gt 0 ]]; do
  case $1 in
    --cuda-ops) CUDA_OPS=1 ;;
    --wheelhouse) [[ $# -ge 2 ]] || die "--wheelhouse needs a folder"; WHEELHOUSE=$(cd "$2" 2>/dev/null && pwd) \
                    || die "wheelhouse $2 not found"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

if [[ -n "${EFFVIT_MM_PYTHON:-}" ]]; then
  PY=$EFFVIT_MM_PYTHON
  [[ -x "$PY" ]] || PY=$(command -v "$PY") || die "EFFVIT_MM_PYTHON=$EFFVIT_MM_PYTHON is not an interpreter"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    BASE=$(command -v python3.11 || command -v python3) || die "no python3.11 or python3 on PATH"
    log "creating venv $VENV with $BASE"
    mkdir -p "$(dirname "$VENV")"
    "$BASE" -m venv "$VENV"
  fi
  PY=$VENV/bin/python
fi
PIP=("$PY" -m pip install -q --disable-pip-version-check)
[[ -n $WHEELHOUSE ]] && PIP+=(--no-index --find-links "$WHEELHOUSE")

# Python, torch and torchvision of the target: '<py> <torch or -> <torchvision or -> <cuda or -> <gpu 0/1>'.
read -r PYV TORCH_HAVE TV_HAVE TORCH_CUDA GPU < <("$PY" - <<'PY'
import sys
v = '%d.%d' % sys.version_info[:2]
try:
    import torch
    t, c, g = torch.__version__, torch.version.cuda or '-', int(torch.cuda.is_available())
except ImportError:
    t, c, g = '-', '-', 0
try:
    import torchvision
    tv = torchvision.__version__
except Exception:  # missing, or not built for this torch
    tv = '-'
print(v, t, tv, c, g)
PY
) || die "cannot run $PY"
[[ $PYV == 3.11 || $PYV == 3.12 ]] || die "$PY is Python $PYV; supported: $SUPPORTED"

supported_torch() {  # torch 2.11-2.14 and the torchvision built for it (minor = torch minor + 15)
  "$PY" - "$1" "$2" <<'PY'
import sys
t, tv = (tuple(int(x) for x in v.split('+')[0].split('.')[:2]) for v in sys.argv[1:])
sys.exit(not ((2, 11) <= t <= (2, 14) and tv == (0, t[1] + 15)))
PY
}
if [[ $TORCH_HAVE == - ]]; then
  log "installing torch $TORCH / torchvision $TORCHVISION"
  [[ -z $WHEELHOUSE ]] && "${PIP[@]}" --upgrade pip
  "${PIP[@]}" "torch==$TORCH" "torchvision==$TORCHVISION"
elif [[ $TV_HAVE == - ]] && TV_WANT=0.$(( $(cut -d. -f2 <<< "$TORCH_HAVE") + 15 )) \
     && supported_torch "$TORCH_HAVE" "$TV_WANT"; then
  TV_WANT=$TV_WANT.*
  log "installing torchvision $TV_WANT for torch $TORCH_HAVE"
  "${PIP[@]}" "torch==$TORCH_HAVE" "torchvision==$TV_WANT"
fi
read -r TORCH_HAVE TV_HAVE TORCH_CUDA GPU < <("$PY" -c 'import torch, torchvision
print(torch.__version__, torchvision.__version__, torch.version.cuda or "-", int(torch.cuda.is_available()))' 2>/dev/null) \
  || die "$PY cannot import torch and torchvision; supported: $SUPPORTED"
supported_torch "$TORCH_HAVE" "$TV_HAVE" \
  || die "$PY has torch $TORCH_HAVE and torchvision $TV_HAVE; supported: $SUPPORTED (use another interpreter, or unset EFFVIT_MM_PYTHON for a venv with torch $TORCH)"
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
# Nothing may replace them (public versions: pip's resolver rejects a local one, +cu130, as a constraint).
printf 'torch==%s\ntorchvision==%s\n' "${TORCH_HAVE%%+*}" "${TV_HAVE%%+*}" > "$CONSTRAINTS"
[[ -z "${EFFVIT_MM_PYTHON:-}" ]] && cat "$ROOT/tools/constraints-venv.txt" >> "$CONSTRAINTS"
log "Python $PYV, torch $TORCH_HAVE (CUDA ${TORCH_CUDA/-/none}), torchvision $TV_HAVE, GPU visible: $([[ $GPU == 1 ]] && echo yes || echo no)"

# --cuda-ops: refuse at once, in one line, what would make the long build fail.
NVCC= ARCHS= NV_INCLUDE=
if [[ $CUDA_OPS == 1 ]]; then
  [[ $TORCH_CUDA != - ]] || die "--cuda-ops: torch $TORCH_HAVE is a CPU build; a CUDA build of torch is needed"
  if [[ -n "${CUDA_HOME:-}" ]]; then NVCC=$CUDA_HOME/bin/nvcc; else NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc); fi
  [[ -x $NVCC ]] || die "--cuda-ops: no nvcc at $NVCC (install the CUDA ${TORCH_CUDA%%.*} toolkit and put its bin/ on PATH or set CUDA_HOME)"
  NVCC_V=$("$NVCC" --version | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p')
  [[ ${NVCC_V%%.*} == "${TORCH_CUDA%%.*}" ]] || die "--cuda-ops: $NVCC is CUDA ${NVCC_V:-unknown}, torch $TORCH_HAVE is built for CUDA $TORCH_CUDA: the major versions must match"
  ARCHS=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch
print(";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})))')}
  [[ -n $ARCHS ]] || die "--cuda-ops: no GPU visible to torch; set TORCH_CUDA_ARCH_LIST (e.g. 9.0) to build for GPUs elsewhere"
  # torch's headers include the cuBLAS / cuSPARSE / cuSOLVER headers that only its pip dependencies ship.
  NV_INCLUDE=$("$PY" -c 'import glob, os
try:
    import nvidia
    print(":".join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "include"))})))
except ImportError:
    print("")')
fi

MMCV_FLAVOUR=$([[ $CUDA_OPS == 1 ]] && echo "cuda${TORCH_CUDA}-sm${ARCHS//[;. ]/}" || echo cpu)
stack_ok() {
  "$PY" - "$MMCV" "$CUDA_OPS" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
mmcv_v, cuda_ops = sys.argv[1], sys.argv[2] == '1'
assert md.version('mmcv') == mmcv_v
want = {'mmengine': '0.10.7', 'mmdet': '3.3.0', 'mmsegmentation': '1.2.2', 'mmpretrain': '1.2.0'}
for k, v in want.items():
    assert md.version(k) == v, k
import setuptools, pkg_resources, ftfy, regex, timm, pytest, pycocotools, onnx, onnxruntime, onnxscript  # noqa
import coremltools, openvino, nncf, pytorch_grad_cam, torchattacks  # noqa
assert md.version('nncf') == '3.4.0'
from mmcv.ops import RoIAlign, nms, get_compiling_cuda_version  # compiled ops present, built for this torch
assert (get_compiling_cuda_version() != 'not available') >= cuda_ops
PY
}

# mmcv source package: the wheelhouse's, or downloaded once into the cache.
mmcv_source() {
  local src=$CACHE/sdist/mmcv-$MMCV.tar.gz
  [[ -n $WHEELHOUSE ]] && src=$WHEELHOUSE/mmcv-$MMCV.tar.gz
  if [[ ! -f $src ]]; then
    [[ -z $WHEELHOUSE ]] || die "$src missing: the wheelhouse lacks mmcv's source package"
    mkdir -p "$(dirname "$src")"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: --no-build-isolation \
      "mmcv==$MMCV" -d "$(dirname "$src")"
  fi
  echo "$src"
}

# Build mmcv for this Python and torch ($1: cpu or cuda) into $2; C++20 for torch >= 2.14's headers.
build_mmcv() {
  local flavour=$1 out=$2 work
  # No debug info (-g0 after Python's -g): half the compile time, a wheel of 2 MB instead of 32.
  export CFLAGS="${CFLAGS:-} -g0"
  work=$(mktemp -d)
  tar -xzf "$(mmcv_source)" -C "$work"
  sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV/setup.py"
  log "building mmcv $MMCV with $flavour kernels ($([[ $flavour == cpu ]] && echo 'about 10 min on 2 cores' || echo "archs $ARCHS; 45 min or more on 2 cores, 6-10 on 16"))"
  if [[ $flavour == cpu ]]; then
    # mmcv's setup.py builds CUDA kernels whenever torch sees a GPU: hide them.
    (MMCV_WITH_OPS=1 FORCE_CUDA=0 CUDA_VISIBLE_DEVICES= MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" "$work/mmcv-$MMCV") || { rm -rf "$work"; return 1; }
  else
    (export MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$ARCHS CUDA_HOME=$(dirname "$(dirname "$NVCC")") \
        CPATH=$NV_INCLUDE${CPATH:+:$CPATH} MAX_JOBS=${MAX_JOBS:-$(nproc)}
     "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" "$work/mmcv-$MMCV") || { rm -rf "$work"; return 1; }
  fi
  mkdir -p "$out" && mv "$work"/dist/mmcv-*.whl "$out"/ && rm -rf "$work"
}

cuda_smoke_test() {  # CUDA nms and roi_align of the installed mmcv equal its CPU kernels
  "$PY" - <<'PY'
import torch
from mmcv.ops import get_compiling_cuda_version, nms, roi_align
assert get_compiling_cuda_version() != 'not available', 'mmcv has no CUDA kernels'
g = torch.Generator().manual_seed(0)
xy = torch.rand(200, 2, generator=g) * 100
boxes, scores = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=g) * 40], 1), torch.rand(200, generator=g)
feat = torch.rand(2, 8, 32, 32, generator=g)
rois = torch.cat([torch.randint(0, 2, (50, 1), generator=g).float(), boxes[:50] / 4], 1)
keep_cpu = nms(boxes, scores, 0.5)[1]
keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)[1].cpu()
assert torch.equal(keep_cpu, keep_gpu), 'CUDA nms differs from the CPU kernel'
out = roi_align(feat.cuda(), rois.cuda(), (7, 7), 0.25, 0, 'avg', True).cpu()
assert torch.allclose(out, roi_align(feat, rois, (7, 7), 0.25, 0, 'avg', True), atol=1e-5), 'CUDA roi_align differs'
print('mmcv CUDA kernels: nms and roi_align equal the CPU kernels')
PY
}

# Install the mmcv wheel of this flavour, building it once per cache key.
install_mmcv() {
  local flavour=$1 key wheels
  key=mmcv-$MMCV-py$PYV-torch$TORCH_HAVE-$([[ $flavour == cpu ]] && echo cpu || echo "$MMCV_FLAVOUR")
  wheels=$CACHE/wheels/$key
  if ! ls "$wheels"/mmcv-*.whl >/dev/null 2>&1; then
    build_mmcv "$flavour" "$wheels" || return 1
  fi
  log "installing cached wheel $(ls "$wheels"/mmcv-*.whl)"
  "${PIP[@]}" --no-deps --force-reinstall "$wheels"/mmcv-*.whl
}

if stack_ok; then
  log "stack already installed in $("$PY" -c 'import sys; print(sys.prefix)')"
else
  t0=$(date +%s)
  log "installing the stack (tools/requirements*.txt)$([[ -n $WHEELHOUSE ]] && echo " from $WHEELHOUSE")"
  "${PIP[@]}" -c "$CONSTRAINTS" -r "$ROOT/tools/requirements.txt"
  "${PIP[@]}" --no-deps -r "$ROOT/tools/requirements-nodeps.txt"
  if [[ $CUDA_OPS == 1 ]]; then
    if install_mmcv cuda && cuda_smoke_test; then
      log "mmcv with CUDA kernels installed"
    else
      log "WARNING: the CUDA build of mmcv failed (messages above); installing mmcv with CPU kernels instead:"
      log "         on CUDA tensors effvit_mm routes nms, roi_align and sigmoid_focal_loss to torchvision / PyTorch"
      CUDA_OPS=0
      install_mmcv cpu || die "the mmcv build failed; see the messages above"
    fi
  else
    install_mmcv cpu || die "the mmcv build failed; see the messages above"
  fi
  stack_ok || die "the stack does not import after installing; see the messages above"
  log "stack installed in $(( $(date +%s) - t0 )) s"
fi
[[ $GPU == 1 ]] && ! "$PY" -c 'import sys, mmcv.ops; sys.exit(mmcv.ops.get_compiling_cuda_version() == "not available")' 2>/dev/null \
  && log "GPU: mmcv has CPU kernels only; effvit_mm routes nms, roi_align and sigmoid_focal_loss on CUDA tensors (--cuda-ops builds mmcv's own)"

# Documentation tools (tools/requirements-docs.txt: sphinx, myst-parser, the furo theme), reinstalled when a pin is not met;
# online only, since the wheelhouses of tools/misc/make_wheelhouse.py do not carry them.
docs_ok() {
  "$PY" - "$ROOT/tools/requirements-docs.txt" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
for line in open(sys.argv[1]):
    name, _, version = line.split('#')[0].strip().partition('==')
    assert not name or md.version(name) == version, name
PY
}
if [[ -z $WHEELHOUSE ]] && ! docs_ok; then
  log "installing the documentation tools (tools/requirements-docs.txt)"
  "${PIP[@]}" -c "$CONSTRAINTS" -r "$ROOT/tools/requirements-docs.txt"
fi

# effvit_mm itself, editable, pointing at this checkout (cheap: no dependency resolution).
out=$("${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT" 2>&1) || { echo "$out" >&2; exit 1; }
mkdir -p "$CACHE" && echo "$PY" > "$CACHE/python"
echo "$PY"
