"""A small, learnable ImageNet-style classification set, generated on the spot.

Layout under ``root`` (ImageNet's class-folder layout, plus mmpretrain's annotation files)::

    train/n00000000/n00000000_00000.JPEG ...   # one folder per class, named like ImageNet's wnids
    val/n00000000/ILSVRC2012_val_00000001.JPEG ...
    meta/train.txt          # `n00000000/n00000000_00000.JPEG 0` lines, relative to train/
    meta/val.txt            # the same for val/
    meta/classes.txt        # readable class names, one a line, in label order (sorted folder names)
    meta/generation.json    # the generation parameters: a second call with the same ones does nothing

mmpretrain's ``ImageNet`` / ``CustomDataset`` read either layout: ``data_prefix='train'`` with
``ann_file=''`` scans the class folders, ``ann_file='meta/train.txt'`` reads the list (and
``ImageNet(split='train')`` picks ``meta/train.txt`` when it exists).

Each image shows one coloured shape (disc, square, triangle or cross, in one of six colours) on a
noisy background of random tint, with jitter in position, scale and colour. A class is a (shape,
colour) pair; consecutive classes differ in both, so the first few are easy to tell apart.
"""
import os
import os.path as osp
import shutil

import cv2
import numpy as np

from .generation import reuse_or_reset, save_summary

SHAPES = ('disc', 'square', 'triangle', 'cross')
COLOURS = {  # RGB
    'red': (225, 40, 40), 'green': (40, 205, 60), 'blue': (50, 80, 235),
    'yellow': (230, 220, 40), 'magenta': (215, 50, 210), 'cyan': (40, 210, 220)}
MAX_CLASSES = len(SHAPES) * len(COLOURS)
FORMAT_VERSION = 1
MIN_SIZE = 32


def class_specs(num_classes):
    """(shape, colour) of each class; classes 0..11 differ pairwise in shape or colour parity."""
    names = list(COLOURS)
    specs = []
    for i in range(MAX_CLASSES):
        shift = i // 12  # the second dozen pairs shape and colour of opposite parity
        specs.append((SHAPES[i % len(SHAPES)], names[(i + shift) % len(names)]))
    return specs[:num_classes]


def folder_name(label):
    return f'n{label:08d}'


def _draw(image, shape, colour, rng):
    """Draw one jittered ``shape`` in ``colour`` (RGB) onto ``image`` (H, W, 3 float) in place."""
    size = image.shape[0]
    extent = rng.uniform(0.35, 0.7) * size  # side of the shape's bounding square
    half = extent / 2
    cx, cy = rng.uniform(half, size - half, 2)
    mask = np.zeros(image.shape[:2], np.uint8)
    if shape == 'disc':
        cv2.ellipse(mask, (int(cx), int(cy)), (int(half), int(half * rng.uniform(0.8, 1.0))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif shape == 'square':
        box = cv2.boxPoints(((cx, cy), (extent * 0.8, extent * 0.8), float(rng.uniform(-20, 20))))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif shape == 'triangle':
        angle = rng.uniform(-0.3, 0.3) - np.pi / 2  # apex up, tilted a little
        pts = [(cx + half * np.cos(angle + k * 2 * np.pi / 3), cy + half * np.sin(angle + k * 2 * np.pi / 3))
               for k in range(3)]
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:  # cross: two bars
        bar = max(2, int(extent * rng.uniform(0.22, 0.3)))
        x1, y1, x2, y2 = int(cx - half), int(cy - half), int(cx + half), int(cy + half)
        cv2.rectangle(mask, (x1, int(cy) - bar // 2), (x2, int(cy) + bar // 2), 1, -1)
        cv2.rectangle(mask, (int(cx) - bar // 2, y1), (int(cx) + bar // 2, y2), 1, -1)
    mask = mask.astype(bool)
    tint = np.array(COLOURS[colour], float) + rng.normal(0, 15, 3)
    image[mask] = tint + rng.normal(0, 10, (int(mask.sum()), 3))


def _make_image(rng, size, shape, colour):
    """(size, size, 3) uint8 RGB: tinted noise with one shape."""
    background = rng.uniform(30, 120) + rng.normal(0, 15, 3)
    image = background + rng.normal(0, 18, (size, size, 3))
    _draw(image, shape, colour, rng)
    return image.clip(0, 255).astype(np.uint8)


def _write_split(root, split, num_per_class, specs, size, rng):
    """Images of one split in class folders; writes ``meta/<split>.txt``; returns the image count."""
    lines = []
    count = 0
    for label, (shape, colour) in enumerate(specs):
        folder = folder_name(label)
        os.makedirs(osp.join(root, split, folder), exist_ok=True)
        for i in range(num_per_class):
            count += 1
            name = f'{folder}_{i:05d}.JPEG' if split == 'train' else f'ILSVRC2012_val_{count:08d}.JPEG'
            image = _make_image(rng, size, shape, colour)
            cv2.imwrite(osp.join(root, split, folder, name), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            lines.append(f'{folder}/{name} {label}')
    with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return count


def _check_args(num_classes, num_train_per_class, num_val_per_class, size):
    for name, value in (('num_classes', num_classes), ('num_train_per_class', num_train_per_class),
                        ('num_val_per_class', num_val_per_class), ('size', size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f'make_imagenet: {name} must be an integer, got {value!r}')
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f'make_imagenet: num_classes must be in [2, {MAX_CLASSES}], got {num_classes}')
    for name, value in (('num_train_per_class', num_train_per_class), ('num_val_per_class', num_val_per_class)):
        if value < 1:
            raise ValueError(f'make_imagenet: {name} must be >= 1, got {value}')
    if size < MIN_SIZE:
        raise ValueError(f'make_imagenet: size must be >= {MIN_SIZE}, got {size}')


def make_imagenet(root, num_classes=4, num_train_per_class=64, num_val_per_class=16, size=64, seed=0):
    """Write the set under ``root`` (see module docstring); images are ``size`` x ``size``.

    Returns a dict with the root, class names, folder names, image size and image counts per split.
    Deterministic for a seed; does nothing when ``root`` already holds a complete set made with the
    same parameters, and replaces one made with other parameters (only the folders it writes).
    """
    _check_args(num_classes, num_train_per_class, num_val_per_class, size)
    root = str(root)
    params = dict(version=FORMAT_VERSION, num_classes=int(num_classes), num_train_per_class=int(num_train_per_class),
                  num_val_per_class=int(num_val_per_class), size=int(size), seed=int(seed))
    meta_file = osp.join(root, 'meta', 'generation.json')

    def expected():
        lists = [osp.join(root, 'meta', n) for n in ('train.txt', 'val.txt', 'classes.txt')]
        if not all(osp.isfile(p) for p in lists):
            return lists
        return lists + [osp.join(root, split, line.rsplit(' ', 1)[0]) for split in ('train', 'val')
                        for line in open(osp.join(root, 'meta', f'{split}.txt')).read().splitlines()]

    def clear():  # the old set's class folders, which the new one may not all overwrite
        for split in ('train', 'val'):
            old = osp.join(root, split)
            for name in os.listdir(old) if osp.isdir(old) else []:
                if len(name) == 9 and name[0] == 'n' and name[1:].isdigit():
                    shutil.rmtree(osp.join(old, name))

    summary = reuse_or_reset(meta_file, params, expected, clear)
    if summary is not None:
        return dict(summary, root=root)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    specs = class_specs(num_classes)
    classes = [f'{colour} {shape}' for shape, colour in specs]
    with open(osp.join(root, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
    summary = dict(root=root, classes=classes, folders=[folder_name(i) for i in range(num_classes)],
                   size=int(size),
                   num_train=_write_split(root, 'train', num_train_per_class, specs, size, rngs[0]),
                   num_val=_write_split(root, 'val', num_val_per_class, specs, size, rngs[1]))
    return save_summary(meta_file, params, summary)
