"""Attention maps (SHViT's SHSA, LITv2's HiLo Lo-Fi branch), Grad-CAM and drawing helpers for
classifiers, on RGB pixels in [0, 1] (:class:`PixelClassifier`). Not imported by ``effvit_mm``
itself: it needs ``grad-cam`` (``pytorch_grad_cam``)."""
from .attention import Attention, attention_disruption, attention_modules, capture_attention, total_variation
from .cam import grad_cam
from .classifier import PixelClassifier, class_names, load_classifier, load_image

__all__ = ['Attention', 'PixelClassifier', 'attention_disruption', 'attention_modules', 'capture_attention',
           'class_names', 'grad_cam', 'load_classifier', 'load_image', 'total_variation']
