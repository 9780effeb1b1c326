#!/usr/bin/env bash
# The GPU acceptance run in one command (tools/gpu_acceptance.py writes the JSON summary):
#   bash tools/gpu_acceptance.sh --wheelhouse DIR [ARGS]  install offline into $EFFVIT_MM_PYTHON (default:
#                                                         python3, with its CUDA torch), then run on the GPU
#   bash tools/gpu_acceptance.sh --cpu [ARGS]             in the installed environment, without GPU
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ${1:-} == --wheelhouse ]]; then
  [[ $# -ge 2 ]] || { echo "error: --wheelhouse needs a folder" >&2; exit 2; }
  WHEELHOUSE=$2; shift 2
  t0=$(date +%s)
  PYTHON=$(EFFVIT_MM_PYTHON=${EFFVIT_MM_PYTHON:-$(command -v python3)} bash "$DIR/install.sh" --wheelhouse "$WHEELHOUSE" | tail -n 1)
  set -- --install-seconds "$(( $(date +%s) - t0 ))" "$@"
else
  source "$DIR/find_python.sh"
fi
cd "$DIR/.."
exec "$PYTHON" "$DIR/gpu_acceptance.py" "$@"
