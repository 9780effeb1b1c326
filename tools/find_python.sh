# Sourced by the tools/*.sh launchers: sets PYTHON to an interpreter with the stack. In order: $PYTHON
# if set; `python` on PATH if it imports torch, mmengine and mmcv; the interpreter that
# tools/install.sh last installed into (recorded in ${EFFVIT_MM_CACHE:-~/.cache/effvit_mm}/python).
if [[ -z "${PYTHON:-}" ]]; then
  if python -c 'import torch, mmengine, mmcv' >/dev/null 2>&1; then
    PYTHON=python
  else
    _record=${EFFVIT_MM_CACHE:-$HOME/.cache/effvit_mm}/python
    PYTHON=$(cat "$_record" 2>/dev/null || true)
    if [[ -z "$PYTHON" || ! -x "$PYTHON" ]]; then
      echo "error: \`python\` on PATH lacks torch / mmengine / mmcv and $_record names no installed interpreter:" \
           "run \`bash tools/install.sh\`, or set PYTHON=/path/to/python" >&2
      exit 2
    fi
  fi
fi
