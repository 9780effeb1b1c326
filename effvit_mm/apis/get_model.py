"""Backbones and classifiers by name in plain Python, outside the OpenMMLab runners (feature extraction).

Example (the README's; ``tests/test_api.py`` runs it)::

    import torch, effvit_mm
    backbone = effvit_mm.get_backbone('shvit-s4', checkpoint='shvit_s4.pth', out_indices=(1, 2))
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 256, 256))
    print([tuple(f.shape) for f in features])  # [(1, 336, 8, 8), (1, 448, 4, 4)]

A name is a variant (``shvit-s4``, ``swiftformer-l1``, ``litv2-b``; the spec ``shvit:s4`` too) or a
model-zoo entry (``effvit_mm.list_models()``; its config's backbone, e.g. the HiLo window 4 of
``mask-rcnn_litv2-s-ws4_fpn_1x_coco``, or its classifier). Checkpoints load strictly: the authors'
release, timm's file, one of ours (``tools/model_converters/convert_checkpoint.py``) or, for a backbone, a detector's /
segmentor's; a file that misses a parameter, has one of another shape or matches none is a
``CheckpointMismatchError`` naming the keys (see :mod:`effvit_mm.checkpoint`).
"""
import copy
import logging

from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from ..checkpoint import extract_state_dict, fit_state_dict
from ..checkpoint.convert import detect, to_mmpretrain
from .model_zoo import get_entry
from ..models.family import families, get_family
from .targets import build_model, imagenet_config

__all__ = ['get_backbone', 'get_classifier']


def _variant(name):
    """``'shvit-s4'`` / ``'shvit:s4'`` -> ``('shvit', 's4')``; None for any other name."""
    known = {spec.name: spec for spec in families()}
    for sep in (':', '-'):
        family, found, arch = str(name).lower().partition(sep)
        if found and family in known and arch in known[family].variants:
            return family, arch
    return None


def get_backbone(name, checkpoint=None, out_indices=None, **kwargs):
    """The backbone of ``name`` (module docstring) in eval mode.

    Args:
        checkpoint (str, optional): weights, loaded strictly (the classifier of a classification file
            is ignored; output norms that only dense-prediction models have start fresh).
        out_indices (tuple[int], optional): the stages whose feature maps ``forward`` returns
            (default: the variant's all, or the entry config's).
        **kwargs: other backbone arguments (``frozen_stages``, ``drop_path_rate``, ...).

    Returns:
        The backbone: ``backbone(x)`` for ``x`` of shape (N, 3, H, W) gives a tuple of (N, C_i, H_i, W_i)
        maps, one per ``out_indices``.
    """
    variant = _variant(name)
    if variant:
        cfg = dict(type=get_family(variant[0]).type, arch=variant[1])
    else:
        cfg = copy.deepcopy(Config.fromfile(get_entry(name).config).model.backbone.to_dict())
    cfg.update(kwargs, init_cfg=dict(type='Pretrained', checkpoint=checkpoint) if checkpoint else None)
    if out_indices is not None:
        cfg['out_indices'] = tuple(out_indices)
    backbone = MODELS.build(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    if not checkpoint:  # no page of "the value is the same before and after init_weights" per parameter
        logger.setLevel(logging.WARNING)
    try:
        backbone.init_weights()
    finally:
        logger.setLevel(level)
    return backbone.eval()


def get_classifier(name, checkpoint=None):
    """The ImageNet classifier (mmpretrain ``ImageClassifier``, eval mode) of a variant or a
    classification entry; ``model(x, mode='tensor')`` gives the logits, ``model.extract_feat(x)`` the
    backbone's last features. ``checkpoint``: the authors' release or timm's file (converted in memory),
    or an mmpretrain file; loaded strictly."""
    variant = _variant(name)
    entry = None if variant else get_entry(name)
    if entry is not None and entry.codebase != 'mmpretrain':
        raise ValueError(f'{entry.name} is an {entry.codebase} model, not a classifier: get_backbone() builds '
                         'its backbone')
    config = imagenet_config(':'.join(variant)) if variant else entry.config
    model = build_model(Config.fromfile(config))
    if checkpoint:
        state_dict = extract_state_dict(CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu',
                                                                         logger='silent'))
        family = model.backbone.family.name
        if detect(state_dict)[1] != 'mmpretrain':
            state_dict = to_mmpretrain(state_dict, family)
        load_state_dict(model, fit_state_dict(model, state_dict, checkpoint), strict=True)
    return model.eval()
