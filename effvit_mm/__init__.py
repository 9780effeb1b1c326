"""effvit_mm: SHViT, SwiftFormer and LITv2 backbones for mmdet, mmseg and mmpretrain.

Importing the package registers every module into mmengine's root registries, makes mmengine's
checkpoint loader load with the allow-list of :mod:`effvit_mm.checkpoint.safe_load` (during each load only), hands
optimisers plain-dict parameter groups (:mod:`effvit_mm.engine.optim_constructor`: ``compile=True``) and, on
a machine with CUDA whose mmcv has CPU kernels only, routes the mmcv ops our configs need on CUDA
tensors to torchvision / PyTorch (:mod:`effvit_mm.engine.mmcv_ops`), and adds the model zoo's classifiers to
mmpretrain's ``ModelHub`` (:mod:`effvit_mm.apis.model_zoo`). Models by name in plain Python:
:func:`get_backbone`, :func:`get_classifier` (:mod:`effvit_mm.apis.get_model`), :func:`list_models`.
"""
import os.path as osp

from . import deployment, engine, models  # noqa: F401
from .apis.get_model import get_backbone, get_classifier  # noqa: F401
from .apis.model_zoo import MODEL_INDEX, list_models, register_with_mmpretrain  # noqa: F401
from .checkpoint.safe_load import wrap_checkpoint_loader
from .engine.mmcv_ops import setup_mmcv_ops
from .engine.optim_constructor import plain_param_groups
from .version import __version__  # noqa: F401

wrap_checkpoint_loader()
plain_param_groups()
setup_mmcv_ops()
if osp.isfile(MODEL_INDEX):  # without the repository's configs/ (a non-editable install) there are no names
    register_with_mmpretrain()
