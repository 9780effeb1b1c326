"""tools/demo.py: each task's demo config (random weights, or a saved checkpoint) draws its
predictions on a few generated images, one PNG per image; bad paths are one-line errors; files that
cannot be decoded are skipped, listed, and make the exit status 1; images of any size are drawn."""
import runpy
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from effvit_mm.datasets import make_ade20k, make_coco, make_imagenet
from effvit_mm.apis.inference import unreadable

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


def test_checkpoint_of_another_model_is_refused_unless_partial(images, tmp_path):
    """A classifier with another head (10 classes, not 6): one line, unless --partial-checkpoint."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cfg = Config.fromfile(ROOT / CLS_CONFIG)
        cfg.model.head.num_classes = 10
        model = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'other.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    image = next(Path(images['classification']).rglob('*.JPEG'))
    with pytest.raises(SystemExit, match=r'^error: .*other.pth does not fit ImageClassifier: 2 of another shape '
                                         r'\(head.head.l.bias \(10,\) vs \(6,\), .*--partial-checkpoint'):
        demo(ROOT / CLS_CONFIG, image, '--checkpoint', checkpoint, '--out-dir', tmp_path / 'out')
    assert not (tmp_path / 'out' / (image.stem + '.png')).exists()
    demo(ROOT / CLS_CONFIG, image, '--checkpoint', checkpoint, '--out-dir', tmp_path / 'out', '--partial-checkpoint')
    assert (tmp_path / 'out' / (image.stem + '.png')).is_file()


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


# Files the tool skips, each with the reason it gives.
UNREADABLE = {'text.jpg': 'not a decodable image', 'empty.png': 'an empty file',
              'noise.jpg': 'not a decodable image', 'folder.png': 'a directory'}


def write_unreadable(folder, names=UNREADABLE):
    """Create these files of UNREADABLE in ``folder``: text, nothing, random bytes, a folder."""
    makers = {'text.jpg': lambda p: p.write_text('not an image'), 'empty.png': lambda p: p.touch(),
              'noise.jpg': lambda p: p.write_bytes(np.random.default_rng(0).bytes(300)),
              'folder.png': lambda p: p.mkdir()}
    for name in names:
        makers[name](folder / name)


def test_unreadable_reasons(tmp_path):
    write_unreadable(tmp_path)
    assert {name: unreadable(str(tmp_path / name)) for name in UNREADABLE} == UNREADABLE
    mmcv.imwrite(np.zeros((1, 1, 3), np.uint8), str(tmp_path / 'dot.png'))
    assert unreadable(str(tmp_path / 'dot.png')) is None


@pytest.mark.parametrize('config', [CLS_CONFIG, 'configs/fpn_litv2_s_demoade20k.py'])
def test_unreadable_files_are_skipped_and_odd_sizes_drawn(config, tmp_path, capsys):
    """A 33 x 1400 strip and a 1x1 image are drawn at their size (the segmentation config makes a
    3 x 128 tensor of the strip, the classification config feeds raw images); a text file and a
    folder named as images are skipped with a warning each and listed on stderr; exit status 1."""
    folder = tmp_path / 'in'
    folder.mkdir()
    rng = np.random.default_rng(0)
    mmcv.imwrite(rng.integers(0, 256, (33, 1400, 3), np.uint8), str(folder / 'strip.jpg'))
    mmcv.imwrite(rng.integers(0, 256, (1, 1, 3), np.uint8), str(folder / 'dot.png'))
    bad = ['text.jpg', 'folder.png']
    write_unreadable(folder, bad)
    with pytest.warns(UserWarning) as warned, pytest.raises(SystemExit) as exit_info:
        demo(ROOT / config, folder, '--out-dir', tmp_path / 'out')
    assert exit_info.value.code == 1
    listed = capsys.readouterr().err.split('skipped 2 unreadable file(s):')[-1]
    for name in bad:
        message = f'{folder / name}: {UNREADABLE[name]}'
        assert message in listed and any(f'skipping {message}' == str(w.message) for w in warned)
    drawings = {p.name: mmcv.imread(p).shape for p in (tmp_path / 'out').iterdir()}
    assert drawings == {'strip.png': (33, 1400, 3), 'dot.png': (1, 1, 3)}
