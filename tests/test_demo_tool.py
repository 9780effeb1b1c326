"""tools/demo.py: each task's demo config (random weights, or a saved checkpoint) draws its
predictions on a few generated images, one PNG per image; bad paths are one-line errors."""
import runpy
import sys
from pathlib import Path

import mmcv
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from effvit_mm.datasets import make_ade20k, make_coco, make_imagenet

ROOT = Path(__file__).parents[1]
CLS_CONFIG = 'configs/shvit_s1_demoimagenet.py'


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Two generated validation images per task: task -> folder."""
    root = tmp_path_factory.mktemp('demo_data')
    make_coco(root / 'coco', num_train=1, num_val=2, img_size=(160, 128))
    make_ade20k(root / 'ade', num_train=1, num_val=2, size=(64, 48))
    make_imagenet(root / 'imagenet', num_classes=2, num_train_per_class=1, num_val_per_class=1, size=64)
    return {'detection': root / 'coco/val2017', 'segmentation': root / 'ade/images/validation',
            'classification': root / 'imagenet/val'}


def scope_name():
    """The global default scope's name (None without one); mmengine restores a scope as a copy."""
    current = DefaultScope.get_current_instance()
    return current and current.scope_name


def demo(*args):
    """Run tools/demo.py with these arguments in this process."""
    old_argv = sys.argv
    sys.argv = ['tools/demo.py', *map(str, args)]
    try:
        runpy.run_path(str(ROOT / 'tools/demo.py'), run_name='__main__')
    finally:
        sys.argv = old_argv


def drawn_images(folder, out_dir):
    """(input image, drawing) pairs by name, asserting one PNG per input."""
    inputs = sorted(Path(folder).iterdir())
    assert sorted(p.name for p in Path(out_dir).iterdir()) == sorted(p.stem + '.png' for p in inputs)
    return [(mmcv.imread(p), mmcv.imread(Path(out_dir) / (p.stem + '.png'))) for p in inputs]


@pytest.mark.parametrize('task, config', [
    ('detection', 'configs/mask_rcnn_shvit_s4_demococo.py'),
    ('segmentation', 'configs/fpn_litv2_s_demoade20k.py'),
])
def test_demo_draws_each_image_at_its_size(task, config, images, tmp_path):
    before = scope_name()
    with pytest.warns(UserWarning, match='random weights'):
        demo(ROOT / config, images[task], '--out-dir', tmp_path, '--score-thr', 0.01)
    assert scope_name() == before  # the global scope is left as it was
    for image, drawing in drawn_images(images[task], tmp_path):
        assert drawing.shape == image.shape
        assert (drawing != image).any()  # something is drawn


def test_classification_demo_from_a_checkpoint(images, tmp_path):
    """A single image (inside a class folder), drawn with a saved model's weights at short edge 96."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(ROOT / CLS_CONFIG).model)
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=list('abcdef')))), checkpoint)
    image = next(Path(images['classification']).rglob('*.JPEG'))
    out_dir = tmp_path / 'out'
    demo(ROOT / CLS_CONFIG, image, '--checkpoint', checkpoint, '--out-dir', out_dir, '--resize', 96)
    drawing = mmcv.imread(out_dir / (image.stem + '.png'))
    assert drawing.shape == (96, 96, 3)


@pytest.mark.parametrize('args, message', [
    ((CLS_CONFIG, 'no/such/image.jpg'), 'error: input no/such/image.jpg not found'),
    (('configs/no_such_config.py', 'IMAGES'), 'error: config configs/no_such_config.py not found'),
    ((CLS_CONFIG, 'IMAGES', '--checkpoint', 'no/such.pth'), 'error: checkpoint no/such.pth not found'),
    ((CLS_CONFIG, 'configs/_base_'), 'error: no images'),
])
def test_bad_paths_are_one_line_errors(args, message, images, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit, match=message):
        demo(*(images['detection'] if arg == 'IMAGES' else arg for arg in args))
