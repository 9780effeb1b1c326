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


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    return root, make_coco(root, num_train=8, num_val=4, img_size=(128, 96), seed=3)


def test_layout_and_annotations(coco):
    root, summary = coco
    for split, n in (('train', 8), ('val', 4)):
        api = COCO(str(root / f'annotations/instances_{split}2017.json'))
        assert [c['name'] for c in api.loadCats(api.getCatIds())] == list(CLASSES)
        assert len(list((root / f'{split}2017').glob('*.jpg'))) == len(api.getImgIds()) == n
        anns = api.loadAnns(api.getAnnIds())
        assert len(anns) == summary['num_annotations'][split] >= n
        for ann in anns:
            mask = api.annToMask(ann).astype(bool)
            x, y, w, h = ann['bbox']
            assert abs(mask.sum() / ann['area'] - 1) < 0.15
            inside = np.zeros_like(mask)
            inside[y:y + h + 1, x:x + w + 1] = True
            assert not (mask & ~inside).any()


def test_mmdet_reads_it(coco):
    root, summary = coco
    dataset = CocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                          data_prefix=dict(img='train2017/'), metainfo=dict(classes=CLASSES), pipeline=[])
    assert sum(len(dataset[i]['instances']) for i in range(len(dataset))) == summary['num_annotations']['train']


def test_deterministic_and_idempotent(coco, tmp_path):
    root, _ = coco
    ann = root / 'annotations/instances_val2017.json'
    mtime = os.stat(ann).st_mtime_ns
    make_coco(root, num_train=8, num_val=4, img_size=(128, 96), seed=3)
    assert os.stat(ann).st_mtime_ns == mtime
    make_coco(tmp_path, num_train=8, num_val=4, img_size=(128, 96), seed=3)
    assert json.loads(ann.read_text()) == json.loads((tmp_path / 'annotations/instances_val2017.json').read_text())


@pytest.mark.parametrize('kwargs,match', [(dict(num_train=0), 'num_train'), (dict(img_size=(32, 96)), 'img_size'),
                                          (dict(max_objects=0), 'max_objects')])
def test_bad_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        make_coco(tmp_path, **kwargs)


def test_command_line(tmp_path):
    out = subprocess.run([sys.executable, 'tools/generate_data.py', 'coco', '--out', str(tmp_path), '--num-train', '2',
                          '--num-val', '1', '--width', '96', '--height', '64'], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert '2 train / 1 val images' in out and (tmp_path / 'val2017/000001.jpg').is_file()
