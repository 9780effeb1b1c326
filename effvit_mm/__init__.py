"""effvit_mm: SHViT, SwiftFormer and LITv2 backbones for mmdet, mmseg and mmpretrain.

Importing the package registers every module into mmengine's root ``MODELS`` registry.
"""
from . import models  # noqa: F401
from .version import __version__  # noqa: F401
