"""Export a whole detector (Mask R-CNN, RetinaNet) or segmentor (EncoderDecoder, e.g. Semantic FPN) into a
folder that runs without building the model.

    python tools/deployment/export_model.py CONFIG_OR_NAME [CHECKPOINT] --out DIR
        [--backend onnxruntime|openvino|aot] [--precision fp32|bf16|int8] [--calib-images N]
        [--max-drop X [--val-images N]]
        [--partial-checkpoint] [--cfg-options k=v ...]

DIR receives the graphs (backbone in its deploy form + neck + heads; RoI heads as their own graph;
dynamic image size), deploy.json (pre- and post-processing parameters, class names); it is written
beside DIR and renamed into place once complete (an earlier export in DIR is replaced). Evaluate it with
`python tools/test.py CONFIG DIR --deployed` (`tools/dist_test.sh CONFIG DIR N --deployed` in N
processes; `--cfg-options model.test_cfg...` changes thresholds without a new export), draw with
`python tools/demo.py CONFIG IMAGES --deployed DIR`, or in Python:
`model = effvit_mm.deployment.init_deployed(CONFIG, DIR)` for mmdet's `inference_detector(model, img)` /
mmseg's `inference_model(model, img)`. Without CHECKPOINT the weights are random (a warning says so).

--precision (OpenVINO): bf16 runs the fp32 graphs at bf16 on CPUs with native bf16 (refused elsewhere);
int8 quantizes the image graph with NNCF on N images of the config's train set (--calib-images, 300);
--max-drop X keeps the config's val metrics (COCO bbox / segm AP in 0-1, mIoU in %) within X of fp32 on the
first N val images (--val-images; all without) by putting the operations that cost most back into float
(NNCF's accuracy control; deploy.json names them), or fails saying by how much it missed.
"""
import argparse
import sys
import time

from mmengine.config import DictAction

from effvit_mm.deployment import BACKENDS, export_model
from effvit_mm.deployment.precision import PRECISIONS
from effvit_mm.deployment.runtimes import RuntimeUnavailable


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='mmdet / mmseg config file or model-zoo name (tools/misc/model_zoo.py list)')
    p.add_argument('checkpoint', nargs='?', help='weights (default: random weights)')
    p.add_argument('--out', required=True, help='the folder to write')
    p.add_argument('--backend', choices=BACKENDS, default='onnxruntime')
    p.add_argument('--precision', choices=PRECISIONS, default='fp32', help='bf16 / int8: --backend openvino')
    p.add_argument('--calib-images', type=int, default=300, help='int8: calibration images of the train set')
    p.add_argument('--max-drop', type=float, help='int8: the largest drop of a val metric to accept (accuracy control)')
    p.add_argument('--val-images', type=int, help='--max-drop: evaluate on the first N val images (default: all)')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        meta = export_model(args.config, args.out, args.checkpoint, args.backend, args.partial_checkpoint,
                            args.cfg_options, args.precision, args.calib_images, max_drop=args.max_drop,
                            val_images=args.val_images)
    except (FileNotFoundError, ValueError, RuntimeUnavailable) as error:  # one line, not a traceback
        sys.exit(f'error: {error}')
    graphs = ', '.join(f'{name} ({g["file"]})' for name, g in meta['graphs'].items())
    print(f'exported {args.config} ({meta["task"]}, {len(meta["classes"])} classes) for {args.backend} at '
          f'{args.precision} to {args.out} '
          f'in {time.perf_counter() - start:.0f} s: {graphs}')
    control = meta.get('quantization', {}).get('validation')
    if control:
        q = meta['quantization']
        figures = ', '.join(f'{k} {control["fp32"][k]:.4f} -> {control["int8"][k]:.4f}' for k in control['metrics'])
        print(f'int8 on {control["images"]} {control["split"]} images: {figures}; {len(q["kept_in_float"])} of '
              f'{q["quantized_operations"]} quantized operations kept in float')
    return 0


if __name__ == '__main__':
    sys.exit(main())
