"""Training runs that survive preemption and stop on what cannot go on: :func:`enable_fault_tolerance`
puts :class:`~effvit_mm.engine.hooks.PreemptionHook`, :class:`~effvit_mm.engine.hooks.NonFiniteLossHook`
and atomic checkpoints (:class:`~effvit_mm.engine.hooks.AtomicCheckpointHook`, the ``atomic_local``
backend) into a config; ``tools/train.py`` does it for every run."""
from mmengine.hooks import CheckpointHook

from .hooks.preemption_hook import ATOMIC, PreemptionHook

__all__ = ['enable_fault_tolerance']


def enable_fault_tolerance(cfg):
    """Put :class:`~effvit_mm.engine.hooks.PreemptionHook`, :class:`~effvit_mm.engine.hooks.NonFiniteLossHook`
    and atomic checkpoint writes (the checkpoint hook's ``backend_args``, unless the config names a
    backend; mmengine's hook becomes :class:`~effvit_mm.engine.hooks.AtomicCheckpointHook`) into ``cfg``,
    and make the train loader's workers leave the hook's signals to the main process
    (:func:`~effvit_mm.engine.worker_signals.spare_worker`, through a
    :class:`~effvit_mm.engine.exact_resume.SeededDataset` around the train set, which
    :func:`~effvit_mm.engine.enable_exact_resume` keeps). Idempotent; before or after ``enable_exact_resume``
    alike."""
    hooks = list(cfg.get('custom_hooks') or [])
    for hook in ('PreemptionHook', 'NonFiniteLossHook'):
        if not any(h.get('type') == hook for h in hooks):
            hooks.append(dict(type=hook))
    cfg.custom_hooks = hooks
    preemption = next(h for h in hooks if h.get('type') == 'PreemptionHook')
    loader = cfg.get('train_dataloader')
    if loader:
        if loader.dataset.get('type') != 'SeededDataset':
            loader.dataset = dict(type='SeededDataset', dataset=loader.dataset)
        loader.dataset['worker_signals'] = list(preemption.get('signals', PreemptionHook.SIGNALS))
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in ('CheckpointHook', CheckpointHook):
        checkpoint['type'] = 'AtomicCheckpointHook'  # last_checkpoint replaced at once, old files removed after
    if checkpoint is not None and not checkpoint.get('backend_args'):
        checkpoint['backend_args'] = dict(ATOMIC)
