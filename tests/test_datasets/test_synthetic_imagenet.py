import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmpretrain.datasets import CustomDataset, ImageNet

from effvit_mm.datasets import make_imagenet
from effvit_mm.datasets.synthetic_imagenet import MAX_CLASSES, class_specs

ROOT = Path(__file__).parents[2]
ARGS = dict(num_classes=5, num_train_per_class=3, num_val_per_class=2, size=48, seed=3)
FOLDERS = [f'n{i:08d}' for i in range(5)]


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet')
    return root, make_imagenet(root, **ARGS)


def test_layout(imagenet):
    root, summary = imagenet
    assert summary['folders'] == FOLDERS and summary['size'] == 48
    assert (summary['num_train'], summary['num_val']) == (15, 10)
    assert summary['classes'][:3] == ['red disc', 'green square', 'blue triangle']
    assert (root / 'meta/classes.txt').read_text().splitlines() == summary['classes']
    for split, n in (('train', 3), ('val', 2)):
        assert sorted(p.name for p in (root / split).iterdir()) == FOLDERS
        lines = (root / f'meta/{split}.txt').read_text().splitlines()
        assert len(lines) == 5 * n
        for label, folder in enumerate(FOLDERS):
            files = sorted((root / split / folder).glob('*.JPEG'))
            assert len(files) == n
            assert sorted(f'{folder}/{f.name} {label}' for f in files) == sorted(
                line for line in lines if line.startswith(folder))
            image = cv2.imread(str(files[0]))
            assert image.shape == (48, 48, 3)
    assert (root / 'train/n00000000/n00000000_00000.JPEG').is_file()
    assert (root / 'val/n00000000/ILSVRC2012_val_00000001.JPEG').is_file()


def test_classes_differ_and_are_unique():
    specs = class_specs(MAX_CLASSES)
    assert len(set(specs)) == MAX_CLASSES
    assert len({shape for shape, _ in specs[:4]}) == 4 and len({colour for _, colour in specs[:6]}) == 6


@pytest.mark.parametrize('split', ['train', 'val'])
def test_mmpretrain_reads_both_layouts(imagenet, split):
    root, summary = imagenet
    classes = summary['classes']
    folder = ImageNet(data_root=str(root), data_prefix=split, ann_file='', metainfo=dict(classes=classes))
    listed = ImageNet(data_root=str(root), data_prefix=split, ann_file=f'meta/{split}.txt',
                      metainfo=dict(classes=classes))
    by_split = ImageNet(data_root=str(root), split=split, metainfo=dict(classes=classes))  # picks meta/<split>.txt
    custom = CustomDataset(data_root=str(root), data_prefix=split)  # classes from the folder names
    n = summary[f'num_{split}']
    for dataset in (folder, listed, by_split, custom):
        assert len(dataset) == n
    assert by_split.ann_file.endswith(f'meta/{split}.txt') and folder.ann_file == ''
    pairs = sorted((d['img_path'], d['gt_label']) for d in folder.load_data_list())
    assert pairs == sorted((d['img_path'], d['gt_label']) for d in listed.load_data_list())
    assert pairs == sorted((d['img_path'], d['gt_label']) for d in custom.load_data_list())
    assert tuple(custom.CLASSES) == tuple(FOLDERS) and tuple(folder.CLASSES) == tuple(classes)
    assert {label for _, label in pairs} == set(range(5))
    assert all(Path(path).parent.name == FOLDERS[label] for path, label in pairs)


def test_deterministic_and_idempotent(imagenet, tmp_path):
    root, summary = imagenet
    files = [root / 'meta/generation.json', root / 'meta/train.txt',
             root / 'val/n00000004/ILSVRC2012_val_00000010.JPEG']
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    assert make_imagenet(root, **ARGS) == summary
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    make_imagenet(tmp_path, **ARGS)
    for name in ('meta/train.txt', 'meta/val.txt', 'meta/classes.txt', 'train/n00000002/n00000002_00001.JPEG',
                 'val/n00000003/ILSVRC2012_val_00000007.JPEG'):
        assert (root / name).read_bytes() == (tmp_path / name).read_bytes()
    other = make_imagenet(tmp_path / 'other', **dict(ARGS, seed=4))
    assert other['classes'] == summary['classes']
    assert (tmp_path / 'other/train/n00000000/n00000000_00000.JPEG').read_bytes() != \
        (root / 'train/n00000000/n00000000_00000.JPEG').read_bytes()


def test_other_parameters_replace_the_set(tmp_path):
    make_imagenet(tmp_path, num_classes=4, num_train_per_class=3, num_val_per_class=1, size=32)
    summary = make_imagenet(tmp_path, num_classes=3, num_train_per_class=2, num_val_per_class=1, size=32)
    assert summary['num_train'] == 6 and sorted(p.name for p in (tmp_path / 'train').iterdir()) == FOLDERS[:3]
    assert len((tmp_path / 'meta/train.txt').read_text().splitlines()) == 6
    assert json.loads((tmp_path / 'meta/generation.json').read_text())['params']['num_classes'] == 3
    (tmp_path / 'train/n00000001/n00000001_00001.JPEG').unlink()  # an incomplete set is made again
    assert make_imagenet(tmp_path, num_classes=3, num_train_per_class=2, num_val_per_class=1, size=32) == summary
    assert (tmp_path / 'train/n00000001/n00000001_00001.JPEG').is_file()


def test_classes_look_different(imagenet):
    """The mean colour of the pixels unlike the background separates red, green and blue classes."""
    root, _ = imagenet
    means = []
    for folder in FOLDERS[:3]:
        images = [cv2.imread(str(p))[:, :, ::-1].astype(float) for p in (root / 'train' / folder).glob('*.JPEG')]
        means.append(np.mean([img.reshape(-1, 3)[img.reshape(-1, 3).max(1) > 150].mean(0) for img in images], 0))
    assert [int(np.argmax(m)) for m in means] == [0, 1, 2]


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_classes=1), r'num_classes must be in \[2, 24\]'), (dict(num_classes=25), 'num_classes'),
    (dict(num_train_per_class=0), 'num_train_per_class must be >= 1'),
    (dict(num_val_per_class=-1), 'num_val_per_class must be >= 1'), (dict(size=16), 'size must be >= 32'),
    (dict(size=64.0), 'size must be an integer'), (dict(num_classes='4'), 'num_classes must be an integer')])
def test_bad_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        make_imagenet(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, 'tools/dataset_converters/generate_data.py', 'imagenet', '--out', str(tmp_path),
                          '--num-classes', '3', '--num-train', '2', '--num-val', '1', '--size', '32'],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert '6 train / 3 val images of 32x32 in 3 class folders' in out and out.count('\n') == 1
    assert (tmp_path / 'val/n00000002/ILSVRC2012_val_00000003.JPEG').is_file()
    bad = subprocess.run([sys.executable, 'tools/dataset_converters/generate_data.py', 'imagenet', '--out', str(tmp_path / 'x'),
                          '--num-classes', '1'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and 'num_classes must be in [2, 24]' in bad.stderr


def test_never_deletes_a_folder_it_did_not_generate(tmp_path):
    """Without the generator's meta file the root may hold a real data set: nothing is deleted."""
    real = tmp_path / 'train' / 'n01440764'  # a real ImageNet wnid
    real.mkdir(parents=True)
    (real / 'n01440764_10026.JPEG').write_bytes(b'real image')
    make_imagenet(tmp_path, num_classes=2, num_train_per_class=1, num_val_per_class=1, size=32)
    assert (real / 'n01440764_10026.JPEG').read_bytes() == b'real image'
