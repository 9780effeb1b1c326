"""``NonFiniteLossHook``: a NaN or infinite loss stops the run at that iteration with one line (the
iteration and the loss terms); the last checkpoint stays the last good one.

Runs whose optimiser wrapper skips such steps itself (AMP's loss scaler) are left alone. mmdet's
``CheckInvalidLossHook`` is not enough: it looks every 50 iterations, at the total loss of its own rank
only, so the other ranks wait in their next all-reduce, and fails with a bare ``AssertionError``; it
would also stop AMP runs.
"""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..stop_flags import agreed_flags, loss_terms

__all__ = ['NonFiniteLoss', 'NonFiniteLossHook']


class NonFiniteLoss(RuntimeError):
    """A loss that is NaN or infinite (the iteration and the loss terms in one line)."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop at the first iteration whose loss is NaN or infinite on any rank (module docstring), unless
    ``allow`` or the optimiser wrapper is mmengine's ``AmpOptimWrapper`` (its loss scaler skips them)."""
    priority = 85  # after the logger (the iteration's line is printed), before the random states and checkpoint

    def __init__(self, allow=False):
        self.allow = allow

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        from mmengine.optim import AmpOptimWrapper
        _, non_finite = agreed_flags(runner, outputs)  # every rank stops (another rank's loss may be the bad one)
        if not non_finite or self.allow or isinstance(runner.optim_wrapper, AmpOptimWrapper):
            return
        last = runner.message_hub.get_info('last_ckpt')
        shown = ', '.join(f'{k}={v:.4g}' for k, v in loss_terms(outputs).items())
        raise NonFiniteLoss(f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): {shown}; the '
                            f'last good checkpoint is {last or "none (none saved yet)"}; lower the learning rate or '
                            'clip gradients, or set custom_hooks NonFiniteLossHook(allow=True) to go on')
