"""Optimiser wrappers with adaptive gradient clipping (AGC, Brock et al. 2021), for SHViT's recipe.

The SHViT and SwiftFormer authors train with DeiT's loop, which calls timm's
``NativeScaler(loss, optimizer, clip_grad=c, clip_mode='agc', parameters=model.parameters())``:
after the backward pass (and, under AMP, after unscaling) it runs
``timm.utils.agc.adaptive_clip_grad(parameters, c)`` over *every* parameter of the model (eps 1e-3,
unit-wise L2 norms along all but the first dimension, 1-D tensors as a whole; nothing skipped, not
even the classifier, unlike the NFNet paper), then steps. These wrappers do the same inside
mmengine: ``_clip_grad`` runs timm's function over the parameters of the optimiser's param groups
(all of the model's trainable ones; parameters without a gradient are skipped, as timm does).

    optim_wrapper = dict(type='AGCOptimWrapper', clip_factor=0.02, optimizer=dict(type='AdamW', ...))

``AGCAmpOptimWrapper`` is the mixed-precision variant: mmengine's ``AmpOptimWrapper`` unscales the
gradients before calling ``_clip_grad``, as timm's ``NativeScaler`` does before clipping.
"""
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from timm.utils.agc import adaptive_clip_grad


class _AGCMixin:
    """Replaces mmengine's norm/value clipping by timm's ``adaptive_clip_grad``."""

    def _init_agc(self, clip_factor, eps, norm_type):
        if not clip_factor > 0:
            raise ValueError(f'{type(self).__name__}: clip_factor must be > 0, got {clip_factor}')
        if not eps > 0:
            raise ValueError(f'{type(self).__name__}: eps must be > 0, got {eps}')
        # mmengine's step() calls self._clip_grad() when clip_grad_kwargs is non-empty
        self.clip_func = adaptive_clip_grad
        self.clip_grad_kwargs = dict(clip_factor=float(clip_factor), eps=float(eps), norm_type=float(norm_type))
        self.grad_name = 'grad_agc'  # adaptive_clip_grad returns None: nothing is logged under it

    @property
    def clip_factor(self):
        return self.clip_grad_kwargs['clip_factor']


@OPTIM_WRAPPERS.register_module()
class AGCOptimWrapper(_AGCMixin, OptimWrapper):
    """``OptimWrapper`` that applies adaptive gradient clipping before each optimiser step.

    Args:
        optimizer: the optimiser (built by mmengine from ``optimizer=dict(...)``).
        clip_factor (float): AGC's lambda: a unit's gradient norm is capped at
            ``clip_factor * max(||W_unit||, eps)``. SHViT: 0.02, SwiftFormer: 0.01 (timm's default).
        eps (float): floor of the parameter norm, timm's default 1e-3.
        norm_type (float): the p of the unit-wise p-norms, 2.
        **kwargs: ``accumulative_counts`` of ``OptimWrapper``. ``clip_grad`` is not accepted: AGC
            replaces it.
    """

    def __init__(self, optimizer, clip_factor=0.02, eps=1e-3, norm_type=2.0, **kwargs):
        if kwargs.get('clip_grad') is not None:
            raise ValueError('AGCOptimWrapper: clip_grad cannot be combined with adaptive gradient clipping')
        kwargs.pop('clip_grad', None)
        super().__init__(optimizer, **kwargs)
        self._init_agc(clip_factor, eps, norm_type)


@OPTIM_WRAPPERS.register_module()
class AGCAmpOptimWrapper(_AGCMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` with adaptive gradient clipping on the unscaled gradients.

    Args: those of ``AGCOptimWrapper`` plus ``AmpOptimWrapper``'s (``loss_scale``, ``dtype``, ...).
    """

    def __init__(self, clip_factor=0.02, eps=1e-3, norm_type=2.0, **kwargs):
        if kwargs.get('clip_grad') is not None:
            raise ValueError('AGCAmpOptimWrapper: clip_grad cannot be combined with adaptive gradient clipping')
        kwargs.pop('clip_grad', None)
        super().__init__(**kwargs)
        self._init_agc(clip_factor, eps, norm_type)
