"""The README's examples on generated data (configs/*_demo*.py): each config loads, points at the
set that the README's `tools/dataset_converters/generate_data.py` command writes, and builds its model for its classes."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import effvit_mm  # noqa: F401  (registers the models)

ROOT = Path(__file__).parents[1]
DEMOS = {  # config -> (data root, number of classes, where the model holds it)
    'mask_rcnn_shvit_s4_demococo.py': ('data/demo_coco/', 3, 'roi_head.bbox_head'),
    'shvit_s1_demoimagenet.py': ('data/demo_imagenet/', 6, 'head'),
    'fpn_litv2_s_demoade20k.py': ('data/demo_ade20k/', 4, 'decode_head'),
}


def test_every_demo_config_is_listed():
    assert {p.name for p in (ROOT / 'configs').glob('*_demo*.py')} == set(DEMOS)


@pytest.mark.parametrize('name', sorted(DEMOS))
def test_demo_config_builds(name):
    data_root, num_classes, head = DEMOS[name]
    cfg = Config.fromfile(ROOT / 'configs' / name)
    assert cfg.train_dataloader.dataset.data_root == data_root
    assert len(cfg.train_dataloader.dataset.metainfo['classes']) == num_classes
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    for part in head.split('.'):
        model = getattr(model, part)
    assert model.num_classes == num_classes
