"""Training runs that survive preemption and stop on what cannot go on (:func:`enable_fault_tolerance`
puts both hooks and atomic checkpoints into a config; ``tools/train.py`` does it for every run):

- :class:`PreemptionHook`: clusters send SIGTERM (Slurm: a signal chosen with ``--signal``) some seconds
  before they kill a job. Every rank finishes its iteration, a checkpoint of that iteration is saved
  (weights, optimiser, schedulers, message hub, every rank's random states, the position in the epoch)
  and the process exits with :data:`PREEMPTED_EXIT_CODE`, on which ``tools/slurm_train.sh`` requeues. A
  second signal, or no checkpoint within ``deadline`` seconds, ends the process at once.
- :class:`NonFiniteLossHook`: a NaN or infinite loss stops the run at that iteration with one line (the
  iteration and the loss terms); the last checkpoint stays the last good one. Runs whose optimiser
  wrapper skips such steps itself (AMP's loss scaler) are left alone.
"""
import math
import os
import signal
import threading
import time

import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['PREEMPTED_EXIT_CODE', 'NonFiniteLoss', 'NonFiniteLossHook', 'PreemptionHook', 'atomic_write_text',
           'enable_fault_tolerance']

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, to be retried
ATOMIC = dict(backend='atomic_local')  # effvit_mm.engine.checkpoints.AtomicLocalBackend


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder (flushed, fsynced, renamed):
    a reader sees the old contents or the new, never a part."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Save and exit on ``signals`` (module docstring).

    Args:
        signals (Sequence[str]): signal names to react to (default SIGTERM and SIGUSR1).
        deadline (float): seconds from the first signal after which the process ends without waiting
            for the checkpoint (exit code 128 + the signal's number), as on a second signal (one more
            than 2 s after the first: copies of the first, from the launcher, are ignored).
    """
    priority = 'LOWEST'  # after CheckpointHook and RandomStateHook: the iteration is complete

    def __init__(self, signals=('SIGTERM', 'SIGUSR1'), deadline=60.0):
        unknown = [s for s in signals if not hasattr(signal, s)]
        if unknown:
            raise ValueError(f'PreemptionHook: unknown signal(s) {", ".join(unknown)} (e.g. SIGTERM, SIGUSR1)')
        self.signals = [getattr(signal, s) for s in signals]
        self.deadline = deadline
        self.received = None

    def before_train(self, runner):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            for sig in self.signals:
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.received is not None:
            # a second signal: no more waiting; but the same preemption can come twice at once (Slurm
            # signals every process of a job, torchrun forwards what it gets to its workers)
            if time.monotonic() - self.received_at > 2.0:
                os._exit(128 + signum)
            return
        self.received, self.received_at = signum, time.monotonic()
        timer = threading.Timer(self.deadline, os._exit, (128 + signum, ))
        timer.daemon = True
        timer.start()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        flag = torch.tensor([0 if self.received is None else int(self.received)])
        all_reduce(flag, op='max')  # every rank stops at the same iteration
        if not flag.item():
            return
        name = signal.Signals(flag.item()).name
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False, backend_args=ATOMIC)
        if is_main_process():
            path = os.path.join(runner.work_dir, filename)
            runner.message_hub.update_info('last_ckpt', path)
            atomic_write_text(os.path.join(runner.work_dir, 'last_checkpoint'), path)
        print_log(f'{name} received: stopped after iteration {runner.iter + 1} (epoch {runner.epoch + 1}), saved '
                  f'{filename}; continue with --resume', logger='current')
        barrier()
        raise SystemExit(PREEMPTED_EXIT_CODE)


class NonFiniteLoss(RuntimeError):
    """A loss that is NaN or infinite (the iteration and the loss terms in one line)."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop at the first iteration whose loss is NaN or infinite (module docstring), unless
    ``allow`` or the optimiser wrapper is mmengine's ``AmpOptimWrapper`` (its loss scaler skips them)."""
    priority = 'ABOVE_NORMAL'  # before the checkpoint and logger hooks of the same iteration

    def __init__(self, allow=False):
        self.allow = allow

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        from mmengine.optim import AmpOptimWrapper
        if self.allow or not outputs or isinstance(runner.optim_wrapper, AmpOptimWrapper):
            return
        terms = {k: float(v) for k, v in outputs.items() if 'loss' in k}
        bad = torch.tensor([0.0 if all(map(math.isfinite, terms.values())) else 1.0])
        all_reduce(bad, op='max')  # every rank stops (another rank's loss may be the bad one)
        if not bad.item():
            return
        last = runner.message_hub.get_info('last_ckpt')
        shown = ', '.join(f'{k}={v:.4g}' for k, v in terms.items())
        raise NonFiniteLoss(f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): {shown}; the '
                            f'last good checkpoint is {last or "none (none saved yet)"}; lower the learning rate or '
                            'clip gradients, or set custom_hooks NonFiniteLossHook(allow=True) to go on')


def enable_fault_tolerance(cfg):
    """Put :class:`PreemptionHook`, :class:`NonFiniteLossHook` and atomic checkpoint writes (the
    checkpoint hook's ``backend_args``, unless the config names a backend) into ``cfg``. Idempotent."""
    hooks = list(cfg.get('custom_hooks') or [])
    for hook in ('PreemptionHook', 'NonFiniteLossHook'):
        if not any(h.get('type') == hook for h in hooks):
            hooks.append(dict(type=hook))
    cfg.custom_hooks = hooks
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and not checkpoint.get('backend_args'):
        checkpoint['backend_args'] = dict(ATOMIC)
