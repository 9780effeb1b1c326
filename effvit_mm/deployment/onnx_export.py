"""ONNX export with torch's dynamo-based exporter (opset 19), checked by ``onnx.checker``.

Three ops need a translation of their own (``custom_translation_table``), all standard ONNX:

* ``torchvision::deform_conv2d`` (LITv2's DTM) -> opset 19 ``DeformConv`` (X, W, offset, B[, mask]),
  same offset layout; torch's exporter has no translation for it. onnxruntime's CPU provider runs it.
* ``aten::scaled_dot_product_attention`` (LITv2's HiLo) -> ``Softmax(q * scale @ k^T) @ v``: the
  exporter's own translation accepts only 4D q, k, v, and HiLo's windowed attention is 5D.
* ``torchvision::roi_align`` (a deployed detector's RoI heads) -> ``RoiAlign`` (opset 16+).

onnx / onnxruntime / onnxscript (the ``onnx`` extra) are imported inside the functions that need
them.
"""
import math
import re

import torch

from ..models.layers import OffsetDeformConv2d

__all__ = ['OnnxExportError', 'custom_translation_table', 'export_onnx']


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


class OnnxExportError(ValueError):
    """A model the ONNX exporter could not translate (its first reason in one line)."""


def _first_line(error):
    """The first line of the innermost cause of an exporter's error (the outer ones open with banners and
    run for pages), without terminal colours."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [re.sub(r'\x1b\[[0-9;]*m', '', line).strip() for line in str(error).splitlines()]
    return next((line for line in lines if line), type(error).__name__)[:300]


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
    try:
        torch.onnx.export(model, inputs, path, dynamo=True, opset_version=opset, input_names=list(input_names),
                          output_names=list(output_names), custom_translation_table=custom_translation_table(),
                          verbose=False, **kwargs)
        onnx.checker.check_model(path, full_check=True)
    except Exception as error:  # torch.export's / onnx's errors share no base class; their texts run for pages
        raise OnnxExportError(f'the ONNX export of {type(model).__name__} failed ({type(error).__name__}): '
                              f'{_first_line(error)}') from None
    return onnx.load(path)
