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

from effvit_mm.checkpoint import load_model_checkpoint
from effvit_mm.engine.config_switches import load_config

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation', 'mmpretrain': 'classification'}
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# The inferencers' warnings about a missing checkpoint (they are built without one and loaded by
# load_weights) and their default classes (COCO's, Cityscapes'), replaced by the config's or checkpoint's.
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


def unreadable(path):
    """Why the image file ``path`` cannot be decoded (as the inferencers' ``LoadImageFromFile`` does,
    with ``mmcv.imread``), or None when it can."""
    if osp.isdir(path):
        return 'a directory'
    if osp.getsize(path) == 0:
        return 'an empty file'
    try:
        image = mmcv.imread(path)
    except Exception as error:  # OpenCV's and the OS's errors alike
        return f'{type(error).__name__}: {str(error).strip().splitlines()[-1]}'
    return None if image is not None else 'not a decodable image'


def readable_images(images):
    """Split ``images`` into the decodable ones and (path, reason) for the others, each with a warning.
    Every image is decoded here once more than by the inferencer (a few ms, next to the model)."""
    readable, skipped = [], []
    for image in images:
        reason = unreadable(image)
        if reason:
            warnings.warn(f'skipping {image}: {reason}')
            skipped.append((image, reason))
        else:
            readable.append(image)
    return readable, skipped


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


def load_weights(model, cfg, checkpoint, partial=False):
    """Load ``checkpoint`` (if given) into the inferencer's ``model``, refusing one that does not fit
    (:func:`effvit_mm.checkpoint.load_model_checkpoint`; ``partial``: what fits). Returns the classes
    and palette to draw: the checkpoint's ``dataset_meta`` where it has them, else the config's test
    set's. Call it under the config's default scope."""
    meta = dict(config_metainfo(cfg))
    if checkpoint:
        saved = load_model_checkpoint(model, checkpoint, partial).get('meta', {}).get('dataset_meta') or {}
        meta.update({key.lower(): value for key, value in saved.items() if key.lower() in ('classes', 'palette')})
    return meta


def detect(cfg, images, out_dir, checkpoint, device, partial=False, score_thr=0.3, palette='none'):
    """Boxes, masks, class names and scores above ``score_thr``; ``palette`` as mmdet's (``'none'``:
    the config's)."""
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(cfg, None, device, palette=palette, show_progress=False)
    meta = load_weights(inferencer.model, cfg, checkpoint, partial)
    inferencer.model.dataset_meta['classes'] = meta['classes']  # the visualiser shares this dict
    result = inferencer(images, return_vis=True, no_save_vis=True, pred_score_thr=score_thr)
    return _write_pngs(images, result['visualization'], out_dir)


def _with_array_predictions(visualize):
    """``MMSegInferencer.visualize`` given the predicted maps as arrays: mmseg 1.2.2 indexes its colour
    mask with the map, and numpy reads a one-pixel tensor as an integer index (1x1 images fail)."""
    def wrapped(inputs, preds, **kwargs):
        for pred in preds:
            pred.pred_sem_seg.data = pred.pred_sem_seg.data.cpu().numpy()
        return visualize(inputs, preds, **kwargs)
    return wrapped


def segment(cfg, images, out_dir, checkpoint, device, partial=False, opacity=0.8):
    """Colour overlay of the predicted classes (the checkpoint's or config's palette), class names drawn."""
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(cfg, None, device=device)
    inferencer.visualize = _with_array_predictions(inferencer.visualize)
    meta = load_weights(inferencer.model, cfg, checkpoint, partial)
    inferencer.model.dataset_meta = dict(classes=meta['classes'], palette=meta['palette'])
    drawings = inferencer(images, return_vis=True, opacity=opacity)['visualization']
    return _write_pngs(images, drawings if len(images) > 1 else [drawings], out_dir)


def classify(cfg, images, out_dir, checkpoint, device, partial=False, resize=None):
    """Top class and score written on each image (resized to the short edge ``resize`` if given);
    mmpretrain's inferencer saves ``<out_dir>/<image name>.png`` itself."""
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(cfg, pretrained=False, device=device)
    inferencer.classes = load_weights(inferencer.model, cfg, checkpoint, partial)['classes']
    inferencer(images, show_dir=out_dir, resize=resize)
    return [osp.join(out_dir, Path(image).stem + '.png') for image in images]


def run_demo(config, inputs, out_dir, checkpoint=None, device=None, cfg_options=None, partial=False,
             score_thr=0.3, palette='none', opacity=0.8, resize=None, deployed=None):
    """Draw the predictions of ``config`` (with the weights of ``checkpoint``, loaded strictly unless
    ``partial``, or random ones with a warning; or the exported folder ``deployed`` of a detector /
    segmentor, :class:`~effvit_mm.deployment.DeployedModel`) on the image or folder of images ``inputs``
    into ``out_dir``, one PNG per image; files that cannot be decoded are skipped, each with a warning.
    The global default scope is left as it was. Returns the task, the written paths and the skipped
    (path, reason) pairs."""
    cfg = inference_config(load_config(config, cfg_options=cfg_options))
    task = task_of(cfg)
    images = list_images(inputs)
    if deployed:
        from ..deployment import use_deployed
        if checkpoint or task == 'classification':
            raise ValueError('--deployed draws an exported detector / segmentor, without --checkpoint')
        use_deployed(cfg, deployed)
    if checkpoint and '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} not found')
    if checkpoint is None and not deployed:
        warnings.warn(f'no checkpoint: the {task} model has random weights, its predictions mean nothing')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    os.makedirs(out_dir, exist_ok=True)
    images, skipped = readable_images(images)
    if not images:
        return task, [], skipped
    with DefaultScope.overwrite_default_scope(cfg.default_scope), warnings.catch_warnings():
        for message in _RANDOM_WEIGHT_WARNINGS:
            warnings.filterwarnings('ignore', message=message)
        if task == 'detection':
            paths = detect(cfg, images, out_dir, checkpoint, device, partial, score_thr, palette)
        elif task == 'segmentation':
            paths = segment(cfg, images, out_dir, checkpoint, device, partial, opacity)
        else:
            paths = classify(cfg, images, out_dir, checkpoint, device, partial, resize)
    return task, paths, skipped
