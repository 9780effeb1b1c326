"""ImageNet classification heads that compute the authors' classifiers on top of the backbones.

The classifier is mmpretrain's ``ImageClassifier`` (or :class:`~effvit_mm.models.classifiers.
DistilledImageClassifier`) with no neck and the backbone's last stage as its only output; the
authors' final norm is the backbone's output norm of that stage (SwiftFormer ``norm6``, LITv2
``norm3``; SHViT has none). A head takes the backbone tuple, averages ``feats[-1]`` of shape
(N, C, H, W) over H, W into (N, C) and applies ``head`` (and, with ``distillation``, its twin
``dist_head``): (N, C) -> (N, num_classes). At inference the twins' logits are averaged, as the
authors (and DeiT) do.

Training loss (:meth:`DistillableClsHead.loss`), with ``base`` the configured ``loss`` (hard labels
or the soft ``gt_score`` of mixup / cutmix):

- no distillation twin: ``base(cls, gt)``;
- twin and teacher labels (hard distillation, DeiT / SwiftFormer):
  ``(1 - alpha) * base(cls, gt) + alpha * CE(dist, teacher_labels)``;
- twin without a teacher: ``(base(cls, gt) + base(dist, gt)) / 2``, so that both learn the labels
  and their average at inference is meaningful.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.models.heads import ClsHead
from timm.layers import trunc_normal_

__all__ = ['DistillableClsHead', 'LITv2ClsHead', 'SHViTClsHead', 'SwiftFormerClsHead']


def _init_authors(module):
    """The authors' initialisation: Linear weights truncated normal (std 0.02), zero biases;
    BatchNorm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class DistillableClsHead(ClsHead):
    """Global average pooling, a classifier ``head`` and an optional distillation twin ``dist_head``.

    Subclasses define :meth:`make_classifier` ((N, C) -> (N, num_classes) module).

    Args:
        num_classes (int): number of classes.
        in_channels (int): channels C of the last backbone output.
        distillation (bool): build the twin ``dist_head`` (trained on a teacher's hard labels, see
            the module docstring); its logits are averaged with ``head``'s at inference.
        loss (dict): mmpretrain loss config of the label term. Default cross-entropy.
        topk (int | tuple[int]): top-k accuracies of mmpretrain's evaluator.
        cal_acc (bool): log the training accuracy (hard labels only, as in mmpretrain).
        init_cfg (dict, optional): mmengine init config; by default the layers keep the authors'
            initialisation done here.

    ``forward(feats)``: tuple whose last item is (N, in_channels, H, W) -> logits (N, num_classes).
    """

    def __init__(self, num_classes, in_channels, distillation=False,
                 loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, ), cal_acc=False,
                 init_cfg=None):
        super().__init__(loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        if num_classes <= 0:
            raise ValueError(f'{type(self).__name__}: num_classes={num_classes} must be positive')
        self.num_classes, self.in_channels, self.distillation = num_classes, in_channels, distillation
        self.head = self.make_classifier(in_channels, num_classes)
        self.dist_head = self.make_classifier(in_channels, num_classes) if distillation else None
        _init_authors(self)

    def make_classifier(self, in_channels, num_classes):
        raise NotImplementedError

    def pre_logits(self, feats):
        """Tuple ending with (N, C, H, W) -> pooled features (N, C)."""
        feat = feats[-1]
        if feat.dim() != 4 or feat.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects the last backbone output of shape '
                             f'(N, {self.in_channels}, H, W), got {tuple(feat.shape)}')
        return feat.mean((2, 3))

    def forward_twins(self, feats):
        """Logits of ``head`` and of ``dist_head`` (None without distillation), each (N, num_classes)."""
        x = self.pre_logits(feats)
        return self.head(x), self.dist_head(x) if self.dist_head is not None else None

    def forward(self, feats):
        """Logits (N, num_classes): ``head``'s, or the average of the twins'."""
        cls_score, dist_score = self.forward_twins(feats)
        return cls_score if dist_score is None else (cls_score + dist_score) / 2

    def _base_loss(self, score, target):
        return self.loss_module(score, target, avg_factor=score.size(0))

    def loss(self, feats, data_samples, teacher_labels=None, distill_alpha=0.5):
        """Training loss (module docstring).

        Args:
            feats (tuple[Tensor]): backbone outputs, the last (N, C, H, W).
            data_samples (list[DataSample]): ``gt_score`` (soft, mixup / cutmix) or ``gt_label``.
            teacher_labels (Tensor, optional): (N,) hard labels of the teacher (argmax of its logits on
                the same augmented images); needs ``distillation=True``.
            distill_alpha (float): weight of the distillation term.

        Returns:
            dict: ``loss`` (the total) and, logged only, ``ce_cls`` / ``ce_dist`` (the two terms before
            weighting) and ``accuracy_top-k`` with ``cal_acc``.
        """
        cls_score, dist_score = self.forward_twins(feats)
        if 'gt_score' in data_samples[0]:
            target = torch.stack([s.gt_score for s in data_samples])
        else:
            target = torch.cat([s.gt_label for s in data_samples])

        losses = {}
        base = self._base_loss(cls_score, target)
        if dist_score is None:
            if teacher_labels is not None:
                raise ValueError(f'{type(self).__name__}: distillation from a teacher needs the twin '
                                 'head: set distillation=True')
            losses['loss'] = base
        else:
            if teacher_labels is None:
                dist = self._base_loss(dist_score, target)
                losses['loss'] = (base + dist) / 2
            else:
                dist = F.cross_entropy(dist_score, teacher_labels)
                losses['loss'] = (1 - distill_alpha) * base + distill_alpha * dist
            losses['ce_cls'], losses['ce_dist'] = base.detach(), dist.detach()

        if self.cal_acc:
            if target.ndim != 1:
                raise ValueError('cal_acc needs hard labels; with mixup / cutmix set cal_acc=False')
            score = cls_score if dist_score is None else (cls_score + dist_score) / 2
            acc = Accuracy.calculate(score.detach(), target, topk=self.topk)
            losses.update({f'accuracy_top-{k}': a for k, a in zip(self.topk, acc)})
        return losses


@MODELS.register_module()
class SHViTClsHead(DistillableClsHead):
    """SHViT's classifier: average pool, then ``BN_Linear`` (BatchNorm1d ``bn`` + Linear ``l``), and
    its twin when ``distillation`` (the authors' ``head_dist``). (N, C, H, W) -> (N, num_classes).
    Arguments: :class:`DistillableClsHead`; ``distillation`` defaults to False (the released models
    have no twin)."""

    def make_classifier(self, in_channels, num_classes):
        return nn.Sequential(OrderedDict(bn=nn.BatchNorm1d(in_channels), l=nn.Linear(in_channels, num_classes)))


@MODELS.register_module()
class SwiftFormerClsHead(DistillableClsHead):
    """SwiftFormer's classifier after its final BatchNorm (the backbone's ``norm6``): average pool,
    Linear ``head`` and Linear ``dist_head``. (N, C, H, W) -> (N, num_classes). Arguments:
    :class:`DistillableClsHead`; ``distillation`` defaults to True (the released models)."""

    def __init__(self, num_classes, in_channels, distillation=True, **kwargs):
        super().__init__(num_classes, in_channels, distillation=distillation, **kwargs)

    def make_classifier(self, in_channels, num_classes):
        return nn.Linear(in_channels, num_classes)


@MODELS.register_module()
class LITv2ClsHead(DistillableClsHead):
    """LITv2's classifier after its final LayerNorm (the backbone's ``norm3``): average pool, Linear
    ``head``. (N, C, H, W) -> (N, num_classes). Arguments: :class:`DistillableClsHead`
    (``distillation`` defaults to False; the authors train without a teacher)."""

    def make_classifier(self, in_channels, num_classes):
        return nn.Linear(in_channels, num_classes)
