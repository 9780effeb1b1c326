"""Export helpers (``tools/export_onnx.py``, ``export_openvino.py``, ``export_aot.py``; what is exported is
built by :mod:`effvit_mm.targets`): exporting to ONNX with torch's dynamo-based exporter, checking a
runtime's outputs and speed against PyTorch, and the one flow of the tools that export the deploy form.

Three ops need a translation of their own (``custom_translation_table``), both standard ONNX:

* ``torchvision::deform_conv2d`` (LITv2's DTM) -> opset 19 ``DeformConv`` (X, W, offset, B[, mask]),
  same offset layout; torch's exporter has no translation for it. onnxruntime's CPU provider runs it.
* ``aten::scaled_dot_product_attention`` (LITv2's HiLo) -> ``Softmax(q * scale @ k^T) @ v``: the
  exporter's own translation accepts only 4D q, k, v, and HiLo's windowed attention is 5D.
* ``torchvision::roi_align`` (a deployed detector's RoI heads) -> ``RoiAlign`` (opset 16+).

onnx / onnxruntime / onnxscript (the ``onnx`` extra) are imported inside the functions that need
them.
"""
import argparse
import copy
import math
import statistics
import sys
import time

import torch

from .models.layers import OffsetDeformConv2d

__all__ = ['custom_translation_table', 'export_onnx', 'max_abs_diff', 'scaled_diff', 'compare_onnxruntime',
           'compare_runtime', 'print_comparison', 'export_parser', 'export_deploy_form']


def _deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                   dilation_h, dilation_w, groups, offset_groups, use_mask):
    """``torchvision::deform_conv2d`` -> ONNX ``DeformConv`` (opset 19); kernel_shape from W."""
    from onnxscript import opset19 as op
    attrs = dict(strides=[stride_h, stride_w], pads=[pad_h, pad_w, pad_h, pad_w],
                 dilations=[dilation_h, dilation_w], group=groups, offset_group=offset_groups)
    if use_mask:
        return op.DeformConv(input, weight, offset, bias, mask, **attrs)
    return op.DeformConv(input, weight, offset, bias, **attrs)


def _sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """``aten::scaled_dot_product_attention`` of any rank >= 2, without mask / causality / dropout
    (the only form these models use): ``Softmax(q * scale @ k^T) @ v``."""
    from onnxscript import opset19 as op
    if attn_mask is not None or is_causal or enable_gqa or dropout_p:
        raise NotImplementedError('only unmasked, non-causal attention without dropout is translated')
    rank = len(query.shape)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    attn = op.MatMul(op.Mul(query, op.Constant(value_float=float(scale))), op.Transpose(key, perm=perm))
    return op.MatMul(op.Softmax(attn, axis=-1), value)


def _roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    """``torchvision::roi_align`` (rois (K, 5): batch index, x1, y1, x2, y2) -> ONNX ``RoiAlign`` (opset 16+),
    ``half_pixel`` coordinates for ``aligned=True`` (mmcv's ``aligned``), ``output_half_pixel`` else."""
    from onnx import TensorProto
    from onnxscript import opset19 as op
    batch = op.Cast(op.Reshape(op.Slice(rois, op.Constant(value_ints=[0]), op.Constant(value_ints=[1]),
                                        op.Constant(value_ints=[1])), op.Constant(value_ints=[-1])), to=TensorProto.INT64)
    boxes = op.Slice(rois, op.Constant(value_ints=[1]), op.Constant(value_ints=[5]), op.Constant(value_ints=[1]))
    return op.RoiAlign(input, boxes, batch, coordinate_transformation_mode='half_pixel' if aligned else
                       'output_half_pixel', mode='avg', output_height=pooled_height, output_width=pooled_width,
                       sampling_ratio=sampling_ratio, spatial_scale=float(spatial_scale))


def custom_translation_table():
    """Translations of the ops the dynamo exporter lacks (see the module doc)."""
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    return {torch.ops.torchvision.deform_conv2d.default: _deform_conv2d,
            torch.ops.aten.scaled_dot_product_attention.default: _sdpa,
            torch.ops.torchvision.roi_align.default: _roi_align}


def export_onnx(model, x, path, output_names, opset=19, dynamic_batch=False, input_names=('input', ),
                dynamic_shapes=None):
    """Export ``model(x)`` (``x`` a tensor, or a tuple of the inputs named ``input_names``) to ``path`` with
    the dynamo-based exporter, then ``onnx.checker.check_model`` it. ``dynamic_batch``: a symbolic first
    dimension of the one input; ``dynamic_shapes``: torch.export's, one entry per input. Returns the
    loaded ``onnx.ModelProto``."""
    import onnx
    if opset < 19 and any(isinstance(m, OffsetDeformConv2d) for m in model.modules()):
        raise ValueError(f'deformable convolutions (LITv2) need opset >= 19 (ONNX DeformConv), not {opset}')
    inputs = tuple(x) if isinstance(x, (tuple, list)) else (x, )
    kwargs = {}
    if dynamic_batch:
        kwargs['dynamic_shapes'] = ({0: torch.export.Dim('batch', min=1, max=4096)},)
    elif dynamic_shapes is not None:
        kwargs['dynamic_shapes'] = tuple(dynamic_shapes)
    torch.onnx.export(model, inputs, path, dynamo=True, opset_version=opset, input_names=list(input_names),
                      output_names=list(output_names), custom_translation_table=custom_translation_table(),
                      verbose=False, **kwargs)
    onnx.checker.check_model(path, full_check=True)
    return onnx.load(path)


def max_abs_diff(a, b):
    """max |a - b| of two arrays / tensors of one shape (a float)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def scaled_diff(ref, got):
    """max |ref - got| / max(1, max |ref|): absolute for outputs within [-1, 1], relative to the
    output's largest magnitude beyond."""
    ref = torch.as_tensor(ref)
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    return max_abs_diff(ref, got) / scale


def _median_time(fn, runs):
    for _ in range(2):  # warm-up
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_runtime(model, x, run, runs=5):
    """``run`` (a callable ``x -> [tensor, ...]``, e.g. from :mod:`effvit_mm.runtimes`) against ``model`` in
    PyTorch on ``x``.

    Returns dict: ``diffs`` (max abs diff per output), ``scaled`` (:func:`scaled_diff` per output),
    ``torch_ips`` / ``runtime_ips`` (images/s, median of ``runs`` after two warm-up runs; None if
    ``runs`` is 0)."""
    from .runtimes import as_list
    got = run(x)
    with torch.no_grad():
        ref = as_list(model(x))
    if len(ref) != len(got):
        raise ValueError(f'{len(ref)} PyTorch outputs vs {len(got)} runtime outputs')
    res = dict(diffs=[max_abs_diff(r, g) for r, g in zip(ref, got)],
               scaled=[scaled_diff(r, g) for r, g in zip(ref, got)], torch_ips=None, runtime_ips=None)
    if runs > 0:
        with torch.no_grad():
            res['torch_ips'] = x.shape[0] / _median_time(lambda: model(x), runs)
        res['runtime_ips'] = x.shape[0] / _median_time(lambda: run(x), runs)
    return res


def print_comparison(res, names, tol, runs, batch, runtime, reference='PyTorch'):
    """Print the diff per output of a :func:`compare_runtime` result and one summary line (OK / FAIL,
    both runtimes' images/s); returns whether every scaled diff is within ``tol``."""
    for name, d, s in zip(names, res['diffs'], res['scaled']):
        print(f'  {name}: max abs diff {d:.3g} (scaled {s:.3g})')
    worst = max(res['scaled'])
    speed = 'not timed (--runs 0)' if runs <= 0 else \
        f'{reference} {res["torch_ips"]:.1f} img/s, {runtime} {res["runtime_ips"]:.1f} img/s (CPU, batch ' \
        f'{batch}, {torch.get_num_threads()} threads, median of {runs})'
    print(f'{"OK" if worst <= tol else "FAIL"}: max scaled diff {worst:.3g} (tol {tol:g}); {speed}')
    return worst <= tol


def compare_onnxruntime(model, x, path, runs=5, threads=None):
    """:func:`compare_runtime` of the ONNX file ``path`` in onnxruntime (CPUExecutionProvider), both with
    ``threads`` intra-op threads (default: PyTorch's current number; PyTorch's is restored after); the
    runtime's images/s as ``ort_ips``."""
    from .runtimes import OnnxRuntimeModel
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        res = compare_runtime(model, x, OnnxRuntimeModel(path), runs)
    finally:
        torch.set_num_threads(before)
    res['ort_ips'] = res.pop('runtime_ips')
    return res


def export_parser(doc, suffix):
    """The command line the export tools share (``tools/export_onnx.py``, ``export_openvino.py``,
    ``export_aot.py``): what to export, the output file (ending with ``suffix``), weights, input size,
    the comparison's timing, threads and tolerance."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('target', metavar='CONFIG_NAME_OR_SPEC')
    p.add_argument('out', metavar=f'OUT{suffix}')
    p.add_argument('--checkpoint')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--shape', '--res', type=int, nargs='+', help='input H [W]')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--runs', type=int, default=5, help='timed runs of each runtime (0: no timing)')
    p.add_argument('--threads', type=int, help="threads of both runtimes (default: PyTorch's)")
    p.add_argument('--tol', type=float, default=1e-4)
    p.suffix = suffix
    return p


def export_deploy_form(parser, argv, save, load, runtime, written):
    """The flow of a tool that exports the deploy form (``parser`` from :func:`export_parser`): build the
    target, fold it into its portable deploy form (:func:`~effvit_mm.models.layers.fuse`),
    ``save(deployed, x, output_names, out)``, load the file with ``load(out)`` (a callable
    ``x -> [tensor, ...]``) and compare it with the eval model in PyTorch on one random batch. ``written``
    describes the file(s) in the report. Returns the exit code; bad input, or a runtime that cannot take
    the model, exits with one line."""
    from .models.layers import fuse
    from .runtimes import RuntimeUnavailable, as_list
    from .targets import build_target, input_shape
    args = parser.parse_args(argv)
    if not args.out.endswith(parser.suffix):
        parser.error(f'OUT must end with {parser.suffix}: {args.out}')
    if args.shape and len(args.shape) > 2:
        parser.error('--shape takes H [W]')
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
        save(deployed, x, names, args.out)
        run = load(args.out)
    except RuntimeUnavailable as error:
        sys.exit(f'error: {error}')
    print(f'exported {args.target} (deploy form) at {args.batch}x3x{target.shape[0]}x{target.shape[1]} to '
          f'{args.out} ({written})')
    res = compare_runtime(target.module, x, run, runs=args.runs)
    return 0 if print_comparison(res, names, args.tol, args.runs, args.batch, runtime, 'PyTorch (eval)') else 1
