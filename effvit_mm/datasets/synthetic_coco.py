"""A small, learnable COCO-format instance-segmentation set, generated on the spot.

Layout under ``root`` (the standard COCO 2017 one)::

    annotations/instances_train2017.json
    annotations/instances_val2017.json
    train2017/000001.jpg ...
    val2017/000001.jpg ...
    meta.json            # the generation parameters: a second call with the same ones does nothing

Images show 1..``max_objects`` red rectangles, green ellipses and blue triangles on dark noise.
Objects are drawn in order, so later ones may hide part of earlier ones; every annotation (polygons,
bbox, area) describes the visible part.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np

from .generation import remove_numbered, reuse_or_reset, save_summary, split_params

CLASSES = ('rectangle', 'ellipse', 'triangle')
COLOURS = ((220, 40, 40), (40, 200, 60), (50, 80, 230))  # RGB, one per class
FORMAT_VERSION = 2
MAX_OVERLAP = 0.35  # of the smaller box: every object keeps a part outside all others' boxes


def _draw_shape(label, box, rng, shape):
    """Binary mask (H, W) of one object of class ``label`` inside ``box`` = (x1, y1, x2, y2)."""
    mask = np.zeros(shape, np.uint8)
    x1, y1, x2, y2 = box
    if label == 0:
        cv2.rectangle(mask, (x1, y1), (x2, y2), 1, -1)
    elif label == 1:
        cv2.ellipse(mask, ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, 1, -1)
    else:
        apex = int(rng.integers(x1, x2 + 1))
        cv2.fillPoly(mask, [np.array([[apex, y1], [x1, y2], [x2, y2]], np.int32)], 1)
    return mask.astype(bool)


def _overlap(a, b):
    """Intersection of two boxes over the area of the smaller one."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _make_image(rng, width, height, max_objects):
    """One image (H, W, 3 uint8 RGB) and its objects as (label, visible mask) pairs.

    Each shape is convex and pokes out of every other box (``MAX_OVERLAP``), so no object is
    hidden and no visible mask has a hole, which COCO polygons could not express.
    """
    image = rng.normal(25, 10, (height, width, 3)).clip(0, 255)
    boxes, objects = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            w = int(rng.uniform(0.15, 0.45) * width)
            h = int(rng.uniform(0.15, 0.45) * height)
            x1, y1 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            box = (x1, y1, x1 + w, y1 + h)
            if all(_overlap(box, b) <= MAX_OVERLAP for b in boxes):
                break
        else:
            continue
        label = int(rng.integers(len(CLASSES)))
        mask = _draw_shape(label, box, rng, (height, width))
        colour = np.array(COLOURS[label]) + rng.normal(0, 12, 3)
        image[mask] = (colour + rng.normal(0, 6, (mask.sum(), 3))).clip(0, 255)
        objects = [(lbl, m & ~mask) for lbl, m in objects] + [(label, mask)]
        boxes.append(box)
    return image.astype(np.uint8), objects


def _annotation(mask, min_area):
    """COCO fields (segmentation, bbox, area) of a visible mask, or None if too little is visible.

    Contours are traced on the mask upsampled 2x, so that in COCO coordinates (pixel i spans
    [i, i + 1]) they run a quarter pixel inside the mask's outer edge and rasterise back to it.
    """
    area = int(mask.sum())
    if area < min_area:
        return None
    big = np.kron(mask, np.ones((2, 2), np.uint8)).astype(np.uint8)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = [((cv2.approxPolyDP(c, 0.5, True).reshape(-1) + 0.5) / 2).tolist()
                for c in contours if cv2.contourArea(c) >= 16]  # drop fragments under ~4 pixels
    polygons = [p for p in polygons if len(p) >= 6]
    if not polygons:
        return None
    ys, xs = np.nonzero(mask)
    x, y = int(xs.min()), int(ys.min())
    return dict(segmentation=polygons, bbox=[x, y, int(xs.max()) - x + 1, int(ys.max()) - y + 1],
                area=area, iscrowd=0)


def _write_split(root, split, num_images, rng, width, height, max_objects):
    """Images and annotation file of one split; returns the number of annotations."""
    images, annotations = [], []
    min_area = 0.01 * width * height
    for image_id in range(1, num_images + 1):
        image, objects = _make_image(rng, width, height, max_objects)
        file_name = f'{image_id:06d}.jpg'
        cv2.imwrite(osp.join(root, f'{split}2017', file_name), image[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        for label, mask in objects:
            ann = _annotation(mask, min_area)
            if ann is not None:
                annotations.append(dict(ann, id=len(annotations) + 1, image_id=image_id, category_id=label + 1))
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CLASSES)]
    with open(osp.join(root, 'annotations', f'instances_{split}2017.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return len(annotations)


def _check_args(num_train, num_val, img_size, max_objects):
    for name, value in (('num_train', num_train), ('num_val', num_val), ('max_objects', max_objects)):
        if value < 1:
            raise ValueError(f'make_coco: {name} must be >= 1, got {value}')
    if len(img_size) != 2 or min(img_size) < 64:
        raise ValueError(f'make_coco: img_size must be (width, height) with both >= 64, got {img_size!r}')


def make_coco(root, num_train=64, num_val=16, img_size=(320, 256), seed=0, max_objects=3):
    """Write the set under ``root`` (see module docstring); ``img_size`` is (width, height).

    Returns a dict with the root, classes, image counts and annotation counts per split.
    Deterministic for a seed; does nothing when ``root`` already holds a complete set made with
    the same parameters, and replaces one made with other parameters.
    """
    _check_args(num_train, num_val, img_size, max_objects)
    width, height = map(int, img_size)
    params, counts = split_params(FORMAT_VERSION, num_train, num_val, img_size=[width, height], seed=seed,
                                  max_objects=max_objects)
    meta_file = osp.join(root, 'meta.json')

    def expected():
        return [osp.join(root, 'annotations', f'instances_{s}2017.json') for s in counts] + \
            [osp.join(root, f'{s}2017', f'{i:06d}.jpg') for s, n in counts.items() for i in range(1, n + 1)]

    images = [osp.join(root, f'{s}2017') for s in counts]
    summary = reuse_or_reset(meta_file, params, expected, lambda: remove_numbered(images, ('.jpg', )))
    if summary is not None:
        return dict(summary, root=str(root))
    for sub in ('annotations', 'train2017', 'val2017'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
    summary = dict(root=str(root), classes=list(CLASSES), num_train=num_train, num_val=num_val,
                   num_annotations={s: _write_split(root, s, n, rng, width, height, max_objects)
                                    for (s, n), rng in zip(counts.items(), rngs)})
    return save_summary(meta_file, params, summary)
