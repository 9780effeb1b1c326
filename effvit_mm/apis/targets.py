"""What the tools run, built in one place: export (ONNX, Core ML), benchmark, FLOPs and the insight tools.

A target is a config file, a model-zoo name (:mod:`effvit_mm.apis.model_zoo`: its config) or a ``family:arch``
spec (``shvit:s4``, any registered family):

- an mmpretrain classifier config -> the classifier's logits at the test crop;
- an mmdet / mmseg config -> backbone + neck (``extract_feat``) at :data:`DENSE_SHAPE`;
- a spec -> the backbone alone (its feature maps), 224x224.

Models are built in eval mode without the backbone's ``Pretrained`` file and without a distillation
teacher (neither is part of the deployed model); a ``checkpoint`` loads strictly (see
:func:`effvit_mm.checkpoint.load_model_checkpoint`; ``partial``: what fits).
"""
import copy
import os
import os.path as osp
import warnings
from dataclasses import dataclass

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from ..checkpoint import load_model_checkpoint
from .model_zoo import resolve_config
from ..models.family import families, get_family
from ..models.layers import fuse

__all__ = ['DENSE_SHAPE', 'Call', 'Target', 'build_backbone', 'build_model', 'build_target',
           'imagenet_config', 'input_shape', 'parse_spec', 'test_crop']

# Detection / segmentation configs: backbone + neck run at these (H, W) by default.
DENSE_SHAPE = {'mmdet': (800, 1333), 'mmseg': (512, 512)}


def parse_spec(spec):
    """``'shvit:s1'`` -> ``('SHViT', 's1')`` (the registered type, the arch as given); None for anything
    that is not a ``family:arch`` spec of a registered family (a config path)."""
    name, sep, arch = str(spec).partition(':')
    known = {f.name: f for f in families()}
    if not sep or name.lower() not in known or not arch or str(spec).endswith('.py'):
        return None
    return known[name.lower()].type, arch


def imagenet_config(spec):
    """The ImageNet config of a ``family:arch`` spec, ``configs/<family>_<arch>_in1k.py``, looked up in
    the working directory's ``configs/``, then in the repository this package lives in."""
    family, arch = parse_spec(spec)
    name = f'{get_family(family).name}_{arch.lower()}_in1k.py'
    roots = [os.getcwd(), osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))]
    for root in roots:
        if osp.isfile(osp.join(root, 'configs', name)):
            return osp.join(root, 'configs', name)
    raise FileNotFoundError(f"no ImageNet config for '{spec}': configs/{name} is neither in {roots[0]} nor in "
                            f'{roots[1]}; run from the repository root or pass a config path')


def input_shape(values):
    """``--shape H [W]`` -> (H, W); None when not given."""
    if not values:
        return None
    if len(values) > 2:
        raise ValueError(f'--shape takes H [W], got {len(values)} values')
    return tuple(values) * (3 - len(values))


def test_crop(cfg):
    """(H, W) of the classifier config's test pipeline: its centre crop, else its fixed resize (or
    short-edge resize), else the size of the test set's first image (a set of one fixed size)."""
    for step in reversed(cfg.test_dataloader.dataset.pipeline):
        size = step.get('crop_size') if step['type'] == 'CenterCrop' else \
            step.get('scale') if step['type'] in ('Resize', 'ResizeEdge') else None
        if size:
            return (size, size) if isinstance(size, int) else tuple(size[::-1])
    return _first_image_size(cfg)


test_crop.__test__ = False  # not a pytest test, whatever imports it


def _first_image_size(cfg):
    """(H, W) of the first image of the config's test set."""
    from mmengine.registry import DATASETS
    from PIL import Image
    dataset = cfg.test_dataloader.dataset
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
            path = DATASETS.build(dict(dataset, pipeline=[])).get_data_info(0)['img_path']
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, IndexError, RuntimeError, ValueError) as error:
        raise ValueError(f'no CenterCrop / Resize / ResizeEdge in the test pipeline, and no image of the test set '
                         f'({dataset.get("data_root")}) to take the size from ({error}): pass the input size '
                         '(--shape H W)') from None


class Call(nn.Module):
    """``model.<method>(x, **kwargs)`` as a plain ``forward(x)``: a classifier's logits
    (``Call(model, mode='tensor')``), a detector's / segmentor's backbone + neck
    (``Call(model, 'extract_feat')``), a timm model's features (``Call(model, 'forward_features')``)."""

    def __init__(self, model, method='forward', **kwargs):
        super().__init__()
        self.model, self.method, self.kwargs = model, method, kwargs

    def forward(self, x):
        return getattr(self.model, self.method)(x, **self.kwargs)

    def around(self, model):
        """The same call around another model (e.g. a deployed copy)."""
        return Call(model, self.method, **self.kwargs)


def build_model(cfg, checkpoint=None, partial=False):
    """The model of ``cfg`` (a Config: mmpretrain classifier, mmdet detector or mmseg segmentor) in
    eval mode (module docstring). A classifier is built by mmpretrain's ``get_model`` (the config's
    data preprocessor, the class names of its test set's type in ``_dataset_meta``)."""
    cfg.model.backbone.init_cfg = None
    if cfg.model.get('teacher'):
        cfg.model.teacher = None
    scope = cfg.get('default_scope', 'mmpretrain')
    if scope == 'mmpretrain':
        from mmpretrain.apis import get_model
        model = get_model(cfg)
    else:  # mmdet's two-stage detectors write their train / test cfg into the model config: build a copy
        with DefaultScope.overwrite_default_scope(scope):
            model = MODELS.build(copy.deepcopy(cfg.model))
    if checkpoint:
        load_model_checkpoint(model, checkpoint, partial)
    return model.eval()


def build_backbone(spec, checkpoint=None, partial=False, out_indices=None):
    """The backbone of a ``family:arch`` spec in eval mode, all its stages as outputs unless
    ``out_indices``; ``checkpoint``: its state dict, or the ``backbone.`` part of a model's."""
    parsed = parse_spec(spec)
    if parsed is None:
        raise ValueError(f'not a family:arch spec ({", ".join(f.name for f in families())}): {spec!r}')
    family, arch = parsed
    kwargs = {} if out_indices is None else dict(out_indices=out_indices)
    model = get_family(family).backbone(arch=arch, **kwargs)
    if checkpoint:
        load_model_checkpoint(model, checkpoint, partial, prefix='backbone.')
    return model.eval()


@dataclass
class Target:
    """A built target.

    Attributes:
        module: what runs, ``module(x)`` for (N, 3, H, W) ``x``: a :class:`Call` of the model (logits,
            or backbone + neck) or the backbone.
        shape: the default input (H, W).
        kind: ``'classifier'``, ``'dense'`` or ``'backbone'``.
        model: the whole model (the backbone for a spec).
        cfg: the Config (None for a spec).
    """
    module: nn.Module
    shape: tuple
    kind: str
    model: nn.Module
    cfg: Config = None

    @property
    def backbone(self):
        return self.model if self.kind == 'backbone' else self.model.backbone

    @property
    def counted(self):
        """The modules whose parameters the FLOPs tool counts: the whole classifier (as the papers),
        backbone + neck of a detector / segmentor, the backbone alone."""
        return nn.ModuleList([self.model.backbone, self.model.neck]) if self.kind == 'dense' else self.model


def build_target(target, checkpoint=None, partial=False, deploy=False, cfg_options=None, warn=True, shape=None):
    """The :class:`Target` of a config path, model-zoo name or ``family:arch`` spec (module docstring).

    ``deploy``: the backbone in its portable deploy form (:func:`~effvit_mm.models.layers.fuse`, as
    exporters want it); ``cfg_options``: overrides merged into the config; ``warn``: a warning when no
    ``checkpoint`` is given (random weights); ``shape``: the input (H, W) instead of the default."""
    if parse_spec(target):
        model = build_backbone(target, checkpoint, partial)
        built = Target(model, (224, 224), 'backbone', model)
    else:
        if not osp.isfile(target) and ':' in target:
            raise FileNotFoundError(f"'{target}' is neither a family:arch spec "
                                    f"({', '.join(f.name + ':ARCH' for f in families())}) nor a config file")
        cfg = Config.fromfile(resolve_config(target))
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        model = build_model(cfg, checkpoint, partial)
        scope = cfg.get('default_scope', 'mmpretrain')
        if scope == 'mmpretrain':
            built = Target(Call(model, mode='tensor'), None, 'classifier', model, cfg)
        else:
            built = Target(Call(model, 'extract_feat'), DENSE_SHAPE[scope], 'dense', model, cfg)
    if warn and not checkpoint:
        warnings.warn(f'no checkpoint: {target} runs with random weights', stacklevel=2)
    if deploy:
        fuse(built.backbone)
    built.shape = shape or built.shape or test_crop(built.cfg)
    return built
