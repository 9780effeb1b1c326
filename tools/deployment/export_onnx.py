"""Export a classifier (its logits), a backbone or a detector's / segmentor's backbone + neck (their
feature maps) to ONNX and check it against onnxruntime.

    python tools/deployment/export_onnx.py CONFIG_NAME_OR_SPEC OUT.onnx [--checkpoint CKPT] [--partial-checkpoint]
        [--shape H [W]] [--batch N] [--opset 19] [--deploy] [--dynamic-batch] [--runs 5] [--threads N]
        [--tol 1e-4]

CONFIG (a config file or its model-zoo name, tools/misc/model_zoo.py list):
an mmpretrain classifier config; the output is ``logits`` (model(x, mode='tensor')), the default
input size its test crop. An mmdet / mmseg config: its backbone + neck (``extract_feat``), outputs
``feat0``, ``feat1``, ... (one per pyramid level), default input 800x1333 / 512x512; the heads are
not exported here (tools/deployment/export_model.py exports whole detectors and segmentors). SPEC ``family:arch``
(``shvit:s1``, ``swiftformer:xs``, ``litv2:s``): the backbone alone, outputs ``feat0``, ``feat1``, ...,
default input 224x224. Without ``--checkpoint`` the weights are random (a warning says so); a
checkpoint that does not fit the model is refused in one line (``--partial-checkpoint``: load what
fits, one line says what is skipped). ``--deploy`` folds the BatchNorms first (the portable deploy
step, ``effvit_mm.models.layers.fuse``).

The exporter is torch's dynamo-based one (``torch.onnx.export(..., dynamo=True)``, the default since
torch 2.9; the TorchScript one is deprecated), with translations of torchvision's deformable conv
(ONNX ``DeformConv``: LITv2 needs opset >= 19) and of 5D scaled-dot-product attention (effvit_mm/deployment/onnx_export.py).

After the export: ``onnx.checker``, then onnxruntime (CPUExecutionProvider) and PyTorch on the same
random input: max abs diff per output, images/s of both (median of --runs, the same number of
intra-op threads), one summary line. Exits 1 if
an output's diff, divided by max(1, max |output|), exceeds --tol (1e-4): absolute for outputs within
[-1, 1], relative to the output's largest magnitude beyond.
"""
import sys

import torch

from effvit_mm.deployment.export_tools import compare_runtime, export_parser, print_comparison
from effvit_mm.deployment.onnx_export import export_onnx
from effvit_mm.deployment.runtimes import OnnxRuntimeModel
from effvit_mm.apis.targets import build_target, input_shape


def parse_args(argv=None):
    p = export_parser(__doc__, '.onnx')
    p.add_argument('--opset', type=int, default=19)
    p.add_argument('--deploy', action='store_true', help='fold the BatchNorms first (effvit_mm.models.layers.fuse)')
    p.add_argument('--dynamic-batch', action='store_true', help='a symbolic batch dimension')
    args = p.parse_args(argv)
    if args.shape and len(args.shape) > 2:
        p.error('--shape takes H [W]')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # all of this process's PyTorch work; onnxruntime follows
    try:
        target = build_target(args.target, args.checkpoint, args.partial_checkpoint, args.deploy)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        sys.exit(f'error: {error}')
    model, shape = target.module, input_shape(args.shape) or target.shape

    x = torch.randn(args.batch, 3, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
    names = ['logits'] if target.kind == 'classifier' else [f'feat{i}' for i in range(len(out))]
    export_onnx(model, x, args.out, names, opset=args.opset, dynamic_batch=args.dynamic_batch)
    print(f'exported {args.target} ({"deploy" if args.deploy else "eval"}) at {args.batch}x3x{shape[0]}x{shape[1]} '
          f'to {args.out} (opset {args.opset}); onnx.checker: OK')

    res = compare_runtime(model, x, OnnxRuntimeModel(args.out), runs=args.runs)
    return 0 if print_comparison(res, names, args.tol, args.runs, args.batch, 'onnxruntime') else 1


if __name__ == '__main__':
    sys.exit(main())
