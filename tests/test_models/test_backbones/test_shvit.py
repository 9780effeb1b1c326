import pytest
import timm
import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from effvit_mm.checkpoint import CheckpointMismatchError
from effvit_mm.models import SHViT
from effvit_mm.models.backbones.shvit import shvit_from_timm

ARCHS = ['s1', 's2', 's3', 's4']
# Authors' code (random weights, BN + linear head): parameters; paper table: MACs.
PARAMS = {'s1': 6.33e6, 's2': 11.48e6, 's3': 14.25e6, 's4': 16.59e6}
MACS = {arch: macs for (arch, _), (_, macs) in SHViT.family.paper.items()}
RES = {'s1': 224, 's2': 224, 's3': 224, 's4': 256}


class Classifier(nn.Module):
    """Backbone + the authors' head (BatchNorm1d + Linear), to count what the paper counts."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = SHViT(arch, out_indices=(2,))
        dim = self.backbone.num_features[-1]
        self.head = nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, 1000))

    def forward(self, x):
        return self.head(self.backbone(x)[-1].mean((2, 3)))


@pytest.mark.parametrize('arch', ARCHS)
def test_shapes_params_flops(arch):
    model = Classifier(arch).eval()
    res = RES[arch]
    feats = SHViT(arch).eval()(torch.rand(1, 3, res, res))
    dims = SHViT.arch_settings[arch]['embed_dims']
    sizes = [-(-res // 16), -(-res // 32), -(-res // 64)]  # stride-2 convs round up
    assert [tuple(f.shape) for f in feats] == [(1, d, s, s) for d, s in zip(dims, sizes)]
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / PARAMS[arch] - 1) < 0.01, params
    timm_params = sum(p.numel() for p in timm.create_model(f'shvit_{arch}').parameters())
    assert params == timm_params
    macs = FlopAnalyzer(model, torch.rand(1, 3, res, res)).total()
    assert abs(macs / MACS[arch] - 1) < 0.03, macs


@pytest.mark.parametrize('arch', ['s1', 's4'])
def test_same_outputs_as_timm(arch, tmp_path, randomise):
    reference = randomise(timm.create_model(f'shvit_{arch}'))
    path = tmp_path / 'timm.pth'
    torch.save(reference.state_dict(), path)
    ours = SHViT(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    ours.init_weights()
    ours.eval()
    x = torch.randn(2, 3, 160, 224)
    with torch.no_grad():
        expected = reference.forward_intermediates(x, intermediates_only=True)
        got = ours(x)
    for e, g in zip(expected, got):
        assert (e - g).abs().max() < 1e-4


def test_timm_adapter_is_idempotent():
    keys = timm.create_model('shvit_s2').state_dict()
    once = shvit_from_timm(keys)
    assert shvit_from_timm(once).keys() == once.keys()


@pytest.mark.parametrize('arch', ARCHS)
def test_official_layout_loads(arch, tmp_path, official_keys):
    """Key names/shapes of the authors' released checkpoints (tests/data/shvit_official_keys.json,
    listed from the authors' model code) load with zero missing keys, heads ignored."""
    official = official_keys('shvit')[arch]
    g = torch.Generator().manual_seed(1)
    state = {f'module.{k}': torch.randn(shape, generator=g) for k, shape in official.items()}
    path = tmp_path / f'shvit_{arch}.pth'
    torch.save({'model': state, 'epoch': 299}, path)
    model = SHViT(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    own = model.state_dict()
    expected = {k for k in official if not k.startswith('head') and 'num_batches' not in k}
    assert expected == {k for k in own if 'num_batches' not in k}
    for k, v in own.items():
        if 'num_batches' not in k:
            assert torch.equal(v, state[f'module.{k}'].view_as(v)), k


def test_bad_checkpoints_fail_loudly(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': {'conv.weight': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointMismatchError, match='matches none'):
        SHViT('s1', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    state = SHViT('s1').state_dict()
    del state['blocks2.4.mixer.m.qkv.c.weight']
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match=r'misses 1 parameters.*blocks2\.4\.mixer'):
        SHViT('s1', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    torch.save(SHViT('s2').state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match='another shape'):
        SHViT('s1', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    with pytest.raises(FileNotFoundError, match='init_cfg=None'):
        SHViT('s1', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'nope.pth'))).init_weights()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown arch 's5'.*'s1'"):
        SHViT('s5')
    with pytest.raises(ValueError, match='out_indices'):
        SHViT('s1', out_indices=(3,))
    with pytest.raises(ValueError, match='frozen_stages'):
        SHViT('s1', frozen_stages=4)
    with pytest.raises(ValueError, match='missing'):
        SHViT(dict(embed_dims=[8, 16, 24], depths=[1, 1, 1]))


def test_frozen_stages_norm_eval_with_cp():
    model = SHViT('s1', frozen_stages=1, norm_eval=True, with_cp=True, drop_path_rate=0.1)
    model.train()
    assert all(not p.requires_grad for m in (model.patch_embed, model.blocks1) for p in m.parameters())
    assert all(p.requires_grad for p in model.blocks2.parameters())
    assert not model.blocks1.training and model.blocks2.training
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    model.blocks3[0][0].register_forward_hook(lambda *a: calls.append(1))
    calls = []
    out = model(torch.rand(1, 3, 64, 64))
    sum(o.sum() for o in out).backward()
    assert len(calls) == 2  # with_cp recomputes the block in the backward pass
    assert model.blocks2[3].conv.m.c.weight.grad is not None


def test_odd_sizes():
    with torch.no_grad():
        feats = SHViT('s1').eval()(torch.randn(2, 3, 131, 97))
    assert [tuple(f.shape) for f in feats] == [(2, 128, 9, 7), (2, 224, 5, 4), (2, 320, 3, 2)]


def test_every_stage_of_the_arch_runs():
    """An arch dict may give a fourth stage: ``blocks4`` is built and run (stride 128)."""
    arch = dict(embed_dims=[16, 24, 32, 40], depths=[1, 1, 1, 1], partial_dims=[4, 6, 8, 10], qk_dims=[8] * 4,
                block_types=['i', 's', 's', 's'])
    model = SHViT(arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 256, 256))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 16, 16), (24, 8, 8), (32, 4, 4), (40, 2, 2)]
