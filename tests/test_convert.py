import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from mmpretrain.registry import MODELS

import effvit_mm  # noqa: F401  (registers the backbones)
from effvit_mm.checkpoint.convert import ConversionError, detect, to_backbone, to_mmpretrain
from effvit_mm.models.family import families
from effvit_mm.checkpoint.safe_load import safe_load

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')  # see tests/conftest.py

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / 'data'
# family -> (backbone type, last stage, head type, archs), from the family specs
FAMILIES = {spec.name: (spec.type, spec.num_stages - 1, spec.head, list(spec.variants)) for spec in families()}
CASES = [(f, a) for f, (*_, archs) in FAMILIES.items() for a in archs]


def official(family, arch, part='cls'):
    """A state dict with the keys and shapes of the authors' release; tensor i is filled with i (an
    expanded scalar: no memory), so that a swap of two tensors shows."""
    keys = json.loads((DATA / f'{family}_official_keys.json').read_text())[arch]
    keys = keys if family == 'shvit' else keys[part]
    return {k: torch.tensor(i) if not shape else torch.tensor(i / 7).expand(shape)
            for i, (k, shape) in enumerate(keys.items())}


def classifier_cfg(family, arch):
    backbone, stage, head, _ = FAMILIES[family]
    dims = MODELS.get(backbone).arch_settings[arch]['embed_dims']
    return dict(type='ImageClassifier', backbone=dict(type=backbone, arch=arch, out_indices=(stage,)),
                head=dict(type=head, num_classes=1000, in_channels=dims[-1]))


def same(a, b):
    """The same keys holding the same tensor objects (the converter only renames)."""
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


def equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def fast_init(monkeypatch):
    """Skip the slow truncated-normal initialisation of the big archs (only shapes matter here)."""
    for module in ('effvit_mm.models.backbones.litv2', 'effvit_mm.models.backbones.swiftformer',
                   'effvit_mm.models.heads.cls_heads'):
        monkeypatch.setattr(f'{module}.trunc_normal_', lambda tensor, **kwargs: tensor)


@pytest.mark.parametrize('family,arch', CASES)
def test_authors_release_to_mmpretrain_keys(family, arch, fast_init):
    state = official(family, arch)
    assert detect(state) == (family, 'authors')
    converted = to_mmpretrain(state)
    model = MODELS.build(classifier_cfg(family, arch))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    assert detect(converted) == (family, 'mmpretrain')
    assert same(to_mmpretrain(converted, family), converted)  # idempotent
    backbone = to_backbone(state)
    assert same(to_backbone(converted), backbone) and same(to_backbone(backbone), backbone)
    assert not any(k.startswith(('head', 'dist_head', 'norm.')) for k in backbone)


@pytest.mark.parametrize('family,arch', [('shvit', 's1'), ('swiftformer', 'xs'), ('litv2', 's')])
def test_backbone_file_loads_through_init_cfg(family, arch, tmp_path):
    path = tmp_path / 'backbone.pth'
    state = to_backbone(to_mmpretrain(official(family, arch)))
    torch.save({'state_dict': state, 'meta': {}}, path)
    backbone = MODELS.build(dict(type=FAMILIES[family][0], arch=arch,
                                 init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    backbone.init_weights()  # strict: raises on any missing or foreign parameter
    own = backbone.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())


@pytest.mark.parametrize('family', ['shvit', 'swiftformer'])
def test_timm_layout(family):
    arch = FAMILIES[family][3][0]
    state = timm.create_model(f'{family}_{arch}').state_dict()
    assert detect(state) == (family, 'timm')
    converted = to_mmpretrain(state)
    assert same(to_mmpretrain(converted), converted)
    assert converted.keys() == to_mmpretrain(official(family, arch)).keys()


def test_errors():
    swift = official('swiftformer', 'xs')
    with pytest.raises(ConversionError, match='asked for litv2, but this is a swiftformer checkpoint'):
        to_mmpretrain(swift, 'litv2')
    with pytest.raises(ConversionError, match='asked for shvit, but this is a swiftformer checkpoint'):
        to_backbone(to_mmpretrain(swift), 'shvit')
    with pytest.raises(ConversionError, match='unknown layout'):
        to_mmpretrain({'conv.weight': torch.zeros(1)})
    with pytest.raises(ConversionError, match='unknown layout.*extra'):
        to_mmpretrain(dict(swift, **{'extra.weight': torch.zeros(1)}))
    with pytest.raises(ConversionError, match='no classifier'):
        to_mmpretrain(to_backbone(swift))
    with pytest.raises(ConversionError, match='no classifier'):
        to_mmpretrain(official('swiftformer', 'xs', part='dense'))
    with pytest.raises(ConversionError, match='neck.*init_cfg'):
        to_backbone({'backbone.patch_embed.proj.weight': torch.zeros(1), 'neck.conv.weight': torch.zeros(1)})


def load_tool():
    spec = importlib.util.spec_from_file_location('convert_checkpoint', ROOT / 'tools' / 'model_converters' / 'convert_checkpoint.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_cli(tmp_path, monkeypatch):
    src, dst = tmp_path / 'swiftformer_xs.pth', tmp_path / 'out' / 'mm.pth'
    state = official('swiftformer', 'xs')
    torch.save({'model': state, 'epoch': 299}, src)
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'model_converters' / 'convert_checkpoint.py'), str(src), str(dst)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert len(out) == 1 and 'swiftformer, authors layout' in out[0] and 'distillation' in out[0], out
    saved = safe_load(dst)
    assert equal(saved['state_dict'], to_mmpretrain(state))
    assert saved['meta']['family'] == 'swiftformer' and saved['meta']['source'] == str(src)

    tool = load_tool()  # the rest in-process: the same main()
    again = tmp_path / 'again.pth'
    monkeypatch.setattr(sys, 'argv', ['convert_checkpoint.py', str(dst), str(again), '--family', 'swiftformer'])
    tool.main()
    assert equal(safe_load(again)['state_dict'], saved['state_dict'])
    for argv, message in [([str(dst), str(again), '--family', 'litv2'],
                           'error: asked for litv2, but this is a swiftformer'),
                          ([str(tmp_path / 'nope.pth'), str(again)], 'error: checkpoint .*nope.pth not found')]:
        monkeypatch.setattr(sys, 'argv', ['convert_checkpoint.py'] + argv)
        with pytest.raises(SystemExit, match=message):
            tool.main()
