"""Predictions drawn on images (``tools/demo.py``) with the inferencer and visualiser of the config's
codebase: mmdet's ``DetInferencer`` (boxes, masks, class names, scores), mmseg's ``MMSegInferencer``
(colour overlay) or mmpretrain's ``ImageClassificationInferencer`` (class name and score)."""
import copy
import os
import os.path as osp
import warnings
from pathlib import Path

import mmcv
import torch
from mmengine.registry import DATASETS, DefaultScope

from effvit_mm.runtime import load_config

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation', 'mmpretrain': 'classification'}
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# The inferencers' warnings about a missing checkpoint: replaced by one of ours, and their default
# classes (COCO's, Cityscapes') by the config's.
_RANDOM_WEIGHT_WARNINGS = ('Checkpoint is not loaded', 'weights is None')


def list_images(path):
    """The image ``path``, or the images in the folder ``path`` (sorted, not recursive)."""
    path = Path(path)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise FileNotFoundError(f'input {path} not found: give an image or a folder of images')
    images = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {path}')
    return images


def task_of(cfg):
    """'detection', 'segmentation' or 'classification', from the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'config default_scope {scope!r}: the demo needs one of {", ".join(TASKS)}')
    return TASKS[scope]


def inference_config(cfg):
    """The config without what only training loads: the backbone's ``Pretrained`` init_cfg (the
    checkpoint, or the random initialisation, gives the weights) and a distillation teacher; and
    without the visualiser's storage backends (the drawings are written here, not logged)."""
    cfg = copy.deepcopy(cfg)
    if cfg.get('visualizer'):
        cfg.visualizer.vis_backends = []
    backbone = cfg.model.get('backbone') or {}
    if (backbone.get('init_cfg') or {}).get('type') == 'Pretrained':
        backbone.init_cfg = None
    cfg.model.pop('teacher', None)
    return cfg


def config_metainfo(cfg):
    """Classes (and palette) of the config's test set, read without its annotations. Call it under
    the config's default scope."""
    return DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True, pipeline=[])).metainfo


def _write_pngs(images, drawings, out_dir):
    """Save each RGB drawing as ``<out_dir>/<image name>.png``; return the paths."""
    paths = [osp.join(out_dir, Path(image).stem + '.png') for image in images]
    for drawing, path in zip(drawings, paths):
        mmcv.imwrite(drawing[..., ::-1], path)
    return paths


def detect(cfg, images, out_dir, checkpoint, device, score_thr=0.3, palette='none'):
    """Boxes, masks, class names and scores above ``score_thr``; ``palette`` as mmdet's (``'none'``:
    the checkpoint's or config's)."""
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(cfg, checkpoint, device, palette=palette, show_progress=False)
    if checkpoint is None:  # the visualiser shares this dict
        inferencer.model.dataset_meta['classes'] = config_metainfo(cfg)['classes']
    result = inferencer(images, return_vis=True, no_save_vis=True, pred_score_thr=score_thr)
    return _write_pngs(images, result['visualization'], out_dir)


def segment(cfg, images, out_dir, checkpoint, device, opacity=0.8):
    """Colour overlay of the predicted classes (the checkpoint's or config's palette), class names drawn."""
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(cfg, checkpoint, device=device)
    if checkpoint is None:
        meta = config_metainfo(cfg)
        inferencer.model.dataset_meta = dict(classes=meta['classes'], palette=meta['palette'])
    drawings = inferencer(images, return_vis=True, opacity=opacity)['visualization']
    return _write_pngs(images, drawings if len(images) > 1 else [drawings], out_dir)


def classify(cfg, images, out_dir, checkpoint, device, resize=None):
    """Top class and score written on each image (resized to the short edge ``resize`` if given);
    mmpretrain's inferencer saves ``<out_dir>/<image name>.png`` itself."""
    from mmpretrain.apis import ImageClassificationInferencer
    classes = config_metainfo(cfg)['classes'] if checkpoint is None else None  # else the checkpoint's
    inferencer = ImageClassificationInferencer(cfg, pretrained=checkpoint or False, device=device, classes=classes)
    inferencer(images, show_dir=out_dir, resize=resize)
    return [osp.join(out_dir, Path(image).stem + '.png') for image in images]


def run_demo(config, inputs, out_dir, checkpoint=None, device=None, cfg_options=None, score_thr=0.3,
             palette='none', opacity=0.8, resize=None):
    """Draw the predictions of ``config`` (with the weights of ``checkpoint``, or random ones with a
    warning) on the image or folder of images ``inputs`` into ``out_dir``, one PNG per image. The
    global default scope is left as it was. Returns the task and the written paths."""
    cfg = inference_config(load_config(config, cfg_options=cfg_options))
    task = task_of(cfg)
    images = list_images(inputs)
    if checkpoint and '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} not found')
    if checkpoint is None:
        warnings.warn(f'no checkpoint: the {task} model has random weights, its predictions mean nothing')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    os.makedirs(out_dir, exist_ok=True)
    with DefaultScope.overwrite_default_scope(cfg.default_scope), warnings.catch_warnings():
        for message in _RANDOM_WEIGHT_WARNINGS:
            warnings.filterwarnings('ignore', message=message)
        if task == 'detection':
            paths = detect(cfg, images, out_dir, checkpoint, device, score_thr, palette)
        elif task == 'segmentation':
            paths = segment(cfg, images, out_dir, checkpoint, device, opacity)
        else:
            paths = classify(cfg, images, out_dir, checkpoint, device, resize)
    return task, paths
