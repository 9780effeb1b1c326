"""Counting multiply-adds with mmengine's ``FlopAnalyzer``, including the two ops it skips that these
models use: torchvision's deformable convolution (LITv2's DTM) and ``scaled_dot_product_attention``
(LITv2's HiLo). Like mmengine (and fvcore), "flops" are multiply-adds of convolutions, matmuls and
linear layers; element-wise ops, norms and the bilinear sampling of the deformable conv are not counted.
"""
from collections import Counter
from math import prod

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

from ..apis.targets import build_target

__all__ = ['count', 'count_entry', 'flop_analyzer', 'macs']


def deform_conv2d_flop_jit(inputs, outputs):
    """``torchvision::deform_conv2d(input, weight, offset, mask, bias, ...)``: the multiply-adds of a
    convolution of the same geometry, N * C_out * H_out * W_out * (C_in / groups) * kh * kw."""
    weight, out = get_shape(inputs[1]), get_shape(outputs[0])
    return Counter(deform_conv=prod(out) * prod(weight[1:]))


def sdpa_flop_jit(inputs, outputs):
    """``aten::scaled_dot_product_attention(q, k, v, ...)``, q (..., L, E), k (..., S, E), v (..., S, Ev):
    ``q @ k^T`` and ``attn @ v``, prod(...) * L * S * (E + Ev)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    return Counter(attention=prod(q[:-1]) * k[-2] * (q[-1] + v[-1]))


def flop_analyzer(model, inputs):
    """``FlopAnalyzer(model, inputs)`` that also counts deformable convs and fused attention."""
    return FlopAnalyzer(model, inputs).set_op_handle(**{
        'torchvision::deform_conv2d': deform_conv2d_flop_jit,
        'aten::scaled_dot_product_attention': sdpa_flop_jit,
    })


def macs(module, shape):
    """Multiply-adds of ``module`` on one (1, 3, H, W) image, ``shape`` = (H, W), on the device and in the
    dtype of its parameters; the analyzer's warnings off."""
    param = next(module.parameters())
    analyzer = flop_analyzer(module, torch.zeros(1, 3, *shape, device=param.device, dtype=param.dtype))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return int(analyzer.total())


def count(target):
    """``(multiply-adds, parameters)`` of a built :class:`~effvit_mm.apis.targets.Target` at its input shape,
    as ``tools/analysis_tools/get_flops.py`` reports them (the parameters of ``target.counted``)."""
    return macs(target.module, target.shape), sum(p.numel() for p in target.counted.parameters())


def count_entry(entry):
    """``(multiply-adds, parameters)`` of a model-zoo entry (:class:`~effvit_mm.apis.model_zoo.Entry`) as
    ``tools/analysis_tools/get_flops.py`` counts them: a classifier whole at its ``Metadata.Resolution``, a detector /
    segmentor as backbone + neck at 1333x800 / 512x512."""
    res = entry.metainfo.metadata.data.get('Resolution') if entry.codebase == 'mmpretrain' else None
    return count(build_target(entry.config, warn=False, shape=(res, res) if res else None))
