"""Deformable token merging (DTM), the LITv2 downsampling layer.

Paper: LIT, https://arxiv.org/abs/2105.14217 (DTM) and LITv2, https://arxiv.org/abs/2205.13213.

DTM is a 2x2 stride-2 deformable convolution with bias (C -> 2C) whose sampling offsets come from a
zero-initialised 2x2 stride-2 ``conv_offset``, then BatchNorm and GELU. Parameter names follow the
authors' ``DeformConv2dPack`` (``dconv.weight``, ``dconv.bias``, ``dconv.conv_offset``) so their
checkpoints load; configs lower the offsets' learning rate with ``paramwise_cfg`` key ``conv_offset``.

The deformable convolution is ``torchvision.ops.deform_conv2d``, which takes the bias and needs no
compiled mmcv (for ONNX it maps one to one onto opset 19 ``DeformConv``; neither torchvision nor mmcv
registers that export). Measured on CPU (2 threads, median of 7, batch 8) against
``mmcv.ops.deform_conv2d`` (no bias) plus a bias add: identical outputs, input and offset gradients
within 1.1e-6 (relative); 96 ch 56x56: forward 40 vs 43 ms, forward+backward 265 vs 356 ms; 384 ch
14x14: forward 12.6 vs 13.4 ms, forward+backward 75 vs 94 ms (torchvision vs mmcv).
"""
import copy
import math
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

from .conv_bn import bn_scale_shift


class DeformConv2dPack(nn.Module):
    """Deformable convolution (v1) with bias that predicts its own offsets with ``conv_offset``.

    (N, in_channels, H, W) -> (N, out_channels, (H - k) // stride + 1, (W - k) // stride + 1) for
    kernel ``k`` and no padding. ``conv_offset`` (one (dy, dx) pair per kernel tap, as torchvision,
    mmcv and the authors' op lay them out) starts at zero, so the layer starts as a plain conv.
    """

    def __init__(self, in_channels, out_channels, kernel_size=2, stride=2):
        super().__init__()
        k = _pair(kernel_size)
        self.stride = _pair(stride)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *k))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.conv_offset = nn.Conv2d(in_channels, 2 * k[0] * k[1], k, self.stride)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's init, as the authors
        bound = 1 / math.sqrt(in_channels * k[0] * k[1])
        nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x):
        return deform_conv2d(x, self.conv_offset(x), self.weight, self.bias, stride=self.stride)


class DTM(nn.Module):
    """Deformable token merging: ``GELU(BN(DeformConv2dPack(x)))``, 2x2 stride 2.

    (N, C, H, W) -> (N, out_channels (default 2C), H // 2, W // 2).
    """

    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = out_channels or 2 * in_channels
        self.dconv = DeformConv2dPack(in_channels, out_channels, 2, 2)
        self.norm_layer = nn.BatchNorm2d(out_channels)
        self.act_layer = nn.GELU()

    def forward(self, x):
        return self.act_layer(self.norm_layer(self.dconv(x)))

    @torch.no_grad()
    def fuse(self):
        """The eval-mode BatchNorm folded into the deformable conv (offsets do not depend on it):
        a new ``Sequential(dconv, act_layer)`` with the same outputs."""
        scale, shift = bn_scale_shift(self.norm_layer)
        dconv = copy.deepcopy(self.dconv)
        dconv.weight.mul_(scale.view(-1, 1, 1, 1))
        dconv.bias.mul_(scale).add_(shift)
        return nn.Sequential(OrderedDict(dconv=dconv, act_layer=nn.GELU()))
