"""Training-loop pieces for mmengine (importing registers them in mmengine's root registries)."""
from ..checkpoint.atomic import AtomicLocalBackend
from ..checkpoint.resume import newest_training_checkpoint
from .exact_resume import SeededDataset, SeededSampler, enable_exact_resume
from .fault_tolerance import enable_fault_tolerance
from .hooks import (AtomicCheckpointHook, NonFiniteLossHook, PreemptionHook, ProgressBarHook, RandomStateHook)
from .loops import ResumableEpochBasedTrainLoop
from .model_wrappers import CPUDistributedDataParallel
from .optim_wrappers import AGCAmpOptimWrapper, AGCOptimWrapper
from .timm_scheduler import TimmLRScheduler

__all__ = ['AGCAmpOptimWrapper', 'AGCOptimWrapper', 'AtomicCheckpointHook', 'AtomicLocalBackend',
           'CPUDistributedDataParallel', 'NonFiniteLossHook', 'PreemptionHook', 'ProgressBarHook', 'RandomStateHook',
           'ResumableEpochBasedTrainLoop', 'SeededDataset', 'SeededSampler', 'TimmLRScheduler', 'enable_exact_resume',
           'enable_fault_tolerance', 'newest_training_checkpoint']
