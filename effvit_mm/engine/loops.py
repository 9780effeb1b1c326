"""An epoch-based training loop that resumes exactly inside an epoch.

mmengine's ``EpochBasedTrainLoop``, resumed from a checkpoint saved at iteration k of epoch e, trains
epoch e again from its first batch. :class:`ResumableEpochBasedTrainLoop` skips the batches of epoch e
that were already trained: it drops them from the loader's batch sampler (indices only: no sample is
loaded or augmented), so epoch e goes on with batch k + 1 (``batch_idx`` k) under the same shuffle, and
every later epoch runs all its batches. With :mod:`~effvit_mm.engine.exact_resume` (per-sample seeds,
the random states of every rank), the resumed run is the uninterrupted one. mmengine's iteration-based
loop already skips the trained iterations.
"""
import itertools

from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop

__all__ = ['ResumableEpochBasedTrainLoop', 'SkippableBatchSampler']


class SkippableBatchSampler:
    """``batch_sampler`` whose iterators start at batch ``skip`` (0: whole epochs). Its length stays the
    full epoch's (the hooks count batches of the whole epoch; ``batch_idx`` goes on from ``skip``). Other
    attributes are the wrapped sampler's.

    It stays in the DataLoader for the whole run: an iterator with persistent workers keeps the batch
    sampler it was made with and iterates it again at every epoch."""

    def __init__(self, batch_sampler):
        self.batch_sampler, self.skip = batch_sampler, 0

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self):
        return len(self.batch_sampler)

    def __getattr__(self, name):
        if name == 'batch_sampler':  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.batch_sampler, name)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` (same arguments) that, resumed inside an epoch, trains only that epoch's
    remaining batches (module docstring)."""
    resumes_inside_epochs = True

    def __init__(self, runner, dataloader, *args, **kwargs):
        super().__init__(runner, dataloader, *args, **kwargs)
        loader = self.dataloader
        if loader.batch_sampler is None:
            raise ValueError('ResumableEpochBasedTrainLoop needs a DataLoader with a batch sampler (batch_size=None '
                             'has none): set a batch_size, or use EpochBasedTrainLoop (no resume inside an epoch)')
        # a DataLoader refuses a new batch sampler once built; before its first iterator, the wrapper is seen by all
        object.__setattr__(loader, 'batch_sampler', SkippableBatchSampler(loader.batch_sampler))

    def run_epoch(self):
        self.runner.call_hook('before_train_epoch')  # the sampler's epoch is set here (shuffle order)
        self.runner.model.train()
        done = max(self._iter - self._epoch * len(self.dataloader), 0)  # batches of this epoch already trained
        sampler = self.dataloader.batch_sampler
        sampler.skip = done
        try:
            batches = iter(self.dataloader)  # takes this epoch's batch indices (torch may call iter twice)
        finally:
            sampler.skip = 0  # later epochs whole
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
