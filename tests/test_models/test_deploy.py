"""``switch_to_deploy()`` of every variant of every family: the same outputs as eval mode, no
BatchNorm left but the output norms (which have no conv beside them), and a second call is a no-op."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)
from random_weights import randomise_

VARIANTS = [('SHViT', a) for a in ('s1', 's2', 's3', 's4')] + \
    [('SwiftFormer', a) for a in ('xs', 's', 'l1', 'l3')] + [('LITv2', a) for a in ('s', 'm', 'b')]


@pytest.mark.parametrize('family, arch', VARIANTS)
def test_deploy_equals_eval(family, arch):
    model = randomise_(MODELS.build(dict(type=family, arch=arch)))
    x = torch.randn(1, 3, 97, 75)  # not a multiple of any stride
    with torch.no_grad():
        expected = model(x)
        fused = model.switch_to_deploy()
        got = fused(x)
    assert fused is model and not fused.training
    bns = {name for name, m in fused.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert bns <= {'norm0', 'norm2', 'norm4', 'norm6'}  # SwiftFormer's output norms
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert e.shape == g.shape and (e - g).abs().max() < 1e-4 * max(1.0, e.abs().max().item())
    assert fused.switch_to_deploy() is fused
