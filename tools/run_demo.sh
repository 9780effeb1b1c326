#!/usr/bin/env bash
# The README's main job: install if needed, generate the demo COCO set, train the SHViT-S4 Mask R-CNN
# on it (CPU, short schedule), evaluate bbox/segm AP and draw predictions on the val images.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=$(bash tools/install.sh | tail -n 1)
# This checkout's package first, whichever checkout the shared venv's editable install points at.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CONFIG=configs/mask_rcnn_shvit_s4_demococo.py
WORK_DIR=work_dirs/mask_rcnn_shvit_s4_demococo
start=$(date +%s)
"$PY" tools/dataset_converters/generate_data.py coco --out data/demo_coco --width 256 --height 192
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
"$PY" tools/test.py "$CONFIG" "$(cat "$WORK_DIR/last_checkpoint")" --work-dir "$WORK_DIR" --show-dir vis
echo "demo finished in $(( $(date +%s) - start )) s; pictures: $(ls -d "$WORK_DIR"/*/vis | tail -n 1)"
