"""``RandomStateHook``: every rank's random states in each training checkpoint, restored on resume
(the training process's half of :mod:`effvit_mm.engine.exact_resume`)."""
import logging

from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from ..exact_resume import get_random_states, set_random_states
from ..stop_flags import agreed_flags
from .preemption_hook import PreemptionHook

__all__ = ['RandomStateHook']


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves every rank's random states (Python's, NumPy's, torch's CPU and CUDA generators) in each
    checkpoint (``checkpoint['random_states']``, one entry per rank) and restores them on resume, right
    before the first training step. Validation does not consume them (its states are put back after it),
    and the train loader's iterators draw their worker seeds from a generator of their own.

    Only the main process writes checkpoints, so every rank's states are gathered (a collective of a few
    kB) at the end of each epoch and after a training step when a checkpoint of it is due (the
    checkpoint hook's schedule, or a preemption), right before ``CheckpointHook`` (priority ``VERY_LOW``,
    90) saves them; nothing draws random numbers in between. A checkpoint saved at another point (a best
    checkpoint after an iteration-based validation) holds none.

    A checkpoint without them (older effvit_mm, plain mmengine, a best checkpoint), from another number of
    processes, or saved inside an epoch of mmengine's own epoch-based loop (which restarts that epoch from
    its first batch; the loop :func:`~effvit_mm.engine.enable_exact_resume` puts in does not) still
    resumes, with a warning that the continuation is not exact."""
    priority = 89
    key = 'random_states'

    def __init__(self):
        self._states = None  # every rank's states (main process), as of training iteration self._at
        self._at = None
        self._pending = None  # this rank's states from the resumed checkpoint
        self._outside_val = None  # the training's states while a validation runs

    def before_train(self, runner):
        import torch
        generator = torch.Generator()
        generator.manual_seed(runner.seed + get_rank())
        runner.train_dataloader.generator = generator  # worker seeds no longer drawn from the global stream

    def after_load_checkpoint(self, runner, checkpoint):
        if not runner._resume:  # load_from: weights only, a new run
            return
        meta, loop = checkpoint['meta'], runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and not getattr(loop, 'resumes_inside_epochs', False) \
                and meta['iter'] != meta['epoch'] * len(loop.dataloader):
            print_log(f'the checkpoint was saved inside an epoch (iteration {meta["iter"]}): mmengine\'s epoch loop '
                      'trains that epoch again from its first batch (not an exact continuation); resume from an '
                      'end-of-epoch checkpoint instead', logger='current', level=logging.WARNING)
        states = checkpoint.get(self.key)
        rank, world_size = get_rank(), get_world_size()
        if states is None:
            print_log(f'the checkpoint holds no random states ({self.key}): the resumed run goes on with other '
                      'random numbers than the interrupted one (not an exact continuation)',
                      logger='current', level=logging.WARNING)
            return
        if len(states) != world_size:
            print_log(f'the checkpoint holds the random states of {len(states)} processes, this run has '
                      f'{world_size}: the continuation is not exact', logger='current', level=logging.WARNING)
        self._pending = states[rank] if rank < len(states) else None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self._pending is not None:
            set_random_states(self._pending)
            self._pending = None

    def _gather(self, iterations):
        self._states, self._at = all_gather_object(get_random_states()), iterations

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        due = hook is not None and not hook.by_epoch and (
            hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or
            (hook.save_last and hook.is_last_train_iter(runner)))
        preempted = any(isinstance(h, PreemptionHook) for h in runner.hooks) and agreed_flags(runner, outputs)[0]
        if due or preempted:  # a checkpoint of this iteration, or a preemption's
            self._gather(runner.iter + 1)

    def after_train_epoch(self, runner):
        self._gather(runner.iter)  # once an epoch: epoch checkpoints, best checkpoints after validation

    def before_val(self, runner):
        self._outside_val = get_random_states()

    def after_val(self, runner):
        set_random_states(self._outside_val)
        self._outside_val = None

    def before_save_checkpoint(self, runner, checkpoint):
        current = checkpoint['meta']['iter'] == self._at
        checkpoint[self.key] = self._states if current else None
