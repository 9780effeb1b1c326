"""Generators of small data sets in the formats mmdet / mmseg / mmpretrain read."""
from .synthetic_coco import CLASSES, make_coco
from .synthetic_imagenet import make_imagenet

__all__ = ['CLASSES', 'make_coco', 'make_imagenet']
