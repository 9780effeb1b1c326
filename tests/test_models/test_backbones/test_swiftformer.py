import pytest
import timm
import torch
import torch.nn as nn
from timm.layers import DropPath

from effvit_mm.checkpoint import CheckpointMismatchError
from effvit_mm.models.backbones.swiftformer import SwiftFormer, SwiftFormerEncoder, swiftformer_from_timm

ARCHS = ['xs', 's', 'l1', 'l3']
# Authors' code, classifier with the distillation head (random weights): parameters.
PARAMS = {'xs': 3.47e6, 's': 6.09e6, 'l1': 12.05e6, 'l3': 28.5e6}


class Classifier(nn.Module):
    """Backbone + the authors' head: the last output's BatchNorm (``norm6`` here, ``norm`` in their
    classifier), global average pooling, ``head`` and ``dist_head`` (averaged at inference)."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = SwiftFormer(arch, out_indices=(3,))
        dim = self.backbone.num_features[-1]
        self.head, self.dist_head = nn.Linear(dim, 1000), nn.Linear(dim, 1000)

    def forward(self, x):
        x = self.backbone(x)[-1].mean((2, 3))
        return (self.head(x) + self.dist_head(x)) / 2


def pretrained(arch, path, **kwargs):
    model = SwiftFormer(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)), **kwargs)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('arch', ARCHS)
def test_params_and_same_outputs_as_timm(arch, tmp_path, randomise):
    params = sum(p.numel() for p in Classifier(arch).parameters())
    assert abs(params / PARAMS[arch] - 1) < 0.01, params
    reference = randomise(timm.create_model(f'swiftformer_{arch}'))
    assert params == sum(p.numel() for p in reference.parameters())

    path = tmp_path / 'timm.pth'
    torch.save(reference.state_dict(), path)
    ours = pretrained(arch, path)
    x = torch.randn(2, 3, 97, 75)
    with torch.no_grad():
        expected = reference.forward_intermediates(x, intermediates_only=True)
        got = ours(x)
        expected = [getattr(ours, f'norm{2 * i}')(e) for i, e in enumerate(expected)]
    dims = SwiftFormer.arch_settings[arch]['embed_dims']
    sizes = [(-(-97 // 2 ** (i + 2)), -(-75 // 2 ** (i + 2))) for i in range(4)]  # stride-2 convs round up
    assert [tuple(g.shape) for g in got] == [(2, d, *s) for d, s in zip(dims, sizes)]
    for e, g in zip(expected, got):
        assert (e - g).abs().max() < 1e-4


def test_out_indices_and_shapes():
    model = SwiftFormer('xs', out_indices=[-1, 1]).eval()
    assert model.out_indices == (1, 3) and model.num_features == [56, 220]
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm2') and hasattr(model, 'norm6')
    out = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in out] == [(1, 56, 8, 8), (1, 220, 2, 2)]
    early = SwiftFormer('xs', out_indices=(1,))
    early.network[3].register_forward_hook(lambda *a: pytest.fail('stage 3 ran'))
    assert early(torch.rand(1, 3, 64, 64))[0].shape == (1, 56, 8, 8)


def test_drop_path_placement():
    model = SwiftFormer('xs', drop_path_rate=0.3)
    depths, total = [3, 3, 6, 4], 16
    for i, stage in enumerate(model.stages):
        encoder = stage[-1]
        assert isinstance(encoder, SwiftFormerEncoder)
        assert isinstance(encoder.drop_path, DropPath)
        assert encoder.drop_path.drop_prob == pytest.approx(0.3 * (sum(depths[:i + 1]) - 1) / (total - 1))
    assert sum(isinstance(m, DropPath) for m in model.modules()) == 4


def test_timm_adapter_is_idempotent():
    state = timm.create_model('swiftformer_xs').state_dict()
    before = {k: v.shape for k, v in state.items()}
    once = swiftformer_from_timm(state)
    assert {k: v.shape for k, v in state.items()} == before  # input untouched
    twice = swiftformer_from_timm(once)
    assert twice.keys() == once.keys() and all(torch.equal(twice[k], once[k]) for k in once)
    assert {'patch_embed.0.weight', 'network.1.proj.weight', 'network.6.3.attn.Proj.weight',
            'network.0.0.layer_scale', 'network.6.3.layer_scale_2', 'dist_head.weight'} <= set(once)
    assert once['network.6.3.layer_scale_1'].shape == (220, 1, 1)


@pytest.mark.parametrize('arch', ARCHS)
def test_official_layout_loads(arch, tmp_path, official_keys):
    """Key names/shapes of the authors' classification and dense models
    (tests/data/swiftformer_official_keys.json, listed from the authors' code) load strictly."""
    official = official_keys('swiftformer')[arch]
    g = torch.Generator().manual_seed(1)
    for layout, prefix in (('cls', 'module.'), ('dense', '')):
        state = {f'{prefix}{k}': torch.randn(shape, generator=g) for k, shape in official[layout].items()}
        path = tmp_path / f'swiftformer_{arch}_{layout}.pth'
        torch.save({'model': state, 'epoch': 299}, path)
        own = pretrained(arch, path).state_dict()
        loaded = {k for k in official[layout] if not k.startswith(('norm.', 'head', 'dist_head'))}
        norms = {k for k in own if k.startswith(SwiftFormer.family.dense_only_keys)}
        assert loaded == set(own) - (norms if layout == 'cls' else set())
        for k in loaded - {k for k in loaded if 'num_batches' in k}:
            assert torch.equal(own[k], state[f'{prefix}{k}']), k


def test_bad_checkpoints_fail_loudly(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': {'conv.weight': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointMismatchError, match='matches none'):
        pretrained('xs', path)
    state = SwiftFormer('xs').state_dict()
    del state['network.2.2.attn.w_g']
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match=r'misses 1 parameters.*network\.2\.2\.attn\.w_g'):
        pretrained('xs', path)
    torch.save(SwiftFormer('s').state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match='another shape'):
        pretrained('xs', path)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown arch 'l2'.*'l1', 'l3', 's', 'xs'"):
        SwiftFormer('l2')
    with pytest.raises(ValueError, match='out_indices'):
        SwiftFormer('xs', out_indices=(4,))
    with pytest.raises(ValueError, match='frozen_stages'):
        SwiftFormer('xs', frozen_stages=5)
    with pytest.raises(ValueError, match='missing'):
        SwiftFormer(dict(embed_dims=[8, 16, 24, 32]))
    out_indices = [3, 0]
    SwiftFormer('xs', out_indices=out_indices)
    assert out_indices == [3, 0]


def test_frozen_stages_and_norm_eval():
    model = SwiftFormer('xs', frozen_stages=2, norm_eval=True)
    model.train()
    frozen = [model.patch_embed, *model.network[:3], model.norm0, model.norm2]
    trainable = [*model.network[3:], model.norm4, model.norm6]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in trainable for p in m.parameters())
    assert not any(m.training for m in frozen) and all(m.training for m in model.network[3:])
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)


def test_with_cp_same_gradients_and_recomputes():
    plain = SwiftFormer('xs').train()
    ckpt = SwiftFormer('xs', with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    calls = []
    ckpt.network[2][-1].attn.register_forward_hook(lambda *a: calls.append(1))
    x = torch.rand(2, 3, 64, 64)
    for model in (plain, ckpt):
        sum((o ** 2).sum() for o in model(x)).backward()
    assert len(calls) == 2  # with_cp recomputes the block in the backward pass
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
