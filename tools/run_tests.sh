#!/usr/bin/env bash
# Install what is missing (tools/install.sh), then run the default test suite (CPU, no downloads).
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m slow` for the slow checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=$(bash tools/install.sh | tail -n 1)
# This checkout's package first, whichever checkout the shared venv's editable install points at.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m pytest tests "$@"
