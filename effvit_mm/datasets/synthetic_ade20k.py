"""A small, learnable ADE20K-style semantic-segmentation set, generated on the spot.

Layout under ``root`` (that of ``ADEChallengeData2016``)::

    images/training/000001.jpg ...        annotations/training/000001.png ...
    images/validation/000001.jpg ...      annotations/validation/000001.png ...
    meta.json            # the generation parameters: a second call with the same ones does nothing

Label maps are single-channel uint8 PNGs with the ADE20K convention: 0 is "other" (ignored), the
classes are 1..K. With ``reduce_zero_label=True`` (as mmseg's ADE20K configs) the model sees classes
0..K-1 and 255 (ignored) where the map holds 0.

Images: class 1 ('background') is the dark noisy ground; classes 2..K are large rectangles and
ellipses, each class with its own colour and texture (flat, stripes, checks, ...); a few thin grey
scribbles are labelled 0 ("other"), so the ignore index is exercised.

mmseg's ``ADE20KDataset`` has the 150 fixed ADE20K classes, so a config points at this set with
mmseg's ``BaseSegDataset`` and the set's own classes, e.g. for ``make_ade20k('data/demo_ade20k')``::

    dataset = dict(type='BaseSegDataset', data_root='data/demo_ade20k', img_suffix='.jpg',
                   seg_map_suffix='.png', reduce_zero_label=True,
                   metainfo=dict(classes=('background', 'red_flat', 'green_hstripes', 'blue_vstripes'),
                                 palette=[[40, 40, 40], [220, 40, 40], [40, 200, 60], [50, 80, 230]]),
                   data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'))

(the first K entries of ``CLASSES`` / ``PALETTE``, which ``metainfo(K)`` returns; the generator's
summary holds them too) and ``decode_head=dict(num_classes=K)``. (``ADE20KDataset`` with ``metainfo`` classes that are not
ADE20K names fails: mmseg builds a label map from the old class names.)
"""
import os
import os.path as osp

import cv2
import numpy as np

from .generation import remove_numbered, reuse_or_reset, save_summary, split_params

CLASSES = ('background', 'red_flat', 'green_hstripes', 'blue_vstripes', 'yellow_checks', 'magenta_dots',
           'cyan_diagonal', 'orange_flat')
PALETTE = ((40, 40, 40), (220, 40, 40), (40, 200, 60), (50, 80, 230), (230, 220, 40), (210, 50, 210),
           (40, 210, 210), (240, 140, 30))  # RGB, the colour of each class in images and drawings
FORMAT_VERSION = 1
SPLITS = dict(train='training', val='validation')


def metainfo(num_classes):
    """``metainfo`` of a set made with ``num_classes`` classes, for ``BaseSegDataset``."""
    return dict(classes=CLASSES[:num_classes], palette=[list(c) for c in PALETTE[:num_classes]])


def _texture(k, h, w, rng):
    """(h, w) multiplicative pattern in [0.45, 1] of class index ``k`` (1-based, k >= 2)."""
    yy, xx = np.mgrid[0:h, 0:w]
    period = 6
    kind = (k - 2) % 6
    if kind == 0:
        pattern = np.ones((h, w))
    elif kind == 1:
        pattern = (yy // (period // 2)) % 2
    elif kind == 2:
        pattern = (xx // (period // 2)) % 2
    elif kind == 3:
        pattern = ((yy // period) + (xx // period)) % 2
    elif kind == 4:
        pattern = ((yy % period < 3) & (xx % period < 3)).astype(float)
    else:
        pattern = ((xx + yy) // (period // 2)) % 2
    return 0.45 + 0.55 * pattern


def _make_image(rng, width, height, num_classes):
    """One image (H, W, 3 uint8 RGB) and its label map (H, W uint8: 0 other, 1..K classes)."""
    image = rng.normal(PALETTE[0][0], 12, (height, width, 3))
    label = np.ones((height, width), np.uint8)
    num_shapes = int(rng.integers(2, 5)) if num_classes > 1 else 0
    for _ in range(num_shapes):
        k = int(rng.integers(2, num_classes + 1))  # 1-based class of the shape
        w = int(rng.uniform(0.25, 0.6) * width)
        h = int(rng.uniform(0.25, 0.6) * height)
        x1, y1 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        mask = np.zeros((height, width), np.uint8)
        if rng.random() < 0.5:
            cv2.rectangle(mask, (x1, y1), (x1 + w - 1, y1 + h - 1), 1, -1)
        else:
            cv2.ellipse(mask, (x1 + w // 2, y1 + h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
        mask = mask.astype(bool)
        colour = np.array(PALETTE[k - 1], float) + rng.normal(0, 10, 3)
        pattern = _texture(k, height, width, rng)[..., None]
        image[mask] = (colour * pattern + rng.normal(0, 8, (height, width, 3)))[mask]
        label[mask] = k
    other = np.zeros((height, width), np.uint8)  # thin grey scribbles: "other", label 0
    for _ in range(int(rng.integers(1, 3))):
        pts = np.stack([rng.integers(0, width, 3), rng.integers(0, height, 3)], 1).astype(np.int32)
        cv2.polylines(other, [pts], False, 1, thickness=2)
    other = other.astype(bool)
    image[other] = 128 + rng.normal(0, 5, (other.sum(), 3))
    label[other] = 0
    return image.clip(0, 255).astype(np.uint8), label


def _check_args(num_train, num_val, size, num_classes):
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train} and {num_val}')
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f'size must be (width, height), both >= 16, got {size}')
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f'num_classes must be in [2, {len(CLASSES)}], got {num_classes}')


def make_ade20k(root, num_train=64, num_val=16, size=(128, 96), num_classes=4, seed=0):
    """Write the set under ``root`` (module docstring), images of ``size`` = (width, height), the same
    for the same seed; a complete set made with the same parameters is kept as it is, one made with
    other parameters is replaced. Returns a dict: root, classes, palette, image counts, size."""
    _check_args(num_train, num_val, size, num_classes)
    width, height = map(int, size)
    params, counts = split_params(FORMAT_VERSION, num_train, num_val, size=[width, height], num_classes=num_classes,
                                  seed=seed)
    meta_file = osp.join(root, 'meta.json')
    dirs = [osp.join(root, top, sub) for sub in SPLITS.values() for top in ('images', 'annotations')]

    def expected():
        return [osp.join(root, top, SPLITS[s], f'{i:06d}.{ext}') for s, n in counts.items()
                for i in range(1, n + 1) for top, ext in (('images', 'jpg'), ('annotations', 'png'))]

    summary = reuse_or_reset(meta_file, params, expected, lambda: remove_numbered(dirs, ('.jpg', '.png')))
    if summary is not None:
        return dict(summary, root=str(root))
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
    for (split, n), rng in zip(counts.items(), rngs):
        for i in range(1, n + 1):
            image, label = _make_image(rng, width, height, num_classes)
            cv2.imwrite(osp.join(root, 'images', SPLITS[split], f'{i:06d}.jpg'), image[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(root, 'annotations', SPLITS[split], f'{i:06d}.png'), label)
    info = metainfo(num_classes)
    summary = dict(root=str(root), classes=list(info['classes']), palette=info['palette'],
                   num_train=num_train, num_val=num_val, size=[width, height])
    return save_summary(meta_file, params, summary)
