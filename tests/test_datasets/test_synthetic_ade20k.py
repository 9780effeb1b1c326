import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from effvit_mm.datasets import make_ade20k
from effvit_mm.datasets.synthetic_ade20k import CLASSES, PALETTE, metainfo

ROOT = Path(__file__).parents[2]
ARGS = dict(num_train=6, num_val=3, size=(96, 80), num_classes=4, seed=3)
SPLITS = dict(training=6, validation=3)


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    return root, make_ade20k(root, **ARGS)


def test_layout_and_label_maps(ade):
    root, summary = ade
    assert summary['classes'] == list(CLASSES[:4]) and summary['palette'] == [list(c) for c in PALETTE[:4]]
    assert (summary['num_train'], summary['num_val'], summary['size']) == (6, 3, [96, 80])
    seen = set()
    for split, n in SPLITS.items():
        names = [f'{i:06d}' for i in range(1, n + 1)]
        assert sorted(p.stem for p in (root / 'images' / split).glob('*.jpg')) == names
        assert sorted(p.stem for p in (root / 'annotations' / split).glob('*.png')) == names
        for name in names:
            image = Image.open(root / 'images' / split / f'{name}.jpg')
            label = Image.open(root / 'annotations' / split / f'{name}.png')
            assert image.mode == 'RGB' and image.size == (96, 80)
            assert label.mode == 'L' and label.size == (96, 80)  # single-channel uint8
            values = np.unique(np.asarray(label))
            assert values.max() <= 4 and 0 in values and 1 in values  # "other" scribbles, background
            seen |= set(values.tolist())
    assert seen == {0, 1, 2, 3, 4}


def test_classes_differ_in_colour(ade):
    """Every class has its own mean colour in the images: the set is learnable."""
    root, _ = ade
    image = np.asarray(Image.open(root / 'images/training/000001.jpg'), float)
    label = np.asarray(Image.open(root / 'annotations/training/000001.png'))
    for k in np.unique(label[label > 1]):
        mean = image[label == k].mean(0)
        assert np.abs(mean - image[label == 1].mean(0)).max() > 40, k


def test_deterministic_and_regenerated(tmp_path, ade):
    root, _ = ade
    make_ade20k(tmp_path, **ARGS)
    for rel in ('images/training/000002.jpg', 'annotations/validation/000003.png'):
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes()
    stamp = (tmp_path / 'annotations/training/000001.png').stat().st_mtime_ns
    make_ade20k(tmp_path, **ARGS)  # same parameters: nothing written
    assert (tmp_path / 'annotations/training/000001.png').stat().st_mtime_ns == stamp
    make_ade20k(tmp_path, **dict(ARGS, num_train=2, seed=4))  # other parameters: replaced
    assert sorted(p.name for p in (tmp_path / 'images/training').glob('*.jpg')) == ['000001.jpg', '000002.jpg']
    assert sorted(p.name for p in (tmp_path / 'annotations/training').glob('*.png')) == ['000001.png', '000002.png']
    with pytest.raises(ValueError, match='num_classes'):
        make_ade20k(tmp_path / 'bad', num_classes=1)


def test_mmseg_reads_it_with_reduce_zero_label(ade):
    """BaseSegDataset with the set's metainfo: 0 ("other") -> 255 (ignored), classes 1..K -> 0..K-1."""
    root, _ = ade
    dataset = BaseSegDataset(
        data_root=str(root), img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        metainfo=metainfo(4), data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=[dict(type='LoadAnnotations')])
    assert len(dataset) == 3 and dataset.metainfo['classes'] == CLASSES[:4]
    assert dataset.metainfo['palette'] == [list(c) for c in PALETTE[:4]]
    info = dataset.get_data_info(0)
    raw = np.asarray(Image.open(info['seg_map_path']))
    loaded = LoadAnnotations()(dict(info))['gt_seg_map']
    np.testing.assert_array_equal(loaded[raw == 0], 255)
    np.testing.assert_array_equal(loaded[raw > 0], raw[raw > 0] - 1)


def test_generate_data_tool(tmp_path):
    out = tmp_path / 'ade'
    result = subprocess.run(
        [sys.executable, 'tools/dataset_converters/generate_data.py', 'ade20k', '--out', str(out), '--num-train', '3', '--num-val', '2',
         '--width', '64', '--height', '48', '--num-classes', '3'],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f'ADE20K-style set in {out}: 3 train / 2 val images of 64x48')
    assert len(list((out / 'annotations/validation').glob('*.png'))) == 2
    result = subprocess.run([sys.executable, 'tools/dataset_converters/generate_data.py', 'ade20k', '--out', str(out), '--num-classes', '9'],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith('error: num_classes')
