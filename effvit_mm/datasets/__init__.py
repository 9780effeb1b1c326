"""Generators of small data sets in the formats mmdet / mmseg / mmpretrain read."""
from .synthetic_ade20k import make_ade20k
from .synthetic_coco import CLASSES, make_coco
from .synthetic_imagenet import make_imagenet

__all__ = ['CLASSES', 'make_ade20k', 'make_coco', 'make_imagenet']
