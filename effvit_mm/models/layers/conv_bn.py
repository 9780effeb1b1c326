"""Conv-BN pairs and residual wrappers that fold into plain convolutions for deployment.

Sub-module names (``c``/``bn`` and ``m``) follow the SHViT authors' checkpoints.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath


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

    @torch.no_grad()
    def fuse(self):
        c, bn = self.c, self.bn
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        conv = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                         c.dilation, c.groups, bias=True, device=c.weight.device,
                         dtype=c.weight.dtype)
        conv.weight.copy_(c.weight * scale[:, None, None, None])
        conv.bias.copy_(bn.bias - bn.running_mean * scale)
        return conv


class Residual(nn.Module):
    """``x + drop_path(m(x))``. A residual depthwise 3x3 ``ConvBN`` fuses into one conv."""

    def __init__(self, m, drop_path=0.0):
        super().__init__()
        self.m = m
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        return x + self.drop_path(self.m(x))

    @torch.no_grad()
    def fuse(self):
        m = self.m
        is_dw3x3 = (isinstance(m, ConvBN) and m.c.groups == m.c.in_channels == m.c.out_channels
                    and m.c.kernel_size == (3, 3) and m.c.stride == (1, 1) and m.c.padding == (1, 1))
        if not is_dw3x3:
            return self
        conv = m.fuse()
        identity = F.pad(torch.ones_like(conv.weight[:, :, :1, :1]), [1, 1, 1, 1])
        conv.weight += identity
        return conv


def switch_to_deploy(model):
    """Replace, in place and recursively, every child that has ``fuse()`` by its fused form.

    Returns ``model`` (in eval mode). Outputs are unchanged up to float rounding.
    """
    def fuse_children(module):
        for name, child in module.named_children():
            if hasattr(child, 'fuse'):
                child = child.fuse()
                setattr(module, name, child)
            fuse_children(child)

    model.eval()
    fuse_children(model)
    return model
