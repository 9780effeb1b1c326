"""effvit_mm: SHViT, SwiftFormer and LITv2 backbones for mmdet, mmseg and mmpretrain.

Importing the package registers every module into mmengine's root ``MODELS`` registry.
"""
from . import engine, models  # noqa: F401
from .runtime import register_safe_globals
from .version import __version__  # noqa: F401

register_safe_globals()
