"""Training runs that survive preemption and stop on what cannot go on (:func:`enable_fault_tolerance`
puts both hooks and atomic checkpoints into a config; ``tools/train.py`` does it for every run):

- :class:`PreemptionHook`: clusters send SIGTERM (Slurm: a signal chosen with ``--signal``) some seconds
  before they kill a job. Every rank finishes its iteration, a checkpoint of that iteration is saved
  (weights, optimiser, schedulers, message hub, every rank's random states, the position in the epoch)
  and the process exits with :data:`PREEMPTED_EXIT_CODE`, on which ``tools/slurm_train.sh`` requeues. A
  second signal, or no checkpoint within ``deadline`` seconds, ends the process at once.
- :class:`NonFiniteLossHook`: a NaN or infinite loss stops the run at that iteration with one line (the
  iteration and the loss terms); the last checkpoint stays the last good one. Runs whose optimiser
  wrapper skips such steps itself (AMP's loss scaler) are left alone. (mmdet's ``CheckInvalidLossHook``
  is not enough: it looks every 50 iterations, at the total loss of its own rank only, so the other
  ranks wait in their next all-reduce, and fails with a bare ``AssertionError``; it would also stop AMP
  runs.)
"""
import math
import os
import os.path as osp
import signal
import threading
import time

import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from .checkpoints import atomic_write

__all__ = ['PREEMPTED_EXIT_CODE', 'NonFiniteLoss', 'NonFiniteLossHook', 'PreemptionHook', 'enable_fault_tolerance',
           'spare_worker']

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, to be retried
ATOMIC = dict(backend='atomic_local')  # effvit_mm.engine.checkpoints.AtomicLocalBackend


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
    SIGNALS = ('SIGTERM', 'SIGUSR1')

    def __init__(self, signals=SIGNALS, deadline=60.0):
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
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False, backend_args=self._backend_args(runner))
        if is_main_process():
            path = osp.join(runner.work_dir, filename)
            runner.message_hub.update_info('last_ckpt', path)
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), lambda f: f.write(path.encode()))
        epoch = f' (epoch {runner.epoch + 1})' if isinstance(runner.train_loop, EpochBasedTrainLoop) else ''
        print_log(f'{name} received: stopped after iteration {runner.iter + 1}{epoch}, saved {filename}; continue '
                  'with --resume', logger='current')
        barrier()
        raise SystemExit(PREEMPTED_EXIT_CODE)

    @staticmethod
    def _backend_args(runner):
        """The checkpoint hook's file backend (atomic unless the config chose another), else atomic."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        return (hook.backend_args if hook is not None else None) or ATOMIC


_spared = None  # the process whose signals spare_worker() has taken


def spare_worker(signals):
    """In a DataLoader worker (called once it runs; once a process is enough): ``signals`` sent by anyone
    but the main process are ignored, so that the signal a cluster sends to every process of a job does
    not kill the worker (torch's workers die on SIGTERM, which fails the iteration in progress) and the
    main process can save its checkpoint; sent by the main process (the SIGTERM with which it ends its
    workers), they end the worker, as torch's own handler does.

    The signals are blocked in the calling thread (the worker's only thread before it first returns a
    sample) and so in every thread it starts later; one thread takes them with their sender."""
    global _spared
    if _spared == os.getpid():
        return
    _spared = os.getpid()
    numbers = {getattr(signal, s) for s in signals}
    signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    threading.Thread(target=_take_signals, args=(numbers, os.getppid()), daemon=True).start()


def _take_signals(signals, parent):
    while True:
        if signal.sigwaitinfo(signals).si_pid == parent:
            os._exit(0)


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
    checkpoint hook's ``backend_args``, unless the config names a backend; mmengine's hook becomes
    :class:`~effvit_mm.engine.checkpoints.AtomicCheckpointHook`) into ``cfg``, and make the
    train loader's workers leave the hook's signals to the main process (:func:`spare_worker`, through
    the :class:`~effvit_mm.engine.exact_resume.SeededDataset` that :func:`enable_exact_resume` puts in).
    Idempotent."""
    hooks = list(cfg.get('custom_hooks') or [])
    for hook in ('PreemptionHook', 'NonFiniteLossHook'):
        if not any(h.get('type') == hook for h in hooks):
            hooks.append(dict(type=hook))
    cfg.custom_hooks = hooks
    preemption = next(h for h in hooks if h.get('type') == 'PreemptionHook')
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    if dataset.get('type') == 'SeededDataset':
        dataset['worker_signals'] = list(preemption.get('signals', PreemptionHook.SIGNALS))
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in ('CheckpointHook', CheckpointHook):
        checkpoint['type'] = 'AtomicCheckpointHook'  # last_checkpoint replaced at once, too
    if checkpoint is not None and not checkpoint.get('backend_args'):
        checkpoint['backend_args'] = dict(ATOMIC)
