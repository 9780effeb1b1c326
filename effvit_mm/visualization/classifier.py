"""An mmpretrain classifier in pixel space: loading it from a config, feeding it RGB images in [0, 1].

Attacks (epsilon in pixel units), Grad-CAM and the drawings all work on ``(B, 3, H, W)`` RGB images in
[0, 1]; :class:`PixelClassifier` applies the config's data preprocessor (channel order, mean / std)
inside its ``forward``, so gradients flow to the pixels.
"""
import os.path as osp
import warnings

import torch
import torch.nn as nn
from mmcv.transforms import Compose
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope

from ..checkpoint import load_model_checkpoint
from ..engine.config_switches import load_config
from ..apis.targets import build_model


class PixelClassifier(nn.Module):
    """``classifier`` on RGB pixels in [0, 1]: (B, 3, H, W) -> logits (B, num_classes).

    The classifier's ``data_preprocessor`` decides the channel order (``to_rgb``) and the normalisation
    ``(255 * x - mean) / std``; :meth:`pixels` inverts it on a dataloader batch.
    """

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier.eval()

    def _normalisation(self):
        """(mean, std), each (3, 1, 1) in the model's channel order and 0..255 units, and whether the
        model sees BGR (the loaded order, ``to_rgb=False``)."""
        pre = self.classifier.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            mean, std = pre.mean, pre.std
        else:
            mean, std = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
        return mean, std, not getattr(pre, 'to_rgb', False)

    def forward(self, pixels):
        mean, std, bgr = self._normalisation()
        x = pixels.flip(1) if bgr else pixels
        return self.classifier((x * 255 - mean) / std, mode='tensor')

    @torch.no_grad()
    def pixels(self, batch):
        """A collated batch (mmpretrain ``PackInputs``) -> RGB pixels (B, 3, H, W) in [0, 1] and the
        labels (B,), or None when the samples have none."""
        data = self.classifier.data_preprocessor(batch, False)
        mean, std, bgr = self._normalisation()
        x = data['inputs'] * std + mean
        x = (x.flip(1) if bgr else x) / 255
        samples = data['data_samples'] or []
        labels = torch.cat([s.gt_label for s in samples]) if samples and 'gt_label' in samples[0] else None
        return x.clamp(0, 1), labels


def load_classifier(config, checkpoint=None, device='cpu', cfg_options=None, partial=False):
    """(:class:`PixelClassifier` in eval mode, the config) of an mmpretrain classifier config.

    ``checkpoint`` is loaded strictly (``partial``: what fits); None keeps random weights (with a
    warning). A missing config or checkpoint raises FileNotFoundError, a checkpoint of another model
    ``CheckpointMismatchError``, an unsafe or unreadable file ``CheckpointFileError`` (both ValueErrors).
    """
    cfg = load_config(config, cfg_options=cfg_options)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} not found')
    model = build_model(cfg).to(device)
    if checkpoint is None:
        warnings.warn(f'no checkpoint given: {osp.basename(config)} runs with random weights')
    else:
        meta = load_model_checkpoint(model, checkpoint, partial, map_location=device).get('meta', {})
        if meta.get('dataset_meta'):
            model._dataset_meta = meta['dataset_meta']
    return PixelClassifier(model).eval(), cfg


def class_names(model, cfg):
    """Class names: the config's test set ``metainfo``, else the checkpoint's, else None."""
    names = cfg.test_dataloader.dataset.get('metainfo', {}).get('classes')
    names = names or getattr(model.classifier, '_dataset_meta', {}).get('classes')
    return list(names) if names else None


def load_image(model, cfg, path):
    """An image file through the config's test pipeline -> RGB pixels (1, 3, H, W) in [0, 1]."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} not found')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    pixels, _ = model.pixels(default_collate([pipeline(dict(img_path=path))]))
    return pixels


def image_tool_parser(description, config_help='mmpretrain classifier config'):
    """An ``argparse`` parser with the arguments the one-image tools share: CONFIG, IMAGE,
    ``--checkpoint``, ``--partial-checkpoint``, ``--device`` and ``--cfg-options``."""
    import argparse

    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help=config_help)
    p.add_argument('image', help='image file')
    p.add_argument('--checkpoint', help='checkpoint file (default: random weights)')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    return p
