"""Plain-dict parameter groups from mmengine's optimiser-wrapper constructor, so that ``compile=True``
(mmengine's switch: ``torch.compile`` of the model's ``train_step``, optimiser step included) works.

mmengine 0.10's ``DefaultOptimWrapperConstructor`` passes the parameter groups of a ``paramwise_cfg``
through a ``ConfigDict``, which turns every group into a ``ConfigDict``; dynamo cannot trace an
optimiser step over such groups (``InternalTorchDynamoError: 'UserDefinedDictVariable' object has no
attribute 'items'`` in ``AdamW.step``), so every config with a ``paramwise_cfg`` (all of ours) failed
under ``compile=True``. :func:`plain_param_groups` (run on ``import effvit_mm``) makes them ``dict``s
again; nothing else changes (the optimiser keys its state by parameter, not by group).
"""
import functools

from mmengine.optim import DefaultOptimWrapperConstructor

__all__ = ['plain_param_groups']


def plain_param_groups():
    """Wrap ``DefaultOptimWrapperConstructor.__call__`` (and so its subclasses' calls of it): the built
    optimiser's groups become plain dicts. Idempotent."""
    call = DefaultOptimWrapperConstructor.__call__
    if getattr(call, 'plain_groups', False):
        return

    @functools.wraps(call)
    def wrapped(self, model):
        optim_wrapper = call(self, model)
        groups = optim_wrapper.optimizer.param_groups
        groups[:] = [dict(group) if type(group) is not dict else group for group in groups]
        return optim_wrapper

    wrapped.plain_groups = True
    DefaultOptimWrapperConstructor.__call__ = wrapped
