"""Export a classifier (its logits), a backbone or a detector's / segmentor's backbone + neck to OpenVINO IR
(OUT.xml + OUT.bin, fp32 weights) and check it against PyTorch.

    python tools/export_openvino.py CONFIG_NAME_OR_SPEC OUT.xml [--checkpoint CKPT] [--partial-checkpoint]
        [--shape H [W]] [--batch N] [--runs 5] [--threads N] [--tol 1e-4]

What is exported, and the default input size, are those of tools/export_onnx.py (a config, its model-zoo
name, or a ``family:arch`` spec). The model goes in its portable deploy form
(``effvit_mm.models.layers.fuse``: BatchNorms folded; LITv2's DTM as grid sampling + one GEMM, since
OpenVINO has no ONNX ``DeformConv``), through the ONNX exporter (opset 19), to OpenVINO's IR. The IR then
runs in OpenVINO's CPU plugin (f32, one stream, --threads or PyTorch's thread count) beside the eval-mode
model in PyTorch on the same random input: max abs diff per output, images/s of both (median of --runs),
one summary line; exit 1 if an output's diff, divided by max(1, max |output|), exceeds --tol.
"""
import argparse
import copy
import os.path as osp
import sys
import tempfile

import torch

from effvit_mm.export import compare_runtime, export_onnx, print_comparison
from effvit_mm.models.layers import fuse
from effvit_mm.runtimes import OpenVINOModel, RuntimeUnavailable, as_list, save_openvino
from effvit_mm.targets import build_target, input_shape


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('target', metavar='CONFIG_NAME_OR_SPEC')
    p.add_argument('out', metavar='OUT.xml')
    p.add_argument('--checkpoint')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--shape', '--res', type=int, nargs='+', help='input H [W]')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--runs', type=int, default=5, help='timed runs of each runtime (0: no timing)')
    p.add_argument('--threads', type=int, help="threads of both runtimes (default: PyTorch's)")
    p.add_argument('--tol', type=float, default=1e-4)
    args = p.parse_args(argv)
    if not args.out.endswith('.xml'):
        p.error(f'OUT must end with .xml (OpenVINO IR; the weights go to the .bin beside it): {args.out}')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        target = build_target(args.target, args.checkpoint, args.partial_checkpoint, shape=input_shape(args.shape))
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        sys.exit(f'error: {error}')
    deployed = copy.deepcopy(target.module)
    fuse(deployed if target.kind == 'backbone' else deployed.model.backbone)
    x = torch.randn(args.batch, 3, *target.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = as_list(deployed(x))
    names = ['logits'] if target.kind == 'classifier' else [f'feat{i}' for i in range(len(outputs))]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = osp.join(tmp, 'model.onnx')
            export_onnx(deployed, x, onnx_path, names)
            save_openvino(onnx_path, args.out)
        run = OpenVINOModel(args.out)
    except RuntimeUnavailable as error:
        sys.exit(f'error: {error}')
    print(f'exported {args.target} (deploy form) at {args.batch}x3x{target.shape[0]}x{target.shape[1]} to '
          f'{args.out} (+ .bin, fp32)')
    res = compare_runtime(target.module, x, run, runs=args.runs)
    return 0 if print_comparison(res, names, args.tol, args.runs, args.batch, 'OpenVINO', 'PyTorch (eval)') else 1


if __name__ == '__main__':
    sys.exit(main())
