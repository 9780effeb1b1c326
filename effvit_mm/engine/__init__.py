"""Training-loop pieces for mmengine (importing registers them in mmengine's root registries)."""
from .hooks import ProgressBarHook
from .optim_wrappers import AGCAmpOptimWrapper, AGCOptimWrapper

__all__ = ['AGCAmpOptimWrapper', 'AGCOptimWrapper', 'ProgressBarHook']
