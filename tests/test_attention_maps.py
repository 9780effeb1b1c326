"""Attention maps of SHViT's SHSA and LITv2's HiLo (Lo-Fi), recomputed from each module's input:
they reproduce the modules' outputs (eval and deploy mode), sum to 1 over the keys, map query pixels
to tokens; the attention and Grad-CAM tools write their PNGs."""
import copy
import runpy
import sys
from pathlib import Path

import cv2
import pytest
import torch

import effvit_mm  # noqa: F401
from effvit_mm.datasets import make_imagenet
from effvit_mm.models.backbones.litv2 import LITv2, HiLo
from effvit_mm.models.backbones.shvit import SHSA, SHViT
from effvit_mm.models.layers import switch_to_deploy
from effvit_mm.visualization.attention import (Attention, attention_disruption, capture_attention, read_attention,
                                               total_variation)
from effvit_mm.visualization.cam import grad_cam
from effvit_mm.visualization.classifier import load_classifier

ROOT = Path(__file__).parents[1]
TINY_SHVIT = dict(embed_dims=[16, 24, 32], depths=[1, 2, 1], partial_dims=[4, 6, 8])
TINY_LITV2 = dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8])


def _randomise_bn(model):
    """Non-trivial BatchNorm statistics and affine parameters (fresh ones are an identity)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            for t in (m.running_mean, m.weight, m.bias):
                t.data = torch.randn(t.shape, generator=g)
            m.running_var.data = torch.rand(m.running_var.shape, generator=g) + 0.5
    return model.eval()


def _sums_to_one(attention):
    torch.testing.assert_close(attention.probs.sum(-1), torch.ones(attention.probs.shape[:-1]))
    assert attention.probs.min() >= 0


@pytest.mark.parametrize('deploy', [False, True])
def test_shsa_attention_reproduces_output(deploy):
    torch.manual_seed(0)
    module = _randomise_bn(SHSA(dim=32, qk_dim=8, pdim=12))
    if deploy:
        module = switch_to_deploy(module)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    x = torch.randn(2, 32, 5, 6)
    att = read_attention(module, x)
    assert att.probs.shape == (2, 1, 30, 30) and att.key_hw == att.query_hw == att.image_hw == (5, 6)
    _sums_to_one(att)
    mixed = (att.probs @ att.values)[:, 0].transpose(1, 2).reshape(2, 12, 5, 6)  # (B, pdim, H, W)
    with torch.no_grad():
        torch.testing.assert_close(module.proj(torch.cat([mixed, x[:, 12:]], 1)), module(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('ws', [2, 1])
def test_hilo_lofi_attention_reproduces_output(ws):
    """The Lo-Fi channels (last ``l_dim`` of HiLo's output) from the recomputed attention; a 5 x 7 map
    is padded to 6 x 8 for ws=2 (3 x 4 pooled keys)."""
    torch.manual_seed(0)
    module = HiLo(dim=32, num_heads=4, window_size=ws, alpha=0.5).eval()
    x = torch.randn(2, 5, 7, 32)
    att = read_attention(module, x)
    (Hp, Wp), keys = ((6, 8), (3, 4)) if ws == 2 else ((5, 7), (5, 7))
    assert att.probs.shape == (2, module.l_heads, Hp * Wp, keys[0] * keys[1])
    assert (att.query_hw, att.key_hw, att.image_hw) == ((Hp, Wp), keys, (5, 7))
    _sums_to_one(att)
    lofi = module.l_proj((att.probs @ att.values).transpose(1, 2).reshape(2, Hp, Wp, -1))[:, :5, :7]
    with torch.no_grad():
        out = module(x)
    torch.testing.assert_close(lofi, out[..., out.shape[-1] - lofi.shape[-1]:], rtol=1e-5, atol=1e-5)


def test_capture_on_backbones_eval_and_deploy():
    """Pre-hooks capture every attention module; deploy mode (folded Conv-BN) gives the same maps;
    the hooks are gone after the block; unknown names are an error."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 96, 96)
    expected = {SHViT: ['blocks2.3.mixer.m', 'blocks2.4.mixer.m', 'blocks3.3.mixer.m'],
                LITv2: ['layers.2.blocks.0.attn', 'layers.2.blocks.1.attn', 'layers.3.blocks.0.attn']}
    for cls, arch in ((SHViT, TINY_SHVIT), (LITv2, TINY_LITV2)):
        model = _randomise_bn(cls(arch=arch))
        with torch.no_grad(), capture_attention(model) as maps:
            model(x)
        assert list(maps) == expected[cls]
        for att in maps.values():
            _sums_to_one(att)
            assert att.image_probs().shape[:2] == (2, att.image_hw[0] * att.image_hw[1])
        deployed = switch_to_deploy(copy.deepcopy(model))
        with torch.no_grad(), capture_attention(deployed, expected[cls][-1:]) as folded:
            deployed(x)
        assert list(folded) == expected[cls][-1:]
        torch.testing.assert_close(folded[expected[cls][-1]].probs, maps[expected[cls][-1]].probs,
                                   rtol=1e-4, atol=1e-5)
        before = dict(maps)
        with torch.no_grad():
            model(x + 1)
        assert all(maps[k] is before[k] for k in before)
        with pytest.raises(ValueError, match='no attention module'):
            with capture_attention(model, ['blocks9']):
                pass


def test_query_mapping_heat_map_and_distance():
    probs = torch.softmax(torch.randn(1, 2, 16, 4), -1)  # queries: 4 x 4 grid, keys: 2 x 2 pooled
    att = Attention(probs, torch.zeros(1, 2, 4, 1), (4, 4), (2, 2), (3, 3))  # image covers 3 x 3 tokens
    assert att.query_index((0, 0), (48, 48)) == 0
    assert att.query_index((47, 47), (48, 48)) == 8 and att.query_index((24, 24), (48, 48)) == 4
    assert att.query_index((16, 0), (48, 48)) == 1 and att.query_index((0, 16), (48, 48)) == 3
    heat = att.heat_map((47, 47), (48, 48))
    assert heat.shape == (1, 48, 48)
    key_probs = probs.mean(1)[0, 2 * 4 + 2]  # token (2, 2) of the padded 4 x 4 grid
    torch.testing.assert_close(heat[0, 0, 0], key_probs[0])  # the top-left key covers tokens (0..1, 0..1)
    torch.testing.assert_close(heat[0, 47, 47], key_probs[3])  # token (2, 2) is under key (1, 1)
    assert float(total_variation(torch.tensor([1.0, 0]), torch.tensor([0, 1.0]))) == 1.0
    other = Attention(torch.softmax(torch.randn(1, 2, 16, 4), -1), att.values, (4, 4), (2, 2), (3, 3))
    assert float(attention_disruption({'a': att}, {'a': att})['a']) == 0
    assert 0 < float(attention_disruption({'a': att}, {'a': other})['a']) < 1


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    root = tmp_path_factory.mktemp('vis_imagenet')
    make_imagenet(root, num_classes=2, num_train_per_class=1, num_val_per_class=1, size=64, seed=0)
    return str(next((root / 'val').rglob('*.JPEG')))


@pytest.fixture(scope='module')
def tiny_configs(tmp_path_factory):
    """{family: config file}: the repo's SHViT demo / LITv2-S configs with tiny architectures."""
    root = tmp_path_factory.mktemp('vis_configs')
    configs = {}
    for family, base, arch in (('shvit', 'shvit_s1_demoimagenet', TINY_SHVIT), ('litv2', 'litv2_s_in1k', TINY_LITV2)):
        configs[family] = root / f'{family}.py'
        configs[family].write_text(f"_base_ = ['{ROOT / 'configs' / base}.py']\n"
                                   f"model = dict(backbone=dict(arch=dict(_delete_=True, **{arch!r})), "
                                   f"head=dict(in_channels={arch['embed_dims'][-1]}))\n")
    return configs


def _run_tool(name, argv, monkeypatch):
    """Run tools/analysis_tools/<name>.py with these arguments in this process."""
    monkeypatch.setattr(sys, 'argv', [name, *map(str, argv)])
    runpy.run_path(str(ROOT / 'tools' / 'analysis_tools' / f'{name}.py'), run_name='__main__')


@pytest.mark.parametrize('family', ['shvit', 'litv2'])
def test_vis_tools_write_pngs(family, tiny_configs, image, tmp_path, monkeypatch):
    """Random weights (a warning) on a generated image: both tools write their PNG, the attention tool
    one tile per attention module with more than one key (LITv2 at 224 px: 2 + 1; SHViT at 64: 2)."""
    config = tiny_configs[family]
    with pytest.warns(UserWarning, match='random weights'):
        _run_tool('vis_attention', [config, image, '--out', tmp_path / 'att.png', '--query', 10, 20], monkeypatch)
        _run_tool('vis_cam', [config, image, '--out', tmp_path / 'cam.png'], monkeypatch)
    att, cam = cv2.imread(str(tmp_path / 'att.png')), cv2.imread(str(tmp_path / 'cam.png'))
    tiles = 1 + (3 if family == 'litv2' else 2)
    width = 224 + 4  # tile and gap
    assert att.shape[:2] == (244, tiles * width - 4) and cam.shape[:2] == (244, 2 * width - 4)
    with pytest.raises(SystemExit, match='not found'):
        _run_tool('vis_cam', [config, image, '--checkpoint', tmp_path / 'missing.pth'], monkeypatch)


def test_grad_cam_target_layers(tiny_configs):
    """The default target is the map the head pools (LITv2's channels-last norm3, transposed); the CAM
    is an image-sized map in [0, 1] that depends on the class explained."""
    with pytest.warns(UserWarning, match='random weights'):
        model, _ = load_classifier(str(tiny_configs['litv2']))
    torch.manual_seed(0)
    pixels = torch.rand(1, 3, 96, 96)
    maps, categories, layer = grad_cam(model, pixels)
    assert layer == 'backbone.norm3' and maps.shape == (1, 96, 96)
    assert 0 <= maps.min() and maps.max() <= 1 and maps.max() > 0
    assert categories == model(pixels).argmax(1).tolist()
    other, _, _ = grad_cam(model, pixels, categories=[(categories[0] + 1) % 1000])
    assert not torch.allclose(maps, other)
    with pytest.raises(ValueError, match='no module'):
        grad_cam(model, pixels, target_layer='backbone.nothing')
