"""Folding BatchNorm into the convolution after or before it (effvit_mm.models.layers.conv_bn)."""
import pytest
import torch
import torch.nn as nn

from effvit_mm.models.layers import fuse_bn_conv, fuse_conv_bn


def random_bn(channels, seed):
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels).eval()
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(channels, generator=g))
        bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
    return bn


@pytest.mark.parametrize('bias, groups', [(True, 1), (False, 1), (True, 8)])
def test_fuse_conv_bn(bias, groups):
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=groups, bias=bias)
    bn = random_bn(16, 0)
    x = torch.randn(2, 8, 13, 11)
    with torch.no_grad():
        assert (fuse_conv_bn(conv, bn)(x) - bn(conv(x))).abs().max() < 1e-5


def test_fuse_bn_conv_exact_for_1x1_and_refused_for_padded():
    bn, conv = random_bn(8, 1), nn.Conv2d(8, 16, 1)
    x = torch.randn(2, 8, 7, 5)
    with torch.no_grad():
        assert (fuse_bn_conv(bn, conv)(x) - conv(bn(x))).abs().max() < 1e-5
    with pytest.raises(ValueError, match='padded or grouped'):
        fuse_bn_conv(bn, nn.Conv2d(8, 16, 3, padding=1))
