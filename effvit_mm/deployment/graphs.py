"""The tensor parts of an mmdet detector / mmseg segmentor as plain modules, the graphs a deployed model
runs (exported by :mod:`effvit_mm.deployment.export`). Inputs are normalised, padded (1, 3, H, W)
images of any H, W (the config's test pipeline decides them); the host code between and after the
graphs is :mod:`effvit_mm.deployment.postprocess`.

- :class:`DenseGraph`: image -> [the first ``num_features`` pyramid levels] + the dense head's
  per-level class scores (1, A*C, h, w) + box deltas (1, A*4, h, w) (RPN of a two-stage detector,
  RetinaNet's head).
- :class:`RoIGraph`: pyramid levels + one (K_l, 5) RoI tensor per level (batch index, x1, y1, x2, y2;
  the host maps RoIs to levels) -> an R-CNN head's outputs for the RoIs in that order. RoI features
  come from ``torchvision.ops.roi_align`` (mmcv's ``RoIAlign`` on CPU gives the same numbers;
  exported as ONNX ``RoiAlign``, ``half_pixel`` for ``aligned=True``).
- :class:`SegGraph`: image -> class logits (1, C, H, W) at the input's size (the decode head's output
  resized as mmseg's ``predict_by_feat``).

:func:`symbolic_upsampling` replaces mmseg's ``Upsample`` (its output size ``int(side * factor)`` is a
Python number to a tracer: every exported size would be the traced one) by the same resize with integer
size arithmetic.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align

__all__ = ['DenseGraph', 'RoIGraph', 'SegGraph', 'roi_align_params', 'symbolic_upsampling']


class DenseGraph(nn.Module):
    """Backbone + neck + dense head of ``detector`` (module docstring)."""

    def __init__(self, detector, head, num_features=0):
        super().__init__()
        self.detector, self.head, self.num_features = detector, head, num_features

    def forward(self, x):
        feats = self.detector.extract_feat(x)
        cls_scores, bbox_preds = self.head(feats)
        return (*feats[:self.num_features], *cls_scores, *bbox_preds)


def roi_align_params(extractor):
    """What :class:`RoIGraph` and the host need of an mmdet ``SingleRoIExtractor`` (mmcv ``RoIAlign``
    layers): strides, output size, sampling ratio, ``aligned``, ``finest_scale``."""
    layer = extractor.roi_layers[0]
    if type(extractor).__name__ != 'SingleRoIExtractor' or type(layer).__name__ != 'RoIAlign' \
            or layer.pool_mode != 'avg':
        raise ValueError(f'only SingleRoIExtractor with RoIAlign (avg) is exported, not '
                         f'{type(extractor).__name__} with {type(layer).__name__}')
    size = layer.output_size
    return dict(strides=[int(s) for s in extractor.featmap_strides], output_size=[int(size[0]), int(size[1])],
                sampling_ratio=int(layer.sampling_ratio), aligned=bool(layer.aligned),
                finest_scale=float(extractor.finest_scale))


class RoIGraph(nn.Module):
    """RoI features of each level + an R-CNN ``head`` (module docstring); ``extractor`` an mmdet
    ``SingleRoIExtractor``."""

    def __init__(self, extractor, head):
        super().__init__()
        self.params = roi_align_params(extractor)
        self.head = head

    def forward(self, *feats_and_rois):
        n = len(self.params['strides'])
        p = self.params
        pooled = torch.cat([roi_align(feat, rois, p['output_size'], 1.0 / stride, p['sampling_ratio'], p['aligned'])
                            for feat, rois, stride in zip(feats_and_rois[:n], feats_and_rois[n:], p['strides'])])
        return self.head(pooled)


class SegGraph(nn.Module):
    """Backbone + neck + decode head of ``segmentor`` (module docstring)."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        return F.interpolate(logits, size=x.shape[2:], mode='bilinear',
                             align_corners=self.segmentor.decode_head.align_corners)


class IntUpsample(nn.Module):
    """``F.interpolate`` to ``factor`` times the input's (H, W), ``factor`` an integer: mmseg's
    ``Upsample(scale_factor=factor)`` with a size a tracer keeps symbolic."""

    def __init__(self, factor, mode, align_corners):
        super().__init__()
        self.factor, self.mode, self.align_corners = factor, mode, align_corners

    def forward(self, x):
        size = (x.shape[-2] * self.factor, x.shape[-1] * self.factor)
        return F.interpolate(x, size, None, self.mode, self.align_corners)


def symbolic_upsampling(model):
    """Replace, in place, every mmseg ``Upsample`` of ``model`` that scales by an integer factor with
    :class:`IntUpsample` (module docstring); one of a fixed size or a fractional factor is refused."""
    for name, child in model.named_children():
        if type(child).__name__ == 'Upsample' and type(child).__module__.startswith('mmseg'):
            factor = child.scale_factor
            if child.size or not isinstance(factor, float) or not factor.is_integer():
                raise ValueError(f'{name}: mmseg Upsample of size {child.size} / factor {factor} is not exported '
                                 '(integer factors are)')
            setattr(model, name, IntUpsample(int(factor), child.mode, child.align_corners))
        else:
            symbolic_upsampling(child)
    return model
