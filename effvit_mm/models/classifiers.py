"""``DistilledImageClassifier``: mmpretrain's ``ImageClassifier`` with DeiT's hard distillation
from a frozen timm teacher, as SwiftFormer was trained (``regnety_160``, alpha 0.5)."""
import os.path as osp

import timm
import torch
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.models.classifiers import ImageClassifier

from ..checkpoint import CheckpointMismatchError, extract_state_dict

__all__ = ['DistilledImageClassifier']


class _Detached:
    """Holds a module outside its owner's submodules: not in ``parameters()``, ``state_dict()``,
    ``train()`` / ``to()`` (the owner moves it itself), and shared, not copied, by ``deepcopy``
    (e.g. an EMA copy of the model does not duplicate the teacher)."""

    def __init__(self, module):
        self.module = module

    def __deepcopy__(self, memo):
        return self


def build_teacher(name, checkpoint, **kwargs):
    """``timm.create_model(name, pretrained=False, num_classes=1000, **kwargs)`` with the weights of
    the local file ``checkpoint`` (a plain state dict or one under ``model`` / ``state_dict``, e.g.
    DeiT's ``regnety_160`` teacher), loaded with torch's ``weights_only`` protection and strictly;
    frozen and in eval mode."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'teacher checkpoint {checkpoint} not found: put the {name} weights there (for SwiftFormer '
            "DeiT's regnety_160 teacher), or train without a teacher with --cfg-options model.teacher=None")
    kwargs.setdefault('num_classes', 1000)
    teacher = timm.create_model(name, pretrained=False, **kwargs)
    state_dict = extract_state_dict(CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu', logger='silent'))
    missing, unexpected = teacher.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise CheckpointMismatchError(
            f'teacher checkpoint {checkpoint} does not fit timm {name}: {len(missing)} missing '
            f'({", ".join(missing[:4])}), {len(unexpected)} unexpected ({", ".join(unexpected[:4])})')
    for param in teacher.parameters():
        param.requires_grad = False
    return teacher.eval()


@MODELS.register_module()
class DistilledImageClassifier(ImageClassifier):
    """``ImageClassifier`` trained with DeiT's hard distillation.

    The head must have a distillation twin (:class:`~effvit_mm.models.heads.SwiftFormerClsHead`, or
    any :class:`~effvit_mm.models.heads.DistillableClsHead` with ``distillation=True``). In training
    the frozen teacher sees the same (augmented, mixed-up) batch, under ``torch.no_grad()`` and in
    eval mode; the argmax of its logits goes to ``head.loss(..., teacher_labels=...)``, which returns
    ``(1 - distill_alpha) * loss(cls, gt) + distill_alpha * CE(dist, teacher_labels)``. Inference
    is the plain ``ImageClassifier``'s (the head averages its twins).

    The teacher is not a submodule: it is in neither ``parameters()`` (so no optimiser sees it) nor
    ``state_dict()`` (checkpoints hold the student only); it follows the inputs' device.

    Args:
        teacher (dict, optional): ``dict(name='regnety_160', checkpoint='checkpoints/regnety_160.pth')``,
            other keys go to ``timm.create_model``; see :func:`build_teacher`. None (the switch
            ``model.teacher=None``): no teacher; both twins then learn from the labels.
        distill_alpha (float): weight of the distillation term, in [0, 1]. Default 0.5 (DeiT).
        Other arguments: mmpretrain's ``ImageClassifier``.
    """

    def __init__(self, *args, teacher=None, distill_alpha=0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 <= distill_alpha <= 1:
            raise ValueError(f'distill_alpha={distill_alpha} must be in [0, 1]')
        self.distill_alpha = distill_alpha
        self._teacher, self._teacher_cfg = None, None if teacher is None else dict(teacher)
        if teacher is not None and getattr(self.head, 'dist_head', None) is None:
            raise ValueError(f'distillation from a teacher needs a head with a distillation twin, '
                             f'e.g. SwiftFormerClsHead(distillation=True); got {type(self.head).__name__}')

    @property
    def teacher(self):
        """The frozen teacher (a timm model) or None. Built on first use (the first training step), so
        that inference, e.g. ``mmpretrain.get_model(name)``, needs no teacher file."""
        if self._teacher is None and self._teacher_cfg is not None:
            cfg = dict(self._teacher_cfg)
            self._teacher = _Detached(build_teacher(cfg.pop('name'), cfg.pop('checkpoint'), **cfg))
        return None if self._teacher is None else self._teacher.module

    @torch.no_grad()
    def teacher_labels(self, inputs):
        """(N, 3, H, W) batch -> the teacher's hard labels (N,)."""
        teacher = self.teacher.eval()
        param = next(teacher.parameters(), None)
        if param is not None and param.device != inputs.device:
            teacher.to(inputs.device)
        return teacher(inputs).argmax(dim=1)

    def loss(self, inputs, data_samples):
        feats = self.extract_feat(inputs)
        if self._teacher_cfg is None:
            return self.head.loss(feats, data_samples)
        return self.head.loss(feats, data_samples, teacher_labels=self.teacher_labels(inputs),
                              distill_alpha=self.distill_alpha)
