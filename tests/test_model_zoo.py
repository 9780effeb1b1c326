"""The model zoo: metafiles that cover every config once and agree with the configs and the README,
names in mmpretrain's ModelHub and in our tools, the metafiles' convert commands."""
import collections
import json
import shlex
import subprocess
import sys
from pathlib import Path

import mmpretrain
import pytest
import torch
from mmengine.config import Config

import effvit_mm
from effvit_mm.apis.model_zoo import README, UnknownModelError, get_entry, list_models, render_readme, resolve_config
from effvit_mm.apis.targets import build_target, test_crop
from effvit_mm.analysis.mac_count import count_entry

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / 'data'
CLASSIFIERS = list_models(codebase='mmpretrain')


def release(family, arch, seed=0):
    """A classification release in the authors' format (their keys and shapes), random values."""
    keys = json.loads((DATA / f'{family}_official_keys.json').read_text())[arch]
    keys = keys if family == 'shvit' else keys['cls']
    g = torch.Generator().manual_seed(seed)
    return {'model': {k: torch.rand(s, generator=g) + 0.5 if 'running_var' in k else
                      torch.randn(s, generator=g) * 0.1 if s else torch.tensor(0) for k, s in keys.items()}}


def test_every_config_in_exactly_one_entry():
    configs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / 'configs').glob('*.py'))
    entries = collections.Counter(Path(get_entry(n).config).relative_to(ROOT).as_posix() for n in list_models())
    assert [c for c, n in entries.items() if n > 1] == []
    assert sorted(entries) == configs
    assert len(list_models(codebase='mmpretrain')) == 13 and len(list_models(codebase='mmdet')) == 19
    assert len(list_models(codebase='mmseg')) == 7  # the paper configs (12 / 18 / 6) and one demo each


def test_entries_agree_with_their_configs():
    """Codebase = the config's default scope; the name starts with the model and the backbone's
    variant; a classifier's resolution is its test crop; results only where the paper has them."""
    algorithms = {'mmpretrain': '', 'mmdet': ('mask-rcnn_', 'retinanet_'), 'mmseg': 'fpn_'}
    for name in list_models():
        entry = get_entry(name)
        cfg = Config.fromfile(entry.config)
        assert cfg.default_scope == entry.codebase, name
        backbone = cfg.model.backbone
        variant = f'{backbone.type.lower()}-{backbone.arch}'
        assert name.startswith(algorithms[entry.codebase]) and variant in name, name
        meta = entry.metainfo.metadata.data
        assert meta['FLOPs'] > 0 and meta['Parameters'] > 0, name
        if entry.codebase == 'mmpretrain' and 'demo' not in name:
            assert test_crop(cfg) == (meta['Resolution'],) * 2, name
        released = entry.metainfo.data.get('Converted From') or {}
        assert ('demo' in name) == (not released), name
        if released.get('Weights'):
            assert released['Code'].startswith('https://github.com/'), name
        if released.get('Convert'):
            assert f'--model {name}' in released['Convert'], name


def test_readme_tables_come_from_the_metafiles():
    text = Path(README).read_text()
    assert render_readme(text) == text, 'README.md is stale: python tools/misc/model_zoo.py readme'
    stale = text.replace('| 72.8 |', '| 72.9 |', 1)  # the check fails on a README that differs
    assert stale != text and render_readme(stale) == text
    with pytest.raises(ValueError, match='model-zoo blocks'):
        render_readme(text.replace('<!-- model-zoo mmseg ', '<!-- model-zoo mmsegx ', 1))


def test_classifier_counts_match_the_metafiles():
    """FLOPs and parameters of the small classifiers as tools/analysis_tools/get_flops.py counts them (all entries:
    ``tools/misc/model_zoo.py count``, the slow test below)."""
    for name in ('shvit-s1_3rdparty_in1k', 'swiftformer-xs_3rdparty_in1k'):
        meta = get_entry(name).metainfo.metadata.data
        assert count_entry(get_entry(name)) == (meta['FLOPs'], meta['Parameters']), name


@pytest.mark.slow
def test_all_counts_match_the_metafiles():
    out = subprocess.run([sys.executable, 'tools/misc/model_zoo.py', 'count'], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_unknown_names_get_the_closest():
    with pytest.raises(UnknownModelError, match=r"unknown model 'shvit-s4_in1k'; closest: shvit-s4_3rdparty_in1k"):
        resolve_config('shvit-s4_in1k')
    with pytest.raises(FileNotFoundError, match='config configs/nope.py not found'):
        resolve_config('configs/nope.py')
    assert resolve_config('configs/shvit_s1_in1k.py') == 'configs/shvit_s1_in1k.py'
    assert resolve_config('Mask-RCNN_LITv2-S-ws4_FPN_1x_COCO') == str(ROOT / 'configs/mask_rcnn_litv2_s_ws4_coco.py')
    out = subprocess.run([sys.executable, 'tools/analysis_tools/get_flops.py', 'litv2-s_3rdparty_in1', '--shape', '64'], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith(
        "error: unknown model 'litv2-s_3rdparty_in1'; closest: litv2-s_3rdparty_in1k"), out.stderr[-2000:]


def test_mmpretrain_knows_the_classifiers():
    ours = mmpretrain.list_models('*swiftformer*')
    assert sorted(ours) == [f'swiftformer-{a}_3rdparty_in1k' for a in ('l1', 'l3', 's', 'xs')]
    hub = set(mmpretrain.list_models())
    assert set(CLASSIFIERS) <= hub and not hub & set(list_models(codebase='mmdet') + list_models(codebase='mmseg'))


def test_convert_command_and_get_model_by_name(tmp_path, mmpretrain_scope):
    """The metafile's Convert command on a release in the authors' format; mmpretrain's get_model and
    inferencer by name, our tools by name and by config path and effvit_mm.get_classifier on the release
    all give the same logits."""
    name = 'swiftformer-xs_3rdparty_in1k'
    converted = get_entry(name).metainfo.data['Converted From']
    argv = shlex.split(converted['Convert'])
    src, dst = tmp_path / argv[2], tmp_path / argv[3]
    torch.save(release('swiftformer', 'xs'), src)
    out = subprocess.run([sys.executable, str(ROOT / argv[1]), *argv[2:]], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0 and f'loads into the classifier of {name}' in out.stdout, out.stdout + out.stderr

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        by_config = build_target('configs/swiftformer_xs_in1k.py', checkpoint=str(dst)).module(x)
        by_name = build_target(name, checkpoint=str(dst)).module(x)
        hub = mmpretrain.get_model(name, pretrained=str(dst))(x, mode='tensor')
        release_file = effvit_mm.get_classifier(name, checkpoint=str(src))(x, mode='tensor')
    assert by_config.abs().max() > 0.1
    for logits in (by_name, hub, release_file):
        assert torch.equal(logits, by_config)
    # another variant's release is refused by the convert command's check
    torch.save(release('swiftformer', 's'), src)
    out = subprocess.run([sys.executable, str(ROOT / argv[1]), *argv[2:]], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 1 and 'error:' in out.stderr and 'shape' in out.stderr, out.stderr[-2000:]

    inferencer = mmpretrain.ImageClassificationInferencer(name, pretrained=str(dst), device='cpu')
    image = (torch.rand(180, 240, 3, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy()
    result = inferencer(image)[0]
    assert result['pred_scores'].shape == (1000,) and 0 <= result['pred_label'] < 1000
