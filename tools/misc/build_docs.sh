#!/usr/bin/env bash
# Build the HTML documentation (docs/en, Sphinx + MyST) into OUT_DIR (default work_dirs/docs_html).
# Warnings, broken cross-references and missing anchors included, fail the build.
#   bash tools/misc/build_docs.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-$ROOT/work_dirs/docs_html}
source "$ROOT/tools/find_python.sh"
"$PYTHON" -c 'import sphinx, myst_parser' 2>/dev/null \
  || { echo "error: $PYTHON lacks sphinx / myst-parser: pip install -r tools/requirements-docs.txt" >&2; exit 2; }
exec "$PYTHON" -m sphinx -W --keep-going -n -b html "$ROOT/docs/en" "$OUT"
