"""Deformable token merging (DTM), the LITv2 downsampling layer.

Paper: LIT, https://arxiv.org/abs/2105.14217 (DTM) and LITv2, https://arxiv.org/abs/2205.13213.

DTM is a 2x2 stride-2 deformable convolution with bias (C -> 2C) whose sampling offsets come from a
zero-initialised 2x2 stride-2 ``conv_offset``, then BatchNorm and GELU. Parameter names follow the
authors' ``DeformConv2dPack`` (``dconv.weight``, ``dconv.bias``, ``dconv.conv_offset``) so their
checkpoints load; the ImageNet configs give the offsets 0.01x the lr with ``paramwise_cfg`` key
``conv_offset`` (the authors' ImageNet recipe).
A map smaller than the 2x2 kernel (one row or column, which strips and tiny images reach) is
zero-padded bottom/right to 2 first, giving one output row or column; larger maps, odd sizes
included, are not padded (the last row / column of an odd size is dropped, as the authors' DTM).

The deformable convolution is ``torchvision.ops.deform_conv2d``, which takes the bias and needs no
compiled mmcv (for ONNX it maps one to one onto opset 19 ``DeformConv``; neither torchvision nor mmcv
registers that export). Measured on CPU (2 threads, median of 7, batch 8) against
``mmcv.ops.deform_conv2d`` (no bias) plus a bias add: identical outputs, input and offset gradients
within 1.1e-6 (relative); 96 ch 56x56: forward 40 vs 43 ms, forward+backward 265 vs 356 ms; 384 ch
14x14: forward 12.6 vs 13.4 ms, forward+backward 75 vs 94 ms (torchvision vs mmcv).
"""
import copy
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

from .conv_bn import bn_scale_shift
from .fused import LinearAct


class OffsetDeformConv2d(nn.Module):
    """Deformable convolution (v1) with bias that predicts its own offsets with ``conv_offset`` (the
    parameters of mmcv's ``DeformConv2dPack``, which the authors use, computed by torchvision).

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


def pad_to_kernel(x, kernel_size):
    """Zero-pad (N, C, H, W) ``x`` bottom/right to at least ``kernel_size`` (kh, kw); ``x`` itself
    when it is already as large (so that the outputs for such sizes are untouched)."""
    pad_h, pad_w = max(kernel_size[0] - x.shape[2], 0), max(kernel_size[1] - x.shape[3], 0)
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


class DTM(nn.Module):
    """Deformable token merging: ``GELU(BN(OffsetDeformConv2d(x)))``, 2x2 stride 2, any H, W >= 1.

    (N, C, H, W) -> (N, out_channels (default 2C), max(H // 2, 1), max(W // 2, 1)); an H or W of 1
    is zero-padded to 2 (module docstring).
    """

    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = out_channels or 2 * in_channels
        self.dconv = OffsetDeformConv2d(in_channels, out_channels, 2, 2)
        self.norm_layer = nn.BatchNorm2d(out_channels)
        self.act_layer = nn.GELU()

    def forward(self, x):
        return self.act_layer(self.norm_layer(self.dconv(pad_to_kernel(x, self.dconv.weight.shape[2:]))))

    @torch.no_grad()
    def fuse(self):
        """Deploy form, :class:`SampledDTM`: the eval-mode BatchNorm folded into the deformable conv's
        weight (offsets do not depend on it), computed by sampling and one GEMM with the GELU fused."""
        scale, shift = bn_scale_shift(self.norm_layer)
        weight = self.dconv.weight * scale.view(-1, 1, 1, 1)
        return SampledDTM(copy.deepcopy(self.dconv.conv_offset), weight, self.dconv.bias * scale + shift,
                          self.dconv.stride)


def sample_taps(x, offset, kernel_size, stride):
    """The bilinear samples a deformable convolution (no padding, no dilation) multiplies by its
    weight: (N, C, H, W) ``x`` and (N, 2 * kh * kw, Ho, Wo) ``offset`` ((dy, dx) per tap, torchvision's
    layout) -> (N, Ho, Wo, C * kh * kw), channel-major (index ``c * kh * kw + tap``, the order of a
    flattened conv weight). Points outside the map read zeros, as ``torchvision.ops.deform_conv2d``.
    """
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (Ho, Wo) = kernel_size, stride, offset.shape[-2:]
    K = kh * kw
    ky, kx = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing='ij')
    offset = offset.view(N, K, 2, Ho, Wo)
    py = (torch.arange(Ho, device=x.device) * sh).view(1, 1, Ho, 1) + ky.reshape(1, K, 1, 1).to(x) + offset[:, :, 0]
    px = (torch.arange(Wo, device=x.device) * sw).view(1, 1, 1, Wo) + kx.reshape(1, K, 1, 1).to(x) + offset[:, :, 1]
    # pixel (i, j) is at normalised ((2j + 1) / W - 1, (2i + 1) / H - 1) with align_corners=False
    grid = torch.stack(((2 * px + 1) / W - 1, (2 * py + 1) / H - 1), dim=-1)  # (N, K, Ho, Wo, 2)
    grid = grid.permute(0, 2, 3, 1, 4).reshape(N, Ho, Wo * K, 2)
    taps = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    return taps.view(N, C, Ho, Wo, K).permute(0, 2, 3, 1, 4).reshape(N, Ho, Wo, C * K)


class SampledDTM(nn.Module):
    """:meth:`DTM.fuse`'s result: ``GELU(deform_conv(x) * bn_scale + bn_shift)`` as
    ``GELU(sample_taps(x) @ W^T + b)``, about twice as fast on CPU as ``torchvision.ops.deform_conv2d``
    (whose per-channel bilinear loop is sequential) and equal within float rounding.

    (N, C, H, W) -> (N, C_out, max(H // 2, 1), max(W // 2, 1)), a channels-last view (the layout
    LITv2 continues in); padded as :class:`DTM`.
    """

    def __init__(self, conv_offset, weight, bias, stride):
        super().__init__()
        self.conv_offset, self.stride, self.kernel_size = conv_offset, stride, tuple(weight.shape[2:])
        linear = nn.Linear(weight.shape[1] * weight[0, 0].numel(), weight.shape[0])
        linear.weight.data.copy_(weight.flatten(1))
        linear.bias.data.copy_(bias)
        self.linear = LinearAct(linear, 'gelu')

    def forward(self, x):
        x = pad_to_kernel(x, self.kernel_size)
        taps = sample_taps(x, self.conv_offset(x), self.kernel_size, self.stride)
        return self.linear(taps).permute(0, 3, 1, 2)
