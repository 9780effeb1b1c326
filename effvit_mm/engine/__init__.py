"""Training-loop pieces for mmengine (importing registers them in mmengine's root registries)."""
from .exact_resume import RandomStateHook, SeededDataset, SeededSampler, enable_exact_resume
from .hooks import ProgressBarHook
from .model_wrappers import CPUDistributedDataParallel
from .optim_wrappers import AGCAmpOptimWrapper, AGCOptimWrapper
from .timm_scheduler import TimmLRScheduler

__all__ = ['AGCAmpOptimWrapper', 'AGCOptimWrapper', 'CPUDistributedDataParallel', 'ProgressBarHook',
           'RandomStateHook', 'SeededDataset', 'SeededSampler', 'TimmLRScheduler', 'enable_exact_resume']
