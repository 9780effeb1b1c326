#!/usr/bin/env bash
# bash tools/misc/make_wheelhouse.sh OUT [--python-version 3.12] [--platform TAG] [--no-torch] [--skip NAMES]:
# the files for an offline `tools/install.sh --wheelhouse OUT` (tools/misc/make_wheelhouse.py; runs in the
# installer's environment, installing it first if needed).
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=$(bash "$DIR/../install.sh" | tail -n 1)
exec "$PY" "$DIR/make_wheelhouse.py" "$@"
