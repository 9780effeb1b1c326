"""effvit_mm: SHViT, SwiftFormer and LITv2 backbones for mmdet, mmseg and mmpretrain.

Importing the package registers every module into mmengine's root registries, makes mmengine's
checkpoint loader load with the allow-list of :mod:`effvit_mm.safe_load` (during each load only) and, on
a machine with CUDA whose mmcv has CPU kernels only, routes the mmcv ops our configs need on CUDA
tensors to torchvision / PyTorch (:mod:`effvit_mm.mmcv_ops`).
"""
from . import engine, models  # noqa: F401
from .mmcv_ops import setup_mmcv_ops
from .safe_load import wrap_checkpoint_loader
from .version import __version__  # noqa: F401

wrap_checkpoint_loader()
setup_mmcv_ops()
