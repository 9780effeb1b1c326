"""Backbones and classifiers by name in plain Python (effvit_mm.apis.get_model): the README's example, strict loading
of the release formats, entries' backbones as their configs build them."""
import re
from pathlib import Path

import pytest
import torch

import effvit_mm
from effvit_mm.checkpoint import CheckpointMismatchError
from effvit_mm.apis.model_zoo import UnknownModelError

from test_model_zoo import release

ROOT = Path(__file__).parents[1]


def readme_example():
    text = (ROOT / 'README.md').read_text()
    return re.search(r'<!-- api-example -->\n```python\n(.*?)```', text, re.S).group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The README's five lines, with the authors' release format of shvit_s4.pth in the working
    directory; the features are those of the backbone loaded from the file."""
    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    torch.save(release('shvit', 's4'), tmp_path / 'shvit_s4.pth')
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(code, scope)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == '[(1, 336, 8, 8), (1, 448, 4, 4)]' == code.split('# ')[-1].strip()
    state = scope['backbone'].state_dict()
    assert torch.equal(state['blocks3.0.1.m.pw1.c.weight'].flatten(),
                       release('shvit', 's4')['model']['blocks3.0.1.m.pw1.c.weight'].flatten())


def test_strict_loading_and_names(tmp_path):
    torch.save(release('litv2', 's'), tmp_path / 'litv2_s.pth')
    torch.save(release('shvit', 's1'), tmp_path / 'shvit_s1.pth')
    # a zoo entry's backbone as its config builds it (HiLo window 4), loaded from the release
    backbone = effvit_mm.get_backbone('mask-rcnn_litv2-s-ws4_fpn_1x_coco', checkpoint=str(tmp_path / 'litv2_s.pth'))
    assert backbone.layers[2].blocks[0].attn.ws == 4 and backbone.out_indices == (0, 1, 2, 3)
    assert not backbone.training
    with torch.no_grad():
        assert len(backbone(torch.rand(1, 3, 64, 64))) == 4
    spec = effvit_mm.get_backbone('litv2:s', out_indices=[3], drop_path_rate=0.1)
    assert spec.out_indices == (3,)
    with pytest.raises(CheckpointMismatchError, match='shape'):  # another variant's file
        effvit_mm.get_backbone('shvit-s2', checkpoint=str(tmp_path / 'shvit_s1.pth'))
    with pytest.raises(CheckpointMismatchError, match='matches none'):  # another family's file
        effvit_mm.get_backbone('swiftformer-xs', checkpoint=str(tmp_path / 'shvit_s1.pth'))
    with pytest.raises(UnknownModelError, match="closest: shvit-s1_3rdparty_in1k"):
        effvit_mm.get_backbone('shvit-s1_3rdparty')
    with pytest.raises(ValueError, match='not a classifier'):
        effvit_mm.get_classifier('retinanet_litv2-s_fpn_1x_coco')
    classifier = effvit_mm.get_classifier('shvit-s1', checkpoint=str(tmp_path / 'shvit_s1.pth'))
    with torch.no_grad():
        assert classifier(torch.rand(1, 3, 224, 224), mode='tensor').shape == (1, 1000)
