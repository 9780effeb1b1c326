"""``switch_to_deploy()`` of every variant of every family (its two steps: the portable ``fuse``, then
the CPU kernels): the same outputs as eval mode, no BatchNorm left but the output norms (which have no
conv beside them), and a second call is a no-op."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)
from effvit_mm.models.family import families
from effvit_mm.models.layers import fuse, use_cpu_kernels
from effvit_mm.models.layers import fused as fused_module
from effvit_mm.models.layers.onednn import onednn_available

VARIANTS = [(spec.type, arch) for spec in families() for arch in spec.variants]


@pytest.mark.parametrize('family, arch', VARIANTS)
def test_deploy_equals_eval(family, arch, randomise):
    model = randomise(MODELS.build(dict(type=family, arch=arch)))
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


@pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")
@pytest.mark.parametrize('family, arch', [('SwiftFormer', 'xs'), ('LITv2', 's')])
def test_fuse_is_portable_and_cpu_kernels_a_separate_step(family, arch, randomise, monkeypatch):
    """``fuse`` alone calls no oneDNN op and leaves the layout and HiLo's attention kernel alone;
    ``use_cpu_kernels`` switches them; both give eval mode's outputs."""
    calls = []
    for name in ('conv_pointwise', 'linear_pointwise'):
        op = getattr(fused_module, name)
        monkeypatch.setattr(fused_module, name, lambda *a, _op=op, _name=name: calls.append(_name) or _op(*a))
    model = randomise(MODELS.build(dict(type=family, arch=arch)))
    hilos = [m for m in model.modules() if hasattr(m, 'use_cpu_kernels')]
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        expected = model(x)
        portable = fuse(model)(x)
        assert calls == [] and all(m.hifi_sdpa for m in hilos)
        assert not any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                       for p in model.parameters())
        assert not any(isinstance(m, nn.BatchNorm2d) for name, m in model.named_modules() if 'norm' not in name)
        fast = use_cpu_kernels(model)(x)
    assert set(calls) == {'conv_pointwise', 'linear_pointwise'} and not any(m.hifi_sdpa for m in hilos)
    assert (family == 'LITv2') == bool(hilos)
    for e, p, f in zip(expected, portable, fast):
        scale = max(1.0, e.abs().max().item())
        assert (e - p).abs().max() < 1e-4 * scale and (e - f).abs().max() < 1e-4 * scale
