#!/usr/bin/env bash
# The figures of docs/en/deployment/benchmark_results.md: every tools/analysis_tools/benchmark.py run behind
# them, each writing JSON / CSV / Markdown into OUT_DIR (default work_dirs/speed). CPU runs use 2 threads,
# batch 16, unless stated.
#
#   bash tools/analysis_tools/run_speed.sh [OUT_DIR [GROUP ...]]     GROUPs (default all): runtimes latency protocol peers det gpu
#
# runtimes: one process per variant (all eleven), every CPU backend of ours and of timm's twin (eval,
#   deploy / fused, torch.compile, AOTInductor, onnxruntime, OpenVINO), batch 16; latency: the same at batch 1
#   for one variant per family. LITV2_REF=/path/file.py adds the authors' LITv2 to the LITv2 runs (in the same
#   backends): a Python file with a function cls_model(arch) returning their classifier (built beside the
#   project from ziplab/LITv2, see docs/en/deployment/benchmark_results.md). On a machine with a CUDA GPU the
#   gpu group runs as well.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${1:-work_dirs/speed}
shift || true
GROUPS_ASKED=" ${*:-runtimes latency protocol peers det gpu} "
PY=$(bash tools/install.sh | tail -n 1)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
bench() { local name=$1; shift; "$PY" tools/analysis_tools/benchmark.py "$@" --out "$OUT/$name.json" 2>&1 | grep -v -i warn; }
asked() { [[ $GROUPS_ASKED == *" $1 "* ]]; }
authors() { echo ${LITV2_REF:+--external "authors_litv2_$1=$LITV2_REF:cls_model:$1"}; }
RUNTIMES=(--modes eval deploy compile aot onnxruntime openvino)

if asked runtimes; then
  for v in shvit:s1 shvit:s2 shvit:s3 shvit:s4 swiftformer:xs swiftformer:s swiftformer:l1 swiftformer:l3; do
    bench "cpu_runtimes_${v/:/_}" "$v" --timm --threads 2 "${RUNTIMES[@]}"
  done
  for arch in s m b; do
    # shellcheck disable=SC2046
    bench "cpu_runtimes_litv2_$arch" "litv2:$arch" --threads 2 "${RUNTIMES[@]}" $(authors "$arch")
  done
fi
if asked latency; then
  for v in shvit:s4 swiftformer:l1; do
    bench "cpu_latency_${v/:/_}" "$v" --timm --threads 2 --batch 1 --repeats 21 "${RUNTIMES[@]}"
  done
  # shellcheck disable=SC2046
  bench cpu_latency_litv2_s litv2:s --threads 2 --batch 1 --repeats 21 "${RUNTIMES[@]}" $(authors s)
fi
if asked protocol; then
  bench cpu_shvit_protocol shvit:s1 shvit:s2 shvit:s3 shvit:s4 --timm --preset shvit-cpu
fi
if asked peers; then
  bench cpu_shvit_s4_peers shvit:s4 --timm --peers mobilevitv2_100 --threads 2
  bench cpu_latency_512 shvit:s4 --features --res 512 --batch 1 --peers fastvit_sa12 --threads 2 --repeats 15
fi
if asked det; then
  bench cpu_det_backbone_neck configs/mask_rcnn_shvit_s4_coco.py configs/mask_rcnn_swiftformer_l1_coco.py \
    configs/mask_rcnn_litv2_s_coco.py --batch 1 --threads 2
fi
if asked gpu && "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  bench gpu_shvit_protocol shvit:s1 shvit:s2 shvit:s3 shvit:s4 --timm --preset shvit-gpu
  bench gpu_fp32 shvit:s4 swiftformer:l1 litv2:s --timm --batch 64
fi
if asked runtimes || asked latency; then
  "$PY" tools/analysis_tools/speed_table.py "$OUT"   # the backend tables: $OUT/backends.md
fi
echo "figures in $OUT"
