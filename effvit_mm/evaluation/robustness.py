"""Adversarial robustness of a classifier: torchattacks' FGSM / PGD in pixel space, top-1 before and
after, attack success rate, and how much the attack moves the attention maps (attention disruption).

Definitions (``RobustnessMeter.summary``):

* clean / adversarial top-1: % of images classified correctly before / after the attack;
* attack success rate: % of the correctly classified clean images that the attack makes misclassified;
* attention disruption: per image and attention module, the total-variation distance
  ``0.5 * sum_k |p_k - q_k|`` between the head-averaged attention distributions over the keys of the
  clean (p) and attacked (q) image, averaged over all query tokens, then over images (per module) and
  over modules (``mean``); 0 = unchanged, 1 = disjoint. For reference, the same distance under random
  +-epsilon noise (each pixel's sign drawn at random) is reported as ``noise_disruption``.
"""
from collections import defaultdict
from dataclasses import dataclass

import torch
import torchattacks

from ..visualization.attention import attention_disruption, capture_attention

ATTACKS = ('fgsm', 'pgd')


def build_attack(model, name, epsilon, steps=10, alpha=None, random_start=True):
    """torchattacks' ``FGSM`` or ``PGD`` (L-inf) on ``model`` (pixels in [0, 1] -> logits).

    ``epsilon`` and ``alpha`` (PGD's step, default ``2.5 * epsilon / steps``, Madry et al.) are in
    pixel units; ``random_start``: PGD starts at a uniform random point of the epsilon ball.
    """
    if epsilon < 0:
        raise ValueError(f'epsilon={epsilon} must be >= 0 (pixel units, images in [0, 1])')
    if name == 'fgsm':
        return torchattacks.FGSM(model, eps=epsilon)
    if name == 'pgd':
        if steps < 1:
            raise ValueError(f'PGD needs steps >= 1, got {steps}')
        alpha = 2.5 * epsilon / steps if alpha is None else alpha
        return torchattacks.PGD(model, eps=epsilon, alpha=alpha, steps=steps, random_start=random_start)
    raise ValueError(f'unknown attack {name}; choose from {", ".join(ATTACKS)}')


@dataclass
class AttackedBatch:
    """One attacked batch: adversarial pixels (B, 3, H, W), clean and adversarial predictions (B,),
    and the attention maps ({module name: Attention}, empty without attention modules)."""
    adversarial: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    clean_attention: dict
    adv_attention: dict
    noise_attention: dict


def _predict(model, pixels):
    """(predictions (B,), {name: Attention}) of one forward without gradients."""
    with torch.no_grad(), capture_attention(model) as maps:
        pred = model(pixels).argmax(1)
    return pred, maps


def attack_batch(model, attack, pixels, labels, generator=None):
    """Attack a batch (pixels (B, 3, H, W) in [0, 1], labels (B,)); also runs the model on the same
    images under random +-epsilon sign noise (the reference of the attention disruption)."""
    adversarial = attack(pixels, labels)
    clean_pred, clean_attention = _predict(model, pixels)
    adv_pred, adv_attention = _predict(model, adversarial)
    signs = torch.randint(0, 2, pixels.shape, generator=generator).to(pixels) * 2 - 1
    _, noise_attention = _predict(model, (pixels + attack.eps * signs).clamp(0, 1))
    return AttackedBatch(adversarial, clean_pred, adv_pred, clean_attention, adv_attention, noise_attention)


class RobustnessMeter:
    """Accumulates :class:`AttackedBatch` results; :meth:`summary` gives the metrics (module docstring)."""

    def __init__(self):
        self.total = self.clean_correct = self.adv_correct = self.flipped = 0
        self.disruption = defaultdict(list)
        self.noise_disruption = defaultdict(list)

    def update(self, batch, labels):
        clean_ok, adv_ok = batch.clean_pred == labels, batch.adv_pred == labels
        self.total += len(labels)
        self.clean_correct += int(clean_ok.sum())
        self.adv_correct += int(adv_ok.sum())
        self.flipped += int((clean_ok & ~adv_ok).sum())
        for name, d in attention_disruption(batch.clean_attention, batch.adv_attention).items():
            self.disruption[name].append(d)
        for name, d in attention_disruption(batch.clean_attention, batch.noise_attention).items():
            self.noise_disruption[name].append(d)

    @staticmethod
    def _average(per_module):
        if not per_module:
            return None
        layers = {name: torch.cat(values).mean().item() for name, values in per_module.items()}
        return dict(mean=sum(layers.values()) / len(layers), layers=layers)

    def summary(self):
        """{num_samples, clean_top1, adv_top1, attack_success_rate (all %), attention_disruption,
        noise_disruption ({mean, layers: {module: value}} or None without attention)}."""
        if not self.total:
            raise ValueError('no images were evaluated')
        return dict(num_samples=self.total,
                    clean_top1=100 * self.clean_correct / self.total,
                    adv_top1=100 * self.adv_correct / self.total,
                    attack_success_rate=100 * self.flipped / self.clean_correct if self.clean_correct else None,
                    attention_disruption=self._average(self.disruption),
                    noise_disruption=self._average(self.noise_disruption))
