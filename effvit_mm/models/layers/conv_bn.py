"""Conv-BN pairs and residual wrappers that fold into plain convolutions for deployment.

``fuse_conv_bn`` / ``fuse_bn_conv`` fold an eval-mode BatchNorm into the convolution after / before it;
the families' modules call them from their ``fuse()`` methods, and :func:`~.deploy.fuse` walks a
model replacing every module that has ``fuse()`` by its result. Sub-module names of ``ConvBN``
(``c``/``bn``) and ``Residual`` (``m``) follow the SHViT authors' checkpoints.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath

from .fused import ConvAct, ResidualConv


def bn_scale_shift(bn):
    """Per-channel (scale, shift) with ``bn(x) == x * scale + shift`` in eval mode."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    return scale, bn.bias - bn.running_mean * scale


def _conv_with_bias(conv, weight, bias):
    """A new ``Conv2d`` with ``conv``'s geometry and the given weight and bias."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=weight.device, dtype=weight.dtype)
    fused.weight.copy_(weight)
    fused.bias.copy_(bias)
    return fused


@torch.no_grad()
def fuse_conv_bn(conv, bn):
    """``bn(conv(x))`` as one ``Conv2d`` (``conv`` with or without bias; ``bn`` in eval mode)."""
    scale, shift = bn_scale_shift(bn)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return _conv_with_bias(conv, conv.weight * scale.view(-1, 1, 1, 1), bias)


@torch.no_grad()
def fuse_bn_conv(bn, conv):
    """``conv(bn(x))`` as one ``Conv2d``; exact only for unpadded, ungrouped convs (e.g. 1x1)."""
    if conv.groups != 1 or conv.padding not in ((0, 0), 'valid'):
        raise ValueError('fuse_bn_conv: a BatchNorm before a padded or grouped conv does not fold '
                         'exactly (padding would see the BatchNorm shift)')
    scale, shift = bn_scale_shift(bn)
    bias = torch.einsum('oihw,i->o', conv.weight, shift)
    if conv.bias is not None:
        bias = bias + conv.bias
    return _conv_with_bias(conv, conv.weight * scale.view(1, -1, 1, 1), bias)


class ConvBN(nn.Sequential):
    """``Conv2d`` without bias followed by ``BatchNorm2d``; ``fuse()`` returns one ``Conv2d``.

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).
    """

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0,
                 groups=1, bn_weight_init=1.0):
        super().__init__()
        self.add_module('c', nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                       groups=groups, bias=False))
        self.add_module('bn', nn.BatchNorm2d(out_channels))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)

    def fuse(self):
        return fuse_conv_bn(self.c, self.bn)


class Residual(nn.Module):
    """``x + drop_path(m(x))``. In deploy mode a residual depthwise 3x3 conv becomes one conv (identity
    folded into its centre tap), and a residual Sequential ending in a conv adds ``x`` inside that conv
    (:class:`~effvit_mm.models.layers.fused.ResidualConv`)."""

    def __init__(self, m, drop_path=0.0):
        super().__init__()
        self.m = m
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        return x + self.drop_path(self.m(x))

    @torch.no_grad()
    def fuse(self):
        """Called after ``m`` is fused (``ConvBN`` -> ``Conv2d``, see :func:`~.deploy.fuse`)."""
        m = self.m
        if isinstance(m, nn.Conv2d) and m.groups == m.in_channels == m.out_channels and \
                m.kernel_size == (3, 3) and m.stride == (1, 1) and m.padding == (1, 1):
            m.weight += F.pad(torch.ones_like(m.weight[:, :, :1, :1]), [1, 1, 1, 1])
            return m
        if isinstance(m, nn.Sequential) and isinstance(m[-1], (nn.Conv2d, ConvAct)):
            return ResidualConv(m)
        return self
