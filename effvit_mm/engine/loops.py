"""An epoch-based training loop that resumes exactly inside an epoch.

mmengine's ``EpochBasedTrainLoop``, resumed from a checkpoint saved at iteration k of epoch e, trains
epoch e again from its first batch. :class:`ResumableEpochBasedTrainLoop` skips the batches of epoch e
that were already trained: it drops them from the loader's batch sampler (indices only: no sample is
loaded or augmented), so epoch e goes on with batch k + 1 (``batch_idx`` k) under the same shuffle. With
:mod:`~effvit_mm.engine.exact_resume` (per-sample seeds, the random states of every rank), the resumed
run is the uninterrupted one. mmengine's iteration-based loop already skips the trained iterations.
"""
import contextlib
import itertools

from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop

__all__ = ['ResumableEpochBasedTrainLoop', 'skipping_batches']


class _SkippedBatchSampler:
    """The batches of ``batch_sampler`` from the ``skip``-th on; its length stays the full epoch's, as
    the hooks count batches of the whole epoch (``batch_idx`` goes on from ``skip``)."""

    def __init__(self, batch_sampler, skip):
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self):
        return len(self.batch_sampler)


@contextlib.contextmanager
def skipping_batches(dataloader, skip):
    """Within the block, ``dataloader`` (a torch DataLoader with a batch sampler) starts its epoch at
    batch ``skip``. A DataLoader refuses a new batch sampler once built; an iterator made in the block
    (also a persistent workers' one, which reads the sampler again at each epoch) takes the wrapped one."""
    if skip <= 0:
        yield
        return
    if dataloader.batch_sampler is None:
        raise ValueError('a DataLoader without a batch sampler (batch_size=None) cannot resume inside an epoch')
    original = dataloader.batch_sampler
    object.__setattr__(dataloader, 'batch_sampler', _SkippedBatchSampler(original, skip))
    try:
        yield
    finally:
        object.__setattr__(dataloader, 'batch_sampler', original)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` (same arguments) that, resumed inside an epoch, trains only that epoch's
    remaining batches (module docstring)."""
    resumes_inside_epochs = True

    def run_epoch(self):
        self.runner.call_hook('before_train_epoch')  # the sampler's epoch is set here (shuffle order)
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)  # batches of this epoch already trained
        with skipping_batches(self.dataloader, done):
            for idx, data_batch in enumerate(self.dataloader, start=max(done, 0)):
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
