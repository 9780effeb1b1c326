"""Training runs that resume exactly: a run interrupted at any point and resumed from its last
checkpoint ends with the same weights, optimiser state and logged losses as the run that was never
interrupted (bit for bit on CPU).

Two sources of randomness are handled, each by making it a function of things a checkpoint restores:

* **Data** (augmentations in the data pipeline, run by the loader's workers or, with
  ``num_workers=0``, by the training process): :class:`SeededSampler` tags every index it yields with
  a seed derived from (run seed, epoch, rank, position in the epoch), and :class:`SeededDataset` runs
  the pipeline of that sample under this seed (Python's ``random``, NumPy's and torch's CPU
  generators), then puts the caller's generators back. So a sample's augmentation depends neither on
  which worker draws it nor on how long the workers have lived (persistent or not), and a
  re-created loader repeats it.
* **The training process** (drop path, mixup / cutmix, the detectors' proposal samplers):
  :class:`~effvit_mm.engine.hooks.RandomStateHook` saves the states of Python's, NumPy's, torch's CPU
  and CUDA generators of every rank in each checkpoint (``checkpoint['random_states']``, one entry per
  rank) and restores them, on ``--resume``, right before the first training step. Validation does not
  consume them (its states are put back after it), and the train loader's iterators draw their worker
  seeds from a generator of their own.

:func:`enable_exact_resume` puts the three into a config (``tools/train.py`` does it for every run).
"""
import contextlib
import random

import numpy as np
import torch
from mmengine.dist import get_rank, sync_random_seed
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, Sampler, get_worker_info

from .worker_signals import spare_worker

__all__ = ['SeededIndex', 'SeededSampler', 'SeededDataset', 'enable_exact_resume', 'get_random_states',
           'set_random_states', 'seeded']


class SeededIndex(int):
    """A dataset index that carries the seed its sample is augmented with (``.seed``)."""

    def __new__(cls, index, seed):
        self = super().__new__(cls, index)
        self.seed = seed
        return self

    def __reduce__(self):  # to the loader's workers, with the seed
        return SeededIndex, (int(self), self.seed)


def sample_seed(seed, epoch, rank, position):
    """A 64-bit seed from the run's seed, the epoch, the rank and the position in that rank's epoch."""
    words = np.random.SeedSequence([seed % 2**32, epoch, rank, position]).generate_state(2)
    return int(words[0]) | int(words[1]) << 32


def get_random_states():
    """The states of Python's ``random``, NumPy's global generator, torch's CPU generator and, once
    CUDA is in use, every CUDA device's, as tensors and plain Python values (loadable with torch's
    ``weights_only`` protection)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    states = dict(python=random.getstate(), torch=torch.get_rng_state(),
                  numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                             has_gauss=int(has_gauss), gauss=float(gauss)))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states):
    """Restore what :func:`get_random_states` returned (CUDA states only where CUDA is available)."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    n = states['numpy']
    np.random.set_state(('MT19937', n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['gauss']))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@contextlib.contextmanager
def seeded(seed):
    """Run the block with Python's, NumPy's and torch's CPU generators seeded from ``seed`` (64-bit),
    and give the caller its own states back afterwards."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed([seed & 0xFFFFFFFF, seed >> 32])
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


@DATA_SAMPLERS.register_module()
class SeededSampler(Sampler):
    """The indices of ``sampler`` (a config, built with this sampler's ``dataset`` and ``seed``), each
    as a :class:`SeededIndex` whose seed is :func:`sample_seed` of (seed, epoch, rank, position).
    ``set_epoch`` is passed on."""

    def __init__(self, sampler, dataset, seed=None):
        self.sampler = DATA_SAMPLERS.build(sampler, default_args=dict(dataset=dataset, seed=seed))
        self.dataset = dataset
        self.seed = sync_random_seed() if seed is None else seed
        self.rank = get_rank()
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        for position, index in enumerate(self.sampler):
            yield SeededIndex(index, sample_seed(self.seed, self.epoch, self.rank, position))

    def __len__(self):
        return len(self.sampler)


@DATASETS.register_module()
class SeededDataset(Dataset):
    """``dataset`` (a config or a built data set) whose samples, when asked for by a
    :class:`SeededIndex`, are prepared under that index's seed (:func:`seeded`). Everything else
    (``metainfo``, ``get_data_info``, ...) is the wrapped data set's. In a loader worker, the
    ``worker_signals`` (names) are left to the main process
    (:func:`~effvit_mm.engine.worker_signals.spare_worker`)."""

    def __init__(self, dataset, worker_signals=()):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.worker_signals = tuple(worker_signals)

    @property
    def metainfo(self):
        return self.dataset.metainfo

    def __getattr__(self, name):
        if name == 'dataset':  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if self.worker_signals and get_worker_info() is not None:
            spare_worker(self.worker_signals)
        if not isinstance(index, SeededIndex):
            return self.dataset[index]
        with seeded(index.seed):
            return self.dataset[int(index)]


def enable_exact_resume(cfg):
    """Make the training run of ``cfg`` resumable exactly: its train data set and sampler wrapped in
    :class:`SeededDataset` / :class:`SeededSampler`, a :class:`~effvit_mm.engine.hooks.RandomStateHook`,
    and an epoch-based loop that resumes inside an epoch
    (:class:`~effvit_mm.engine.loops.ResumableEpochBasedTrainLoop`). Idempotent."""
    loader = cfg.get('train_dataloader')
    if not loader:
        return
    if loader.sampler.get('type') != 'SeededSampler':
        loader.sampler = dict(type='SeededSampler', sampler=loader.sampler)
    if loader.dataset.get('type') != 'SeededDataset':
        loader.dataset = dict(type='SeededDataset', dataset=loader.dataset)
    train_cfg = cfg.get('train_cfg')
    if train_cfg and (train_cfg.get('type') == 'EpochBasedTrainLoop' or
                      ('type' not in train_cfg and train_cfg.get('by_epoch'))):
        train_cfg.pop('by_epoch', None)
        train_cfg['type'] = 'ResumableEpochBasedTrainLoop'
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'RandomStateHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='RandomStateHook')]
