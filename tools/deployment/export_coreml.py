"""Export a classifier (its logits) or a backbone (its feature maps) to Core ML (an ML program,
``.mlpackage``) and check the saved package.

    python tools/deployment/export_coreml.py CONFIG_NAME_OR_SPEC OUT.mlpackage [--checkpoint CKPT] [--partial-checkpoint]
        [--deploy] [--shape H [W]] [--precision fp16|fp32] [--input image|tensor] [--tol 0.05]

CONFIG (a config file or its model-zoo name, tools/misc/model_zoo.py list):
an mmpretrain classifier config; the output is ``logits`` (1, num_classes), the default input
size its test crop. The default input is ``image`` (Core ML ``ImageType``, RGB, 0..255) with the config's
``data_preprocessor`` mean / std inside the graph; ``--input tensor``: ``input``, a float32 (1, 3, H, W)
tensor, normalised by the caller. SPEC ``family:arch`` (``shvit:s1``, ``swiftformer:xs``): the backbone
alone, input ``input`` (tensor), outputs ``feat0``, ``feat1``, ..., default input 224x224. Without
``--checkpoint`` the weights are random (a warning says so); a checkpoint that does not fit the model is
refused in one line (``--partial-checkpoint``: load what fits). ``--deploy`` folds the BatchNorms
first (the portable deploy step, ``effvit_mm.models.layers.fuse``). ``--precision``: that of the
computation (fp16, Core ML's default, or fp32); inputs and outputs are float32 either way.

The model is traced (``torch.jit.trace``) and converted with coremltools (effvit_mm/deployment/export_coreml.py).
Checks: the trace reproduces the model's outputs; the saved package reloads (without compiling it, which
works off macOS) as an ML program with the expected input / output names, types and shapes. Where Core ML
can run models (macOS), the package's outputs are also compared with PyTorch's (fails above --tol,
scaled as in tools/deployment/export_onnx.py; fp16 needs a loose one). Exits 1 with a one-line message when something
is off, e.g. for LITv2, whose deformable convolution coremltools cannot convert.
"""
import argparse
import os
import sys
import time

os.environ.setdefault('TQDM_DISABLE', '1')  # coremltools' progress bars (read when tqdm is imported)

import torch  # noqa: E402

from effvit_mm.deployment.export_coreml import (PRECISIONS, ExportCheckError, Normalise, UnsupportedOpError,  # noqa: E402
                                     can_predict, check_package, compare_coreml, convert_coreml)
from effvit_mm.apis.targets import build_target, input_shape, parse_spec  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('target', metavar='CONFIG_NAME_OR_SPEC')
    p.add_argument('out', metavar='OUT.mlpackage')
    p.add_argument('--checkpoint')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--deploy', action='store_true', help='fold the BatchNorms first (effvit_mm.models.layers.fuse)')
    p.add_argument('--shape', '--res', type=int, nargs='+', help='input H [W]')
    p.add_argument('--precision', choices=PRECISIONS, default='fp16', help='compute precision')
    p.add_argument('--input', choices=('image', 'tensor'), help='image: configs only (their default)')
    p.add_argument('--tol', type=float, default=0.05, help='max scaled diff to PyTorch (macOS only)')
    args = p.parse_args(argv)
    if args.shape and len(args.shape) > 2:
        p.error('--shape takes H [W]')
    if not args.out.endswith('.mlpackage'):
        p.error('OUT must end with .mlpackage (an ML program)')
    spec = parse_spec(args.target)
    if spec and args.input == 'image':
        p.error('--input image needs a classifier config (its mean / std); a backbone spec takes a tensor')
    args.input = args.input or ('tensor' if spec else 'image')
    return args


def build(args):
    """(model, (H, W)): :func:`effvit_mm.apis.targets.build_target`, taking 0..255 RGB images with the
    config's normalisation inside if ``--input image``."""
    target = build_target(args.target, args.checkpoint, args.partial_checkpoint, args.deploy)
    model, cfg = target.module, target.cfg
    if args.input == 'image':
        pre = cfg.get('data_preprocessor') or cfg.model.get('data_preprocessor') or {}
        mean_std = (pre.get('mean'), pre.get('std'))
        if None in mean_std:
            raise ExportCheckError(f'{args.target}: no data_preprocessor mean / std: use --input tensor')
        model = Normalise(model, *mean_std)
    return model.eval(), input_shape(args.shape) or target.shape


def sample_input(res, image):
    """A (1, 3, H, W) input: 0..255 integers (as floats) for an image input, else normal noise."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (1, 3, *res), generator=g).float() if image else torch.randn(1, 3, *res, generator=g)


def fmt(shape):
    return 'x'.join(map(str, shape))


def export(args):
    model, res = build(args)
    image = args.input == 'image'
    x = sample_input(res, image)
    with torch.no_grad():
        out = model(x)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    names = [f'feat{i}' for i in range(len(outs))] if parse_spec(args.target) else ['logits']

    t0 = time.perf_counter()
    convert_coreml(model, x, args.out, names, image_input=image, precision=args.precision)
    took = time.perf_counter() - t0
    print(f'converted {args.target} ({"deploy" if args.deploy else "eval"}, {args.precision}) at {fmt(x.shape)} '
          f'to {args.out} in {took:.1f} s (trace + convert)')

    inputs = [('image', 'image RGB', tuple(x.shape)) if image else ('input', 'FLOAT32', tuple(x.shape))]
    outputs = [(n, 'FLOAT32', tuple(o.shape)) for n, o in zip(names, outs)]
    check_package(args.out, inputs, outputs)
    for role, (name, kind, shape) in [('input', f) for f in inputs] + [('output', f) for f in outputs]:
        print(f'  {role} {name}: {kind} {fmt(shape)}')
    print('  reloaded: mlProgram, inputs / outputs as expected')

    if not can_predict():
        print('OK (not run: the Core ML runtime needs macOS)')
        return 0
    diffs = compare_coreml(model, x, args.out, names, image_input=image)
    for name, d in zip(names, diffs):
        print(f'  {name}: scaled diff to PyTorch {d:.3g}')
    ok = max(diffs) <= args.tol
    print(f'{"OK" if ok else "FAIL"}: max scaled diff {max(diffs):.3g} (tol {args.tol:g})')
    return 0 if ok else 1


def main(argv=None):
    args = parse_args(argv)
    try:
        return export(args)
    except (UnsupportedOpError, ExportCheckError, FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {args.target}: {e}')


if __name__ == '__main__':
    sys.exit(main())
