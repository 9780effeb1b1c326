"""``PreemptionHook``: save a checkpoint of the current iteration and exit when the cluster signals.

Clusters send SIGTERM (Slurm: a signal chosen with ``--signal``) some seconds before they kill a job.
Every rank finishes its iteration, a checkpoint of that iteration is saved (weights, optimiser,
schedulers, message hub, every rank's random states, the position in the epoch) and the process exits
with :data:`PREEMPTED_EXIT_CODE`, on which ``tools/slurm_train.sh`` requeues and torchrun restarts.

The deadline: no checkpoint ``deadline`` seconds after the first signal, or a second signal, ends the
process at once with 128 + the signal's number. Once the checkpoint is saved, a forced end (a teardown
that hangs) exits with :data:`PREEMPTED_EXIT_CODE` instead, so the job is still requeued. The default,
25 s, ends before the kill that follows SIGTERM under Slurm's default ``KillWait`` (30 s) and torchrun's
grace period (30 s); with ``#SBATCH --signal=USR1@120`` a deadline of about 110 s fits.
"""
import os
import os.path as osp
import signal
import threading
import time

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from ...checkpoint.atomic import atomic_write
from ..stop_flags import agreed_flags, note_signal, reset

__all__ = ['ATOMIC', 'DEADLINE', 'PREEMPTED_EXIT_CODE', 'PreemptionHook']

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, to be retried
DEADLINE = 25.0  # seconds (module docstring)
ATOMIC = dict(backend='atomic_local')  # effvit_mm.checkpoint.atomic.AtomicLocalBackend


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Save and exit on ``signals`` (module docstring).

    Args:
        signals (Sequence[str]): signal names to react to (default SIGTERM and SIGUSR1).
        deadline (float): seconds from the first signal after which the process ends without waiting
            any longer (exit code 128 + the signal's number before the checkpoint is saved,
            :data:`PREEMPTED_EXIT_CODE` after), as on a second signal (one more than 2 s after the first:
            copies of the first, from the launcher, are ignored).
    """
    priority = 'LOWEST'  # after CheckpointHook and RandomStateHook: the iteration is complete
    SIGNALS = ('SIGTERM', 'SIGUSR1')

    def __init__(self, signals=SIGNALS, deadline=DEADLINE):
        unknown = [s for s in signals if not hasattr(signal, s)]
        if unknown:
            raise ValueError(f'PreemptionHook: unknown signal(s) {", ".join(unknown)} (e.g. SIGTERM, SIGUSR1)')
        if deadline <= 0:
            raise ValueError(f'PreemptionHook: deadline must be positive seconds, not {deadline}')
        self.signals = [getattr(signal, s) for s in signals]
        self.deadline = deadline
        self.received = None
        self.exit_code = None  # of a forced end

    def before_train(self, runner):
        reset()
        self.received = self.exit_code = None
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            for sig in self.signals:
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.received is not None:
            # a second signal: no more waiting; but the same preemption can come twice at once (Slurm
            # signals every process of a job, torchrun forwards what it gets to its workers)
            if time.monotonic() - self.received_at > 2.0:
                self._end_now()
            return
        self.received, self.received_at = signum, time.monotonic()
        self.exit_code = 128 + signum
        note_signal(signum)
        timer = threading.Timer(self.deadline, self._end_now)
        timer.daemon = True
        timer.start()

    def _end_now(self):
        os._exit(self.exit_code)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        signum, _ = agreed_flags(runner, outputs)  # every rank stops at the same iteration
        if not signum:
            return
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False, backend_args=self._backend_args(runner))
        if is_main_process():
            path = osp.join(runner.work_dir, filename)
            runner.message_hub.update_info('last_ckpt', path)
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), lambda f: f.write(path.encode()))
        self.exit_code = PREEMPTED_EXIT_CODE  # saved: a forced end from now on still asks for a requeue
        epoch = f' (epoch {runner.epoch + 1})' if isinstance(runner.train_loop, EpochBasedTrainLoop) else ''
        print_log(f'{signal.Signals(signum).name} received: stopped after iteration {runner.iter + 1}{epoch}, saved '
                  f'{filename}; continue with --resume', logger='current')
        barrier()
        raise SystemExit(PREEMPTED_EXIT_CODE)

    @staticmethod
    def _backend_args(runner):
        """The checkpoint hook's file backend (atomic unless the config chose another), else atomic."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        return (hook.backend_args if hook is not None else None) or ATOMIC
