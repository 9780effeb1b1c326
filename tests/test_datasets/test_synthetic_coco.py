import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmdet.datasets import CocoDataset
from pycocotools.coco import COCO

from effvit_mm.datasets import CLASSES, make_coco

ROOT = Path(__file__).parents[2]
ARGS = dict(num_train=8, num_val=4, img_size=(128, 96), seed=3)


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    return root, make_coco(root, **ARGS)


def test_layout_and_annotations(coco):
    root, summary = coco
    assert summary['classes'] == list(CLASSES) and (summary['num_train'], summary['num_val']) == (8, 4)
    for split, n in (('train', 8), ('val', 4)):
        api = COCO(str(root / f'annotations/instances_{split}2017.json'))
        assert [(c['id'], c['name']) for c in api.loadCats(api.getCatIds())] == list(enumerate(CLASSES, 1))
        assert sorted(p.name for p in (root / f'{split}2017').glob('*.jpg')) == \
            sorted(img['file_name'] for img in api.loadImgs(api.getImgIds()))
        assert len(api.getImgIds()) == n
        assert all((img['width'], img['height']) == (128, 96) for img in api.loadImgs(api.getImgIds()))
        anns = api.loadAnns(api.getAnnIds())
        assert len(anns) == summary['num_annotations'][split] >= n
        assert len({ann['id'] for ann in anns}) == len(anns)
        for ann in anns:
            assert ann['iscrowd'] == 0 and ann['segmentation'] and all(len(p) >= 6 for p in ann['segmentation'])
            assert ann['area'] >= 0.01 * 128 * 96
            mask = api.annToMask(ann).astype(bool)
            x, y, w, h = ann['bbox']
            inside = np.zeros_like(mask)
            inside[y:y + h, x:x + w] = True
            assert mask[inside].any() and not (mask & ~inside).any()
            assert abs(mask.sum() / ann['area'] - 1) < 0.15


def test_mmdet_reads_it(coco):
    root, summary = coco
    dataset = CocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                          data_prefix=dict(img='train2017/'), metainfo=dict(classes=CLASSES), pipeline=[],
                          test_mode=False)
    assert len(dataset) == 8
    assert sum(len(dataset[i]['instances']) for i in range(len(dataset))) == summary['num_annotations']['train']


def test_deterministic_and_idempotent(coco, tmp_path):
    root, summary = coco
    files = [root / 'meta.json', root / 'annotations/instances_val2017.json', root / 'train2017/000001.jpg']
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    assert make_coco(root, **ARGS) == summary
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    make_coco(tmp_path, **ARGS)
    for name in ('annotations/instances_train2017.json', 'annotations/instances_val2017.json'):
        assert json.loads((root / name).read_text()) == json.loads((tmp_path / name).read_text())


def test_other_parameters_replace_the_set(tmp_path):
    make_coco(tmp_path, num_train=3, num_val=1, img_size=(64, 64))
    summary = make_coco(tmp_path, num_train=2, num_val=1, img_size=(64, 64))
    assert summary['num_train'] == 2 and len(list((tmp_path / 'train2017').glob('*.jpg'))) == 2
    assert len(json.loads((tmp_path / 'annotations/instances_train2017.json').read_text())['images']) == 2


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_train=0), 'num_train must be >= 1'), (dict(num_val=-1), 'num_val must be >= 1'),
    (dict(img_size=(32, 96)), r'img_size must be \(width, height\) with both >= 64'),
    (dict(img_size=(128,)), 'img_size'), (dict(max_objects=0), 'max_objects must be >= 1')])
def test_bad_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        make_coco(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, 'tools/dataset_converters/generate_data.py', 'coco', '--out', str(tmp_path), '--num-train', '2',
                          '--num-val', '1', '--width', '96', '--height', '64'], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert '2 train / 1 val images' in out and out.count('\n') == 1
    assert (tmp_path / 'val2017/000001.jpg').is_file() and (tmp_path / 'annotations/instances_val2017.json').is_file()
