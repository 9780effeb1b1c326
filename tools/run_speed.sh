#!/usr/bin/env bash
# The README's "Speed" figures: every tools/benchmark.py run behind them, each writing JSON / CSV /
# Markdown into OUT_DIR (default work_dirs/speed). CPU runs use 2 threads, batch 16, unless stated.
#
#   bash tools/run_speed.sh [OUT_DIR]
#
# LITV2_REF=/path/file.py adds the authors' LITv2 to the LITv2 runs: a Python file with a function
# cls_model(arch) returning their classifier (built beside the project from ziplab/LITv2, see README).
# On a machine with a CUDA GPU the SHViT GPU protocol runs as well.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-work_dirs/speed}
PY=$(bash tools/install.sh | tail -n 1)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
bench() { local name=$1; shift; "$PY" tools/benchmark.py "$@" --out "$OUT/$name.json" 2>&1 | grep -v -i warn; }

bench cpu_224 shvit:s1 shvit:s2 shvit:s3 swiftformer:xs swiftformer:s swiftformer:l1 swiftformer:l3 --timm --threads 2
bench cpu_shvit_s4 shvit:s4 --timm --peers mobilevitv2_100 --threads 2
for arch in s m b; do
  bench "cpu_litv2_$arch" "litv2:$arch" --threads 2 --repeats 9 ${LITV2_REF:+--external "authors_litv2_$arch=$LITV2_REF:cls_model:$arch"}
done
bench cpu_shvit_protocol shvit:s1 shvit:s2 shvit:s3 shvit:s4 --timm --preset shvit-cpu
bench cpu_latency_512 shvit:s4 --features --res 512 --batch 1 --peers fastvit_sa12 --threads 2 --repeats 15
bench cpu_det_backbone_neck configs/mask_rcnn_shvit_s4_coco.py configs/mask_rcnn_swiftformer_l1_coco.py \
  configs/mask_rcnn_litv2_s_coco.py --batch 1 --threads 2
if "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  bench gpu_shvit_protocol shvit:s1 shvit:s2 shvit:s3 shvit:s4 --timm --preset shvit-gpu
  bench gpu_fp32 shvit:s4 swiftformer:l1 litv2:s --timm --batch 64
fi
echo "figures in $OUT"
