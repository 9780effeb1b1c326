import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath

from effvit_mm.checkpoint import CheckpointMismatchError
from effvit_mm.models.backbones.litv2 import HiLo, LITv2
from effvit_mm.models.layers.dtm import DTM

# Parameters of the classifiers in the authors' code (paper: 28M / 49M / 87M).
PARAMS = {'s': 27_844_000, 'm': 48_830_368, 'b': 86_520_704}
# Small enough to be fast; stage 2 has both Hi-Fi (1 head) and Lo-Fi (3 heads), stage 3 plain MHSA.
TINY = dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 2, 1], num_heads=[2, 2, 4, 8])


def pretrained(path, arch='s', **kwargs):
    model = LITv2(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)), **kwargs)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('arch', ['s', 'm', 'b'])
def test_official_layout_params_and_shapes(arch, official_keys):
    """Names and shapes equal the authors' mmdet backbone and, with ``norm3`` as the final ``norm``
    plus the head, their classifier (tests/data/litv2_official_keys.json, listed from their code)."""
    official = official_keys('litv2')
    model = LITv2(arch).eval()
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert own == official[arch]['dense']
    dim = model.num_features[-1]
    cls = {re.sub(r'^norm3\.', 'norm.', k): s for k, s in own.items()
           if not k.startswith(('norm1.', 'norm2.'))}
    cls.update({'head.weight': [1000, dim], 'head.bias': [1000]})
    assert cls == official[arch]['cls']
    params = sum(p.numel() for k, p in model.named_parameters() if not k.startswith(('norm1.', 'norm2.')))
    assert params + dim * 1000 + 1000 == PARAMS[arch]

    with torch.no_grad():
        out = model(torch.rand(1, 3, 225, 317))
    assert [tuple(o.shape) for o in out] == [(1, dim // 8, 57, 80), (1, dim // 4, 28, 40),
                                             (1, dim // 2, 14, 20), (1, dim, 7, 10)]


def bilinear(img, y, x):
    """img (C, H, W) sampled at float positions y, x (same shape S) -> (C, *S); zeros outside."""
    C, H, W = img.shape
    y0, x0 = y.floor(), x.floor()
    out = 0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            v = img[:, yy.clamp(0, H - 1).long(), xx.clamp(0, W - 1).long()]
            out = out + v * (wy * wx * inside)
    return out


def deform_conv_reference(x, offset, weight, bias, stride=2):
    """Deformable conv v1 with bias, no padding: tap (i, j) of output (y, x) reads the input at
    (y * stride + i + dy, x * stride + j + dx), (dy, dx) = offset channels (2t, 2t + 1), t = i * kw + j."""
    N, _, Ho, Wo = offset.shape
    _, _, kh, kw = weight.shape
    ys = (torch.arange(Ho, dtype=x.dtype) * stride).view(-1, 1)
    xs = (torch.arange(Wo, dtype=x.dtype) * stride).view(1, -1)
    out = bias.view(1, -1, 1, 1).repeat(N, 1, Ho, Wo)
    for n in range(N):
        for i in range(kh):
            for j in range(kw):
                t = i * kw + j
                sampled = bilinear(x[n], ys + i + offset[n, 2 * t], xs + j + offset[n, 2 * t + 1])
                out[n] += torch.einsum('oc,chw->ohw', weight[:, :, i, j], sampled)
    return out


def test_dtm_equals_bilinear_reference_and_fuses():
    torch.manual_seed(0)
    dtm = DTM(6).eval()
    assert dtm.dconv.conv_offset.weight.abs().sum() == 0  # starts as a plain 2x2 stride-2 conv
    with torch.no_grad():
        dtm.dconv.conv_offset.weight.normal_(0, 0.5)
        dtm.dconv.conv_offset.bias.normal_(0, 1.0)
        dtm.norm_layer.running_mean.normal_()
        dtm.norm_layer.running_var.uniform_(0.5, 2)
        x = torch.randn(2, 6, 9, 7)
        offset = dtm.dconv.conv_offset(x)
        got = dtm.dconv(x)
        expected = deform_conv_reference(x, offset, dtm.dconv.weight, dtm.dconv.bias)
        assert offset.abs().max() > 1 and got.shape == (2, 12, 4, 3)
        assert (got - expected).abs().max() < 1e-4
        fused = dtm.fuse()
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        assert (fused(x) - dtm(x)).abs().max() < 1e-4
    assert {k for k, _ in dtm.named_parameters()} == {
        'dconv.weight', 'dconv.bias', 'dconv.conv_offset.weight', 'dconv.conv_offset.bias',
        'norm_layer.weight', 'norm_layer.bias'}


def attention(q, k, v, heads):
    """Multi-head softmax(q k^T / sqrt(d)) v on tokens: q (Tq, D), k and v (Tk, D) -> (Tq, D)."""
    q, k, v = (t.reshape(len(t), heads, -1).transpose(0, 1) for t in (q, k, v))
    out = (q @ k.transpose(1, 2) * q.shape[-1] ** -0.5).softmax(-1) @ v
    return out.transpose(0, 1).reshape(out.shape[1], -1)


@torch.no_grad()
def test_hilo_equals_token_reference():
    """Odd 5x7 map, ws 2: zero-padded to 6x8; Hi-Fi in each 2x2 window, Lo-Fi from all 48 padded
    positions to the 12 pooled ones (padding included, as the authors' mmdet code); cropped back."""
    torch.manual_seed(0)
    hilo = HiLo(16, 4, window_size=2, alpha=0.5)  # 2 Hi-Fi and 2 Lo-Fi heads of 4 channels
    x = torch.randn(1, 5, 7, 16)
    xp = F.pad(x, (0, 0, 0, 1, 0, 1))[0]
    hi = torch.zeros(6, 8, 8)
    for a in range(0, 6, 2):
        for b in range(0, 8, 2):
            q, k, v = hilo.h_qkv(xp[a:a + 2, b:b + 2].reshape(4, 16)).chunk(3, -1)
            hi[a:a + 2, b:b + 2] = hilo.h_proj(attention(q, k, v, 2)).reshape(2, 2, 8)
    k, v = hilo.l_kv(xp.reshape(3, 2, 4, 2, 16).mean((1, 3)).reshape(12, 16)).chunk(2, -1)
    lo = hilo.l_proj(attention(hilo.l_q(xp.reshape(48, 16)), k, v, 2)).reshape(6, 8, 8)
    assert (hilo(x)[0] - torch.cat([hi, lo], -1)[:5, :7]).abs().max() < 1e-5

    mhsa = HiLo(16, 4, window_size=1, alpha=0.5)  # ws 1: all heads Lo-Fi, no pooling
    tokens = x.reshape(35, 16)
    k, v = mhsa.l_kv(tokens).chunk(2, -1)
    expected = mhsa.l_proj(attention(mhsa.l_q(tokens), k, v, 4))
    assert (mhsa(x).reshape(35, 16) - expected).abs().max() < 1e-5


def test_official_checkpoints_load(tmp_path, official_keys):
    """The authors' ``litv2_s.pth`` layout loads with only the output norms missing (``norm`` and
    ``head`` ignored); a detector of theirs (``backbone.`` + neck keys) loads with none missing."""
    official = official_keys('litv2')
    g = torch.Generator().manual_seed(1)
    for layout in ('cls', 'dense'):
        state = {k: torch.randn(s, generator=g) for k, s in official['s'][layout].items()}
        if layout == 'cls':
            checkpoint = {'model': state}
        else:
            checkpoint = {'state_dict': {**{f'backbone.{k}': v for k, v in state.items()},
                                         'neck.lateral_convs.0.conv.weight': torch.zeros(256, 96, 1, 1)}}
        path = tmp_path / f'litv2_s_{layout}.pth'
        torch.save(checkpoint, path)
        own = pretrained(path).state_dict()
        loaded = {k for k in own if k in state and not k.endswith('num_batches_tracked')}
        missing = set(own) - set(state)
        expected_missing = {'norm1', 'norm2', 'norm3'} if layout == 'cls' else set()
        assert {k.split('.')[0] for k in missing} == expected_missing
        for k in loaded:
            assert torch.equal(own[k], state[k]), k


def test_other_arch_fails_loudly(tmp_path):
    path = tmp_path / 'tiny.pth'
    torch.save({'model': LITv2(TINY).state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match=r'misses .*layers\.2\.blocks\.2'):
        pretrained(path, arch=dict(TINY, depths=[1, 1, 3, 1]))
    with pytest.raises(CheckpointMismatchError, match='another shape'):
        pretrained(path, arch=dict(TINY, num_heads=[2, 2, 4, 4]), local_ws=(0, 0, 2, 2))
    with pytest.raises(CheckpointMismatchError, match=r'does not have: layers\.2\.blocks\.1\..*deeper arch'):
        pretrained(path, arch=dict(TINY, depths=[1, 1, 1, 1]))  # e.g. litv2_m.pth into an S model


def test_odd_sizes_out_indices_and_window_sizes():
    model = LITv2(TINY, local_ws=(0, 3, 2, 1), out_indices=(-1, 1)).eval()
    assert model.out_indices == (1, 3) and model.num_features == [32, 128]
    assert not hasattr(model, 'norm0') and not hasattr(model, 'norm2') and hasattr(model, 'norm3')
    assert model.layers[0].blocks[0].attn is None and model.layers[3].downsample is None
    hilo = model.layers[2].blocks[0].attn
    assert (hilo.h_heads, hilo.l_heads) == (1, 3)
    assert (model.layers[3].blocks[0].attn.h_heads, model.layers[3].blocks[0].attn.l_heads) == (0, 8)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 225, 317))
    assert [tuple(o.shape) for o in out] == [(2, 32, 28, 40), (2, 128, 7, 10)]
    drop_probs = [blk.drop_path.drop_prob for stage in LITv2(TINY, drop_path_rate=0.4).layers
                  for blk in stage.blocks if isinstance(blk.drop_path, DropPath)]
    assert drop_probs == pytest.approx([0.1, 0.2, 0.3, 0.4])  # linear over the 5 blocks, the first 0


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown arch 'l'.*'b', 'm', 's'"):
        LITv2('l')
    for local_ws in ((0, 2, 1), (0, 0, -1, 1)):
        with pytest.raises(ValueError, match=r'local_ws .* one window size >= 0 per stage \(4'):
            LITv2(TINY, local_ws=local_ws)
    with pytest.raises(ValueError, match='num_heads .* must divide embed_dims'):
        LITv2(dict(TINY, num_heads=[3, 2, 4, 8]))
    with pytest.raises(ValueError, match='must double'):
        LITv2(dict(TINY, embed_dims=[16, 32, 64, 96]))
    with pytest.raises(ValueError, match='alpha'):
        LITv2(TINY, alpha=1.5)
    with pytest.raises(ValueError, match='out_indices'):
        LITv2(TINY, out_indices=(4,))
    with pytest.raises(ValueError, match='missing'):
        LITv2(dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1]))


def test_frozen_stages_and_norm_eval():
    model = LITv2(TINY, frozen_stages=2, norm_eval=True)
    model.train()
    frozen = [model.patch_embed, *model.layers[:2], model.norm1]
    trainable = [*model.layers[2:], model.norm2, model.norm3]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in trainable for p in m.parameters())
    assert not any(m.training for m in frozen) and all(m.training for m in model.layers[2:])
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 3 and not any(m.training for m in bns)


def test_with_cp_same_outputs_and_gradients():
    plain = LITv2(TINY).train()
    ckpt = LITv2(TINY, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    calls = []
    ckpt.layers[2].blocks[1].register_forward_pre_hook(lambda *a: calls.append(1))
    x = torch.rand(2, 3, 70, 54)
    outs = []
    for model in (plain, ckpt):
        outs.append(model(x))
        sum((o ** 2).sum() for o in outs[-1]).backward()
    assert len(calls) == 2  # with_cp recomputes the block in the backward pass
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-6)
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


def test_stages_after_the_last_output_do_not_run():
    """The stage loop stops at the last requested output: no DTM or block after it runs."""
    model = LITv2(TINY, out_indices=(1, )).eval()
    calls = []
    for module in (model.layers[1].downsample, model.layers[2].blocks[0], model.layers[3].blocks[0]):
        module.register_forward_pre_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert len(outs) == 1 and outs[0].shape[1:] == (TINY['embed_dims'][1], 8, 8) and calls == []
