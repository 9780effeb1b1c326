"""The deploy-mode modules (effvit_mm/models/layers/fused.py: ConvAct, LinearAct, ResidualConv,
fuse_activations), portable and with oneDNN's kernels, equal the plain ops, and the sampled DTM
(effvit_mm/models/layers/dtm.py) equals torchvision's deformable conv."""
import pytest
import torch
import torch.nn as nn
from torchvision.ops import deform_conv2d

from effvit_mm.models.layers import ConvAct, LinearAct, ResidualConv, fuse_activations, use_cpu_kernels
from effvit_mm.models.layers.dtm import sample_taps


@pytest.mark.parametrize('act', [None, 'relu', 'gelu'])
@pytest.mark.parametrize('groups', [1, 8])
@pytest.mark.parametrize('onednn', [False, True])
def test_conv_act_equals_the_plain_ops(act, groups, onednn):
    conv = nn.Conv2d(8, 16, 3, 2, 1, groups=groups)
    x, residual = torch.randn(2, 8, 9, 7), torch.randn(2, 16, 5, 4)
    expected = conv(x)
    expected = {None: expected, 'relu': expected.relu(), 'gelu': nn.functional.gelu(expected)}[act]
    fused = ConvAct(conv, act, onednn=onednn)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), expected)
        if act is None:
            torch.testing.assert_close(fused(x, residual=residual), conv(x) + residual)
        else:
            with pytest.raises(ValueError, match='residual add after an activation'):
                fused(x, residual=residual)
    # autograd (e.g. Grad-CAM on a deployed model) runs the plain ops and gets gradients
    x.requires_grad_(True)
    fused(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_linear_act_and_residual_conv():
    linear = nn.Linear(12, 6)
    x, residual = torch.randn(2, 5, 3, 12), torch.randn(2, 5, 3, 6)
    with torch.no_grad():
        torch.testing.assert_close(LinearAct(linear, 'gelu', onednn=True)(x), nn.functional.gelu(linear(x)))
        torch.testing.assert_close(LinearAct(linear, onednn=True)(x, residual=residual), linear(x) + residual)
        body = fuse_activations(nn.Sequential(nn.Conv2d(4, 8, 1), nn.Identity(), nn.ReLU(), nn.Conv2d(8, 4, 1)))
        assert isinstance(body[0], ConvAct) and body[0].act == 'relu' and isinstance(body[2], nn.Identity)
        y = torch.randn(2, 4, 6, 6)
        expected = y + body[3](nn.functional.relu(nn.functional.conv2d(y, body[0].weight, body[0].bias)))
        torch.testing.assert_close(use_cpu_kernels(ResidualConv(body))(y), expected)


def test_sampled_taps_equal_torchvision_deform_conv():
    """The deploy DTM's sampling + GEMM is torchvision's deformable conv, offsets reaching outside the map."""
    x = torch.randn(2, 6, 9, 7)
    offset = torch.randn(2, 8, 4, 3) * 3
    weight, bias = torch.randn(5, 6, 2, 2), torch.randn(5)
    expected = deform_conv2d(x, offset, weight, bias, stride=2)
    got = (sample_taps(x, offset, (2, 2), (2, 2)) @ weight.flatten(1).T + bias).permute(0, 3, 1, 2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
