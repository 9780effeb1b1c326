"""ONNX export helpers (``tools/export_onnx.py``; what is exported is built by :mod:`effvit_mm.targets`):
exporting with torch's dynamo-based exporter, and checking the result against onnxruntime.

Two ops need a translation of their own (``custom_translation_table``), both standard ONNX:

* ``torchvision::deform_conv2d`` (LITv2's DTM) -> opset 19 ``DeformConv`` (X, W, offset, B[, mask]),
  same offset layout; torch's exporter has no translation for it. onnxruntime's CPU provider runs it.
* ``aten::scaled_dot_product_attention`` (LITv2's HiLo) -> ``Softmax(q * scale @ k^T) @ v``: the
  exporter's own translation accepts only 4D q, k, v, and HiLo's windowed attention is 5D.

onnx / onnxruntime / onnxscript (the ``onnx`` extra) are imported inside the functions that need
them.
"""
import math
import statistics
import time

import torch

from .models.layers import OffsetDeformConv2d

__all__ = ['custom_translation_table', 'export_onnx', 'max_abs_diff', 'scaled_diff', 'compare_onnxruntime']


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


def custom_translation_table():
    """Translations of the ops the dynamo exporter lacks (see the module doc)."""
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    return {torch.ops.torchvision.deform_conv2d.default: _deform_conv2d,
            torch.ops.aten.scaled_dot_product_attention.default: _sdpa}


def export_onnx(model, x, path, output_names, opset=19, dynamic_batch=False):
    """Export ``model(x)`` to ``path`` with the dynamo-based exporter (input ``input``), then
    ``onnx.checker.check_model`` it. Returns the loaded ``onnx.ModelProto``."""
    import onnx
    if opset < 19 and any(isinstance(m, OffsetDeformConv2d) for m in model.modules()):
        raise ValueError(f'deformable convolutions (LITv2) need opset >= 19 (ONNX DeformConv), not {opset}')
    kwargs = {}
    if dynamic_batch:
        kwargs['dynamic_shapes'] = ({0: torch.export.Dim('batch', min=1, max=4096)},)
    torch.onnx.export(model, (x,), path, dynamo=True, opset_version=opset, input_names=['input'],
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


def compare_onnxruntime(model, x, path, runs=5, threads=None):
    """Run ``path`` in onnxruntime (CPUExecutionProvider) and ``model`` in PyTorch on ``x``, both with
    ``threads`` intra-op threads (default: PyTorch's current number; PyTorch's is restored after).

    Returns dict: ``diffs`` (max abs diff per output), ``scaled`` (:func:`scaled_diff` per output),
    ``torch_ips`` / ``ort_ips`` (images/s, median of ``runs`` after two warm-up runs; None if
    ``runs`` is 0)."""
    import onnxruntime as ort
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        return _compare(ort, model, x, path, runs)
    finally:
        torch.set_num_threads(before)


def _compare(ort, model, x, path, runs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    got = sess.run(None, feed)
    with torch.no_grad():
        ref = model(x)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if len(ref) != len(got):
        raise ValueError(f'{len(ref)} PyTorch outputs vs {len(got)} onnxruntime outputs')
    res = dict(diffs=[max_abs_diff(r, g) for r, g in zip(ref, got)],
               scaled=[scaled_diff(r, g) for r, g in zip(ref, got)], torch_ips=None, ort_ips=None)
    if runs > 0:
        with torch.no_grad():
            res['torch_ips'] = x.shape[0] / _median_time(lambda: model(x), runs)
        res['ort_ips'] = x.shape[0] / _median_time(lambda: sess.run(None, feed), runs)
    return res
