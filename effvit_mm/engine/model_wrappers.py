"""Model wrappers (registered in mmengine's ``MODEL_WRAPPERS``)."""
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS

__all__ = ['CPUDistributedDataParallel', 'InferenceOnlyWrapper']


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for gloo on CPU: SyncBN layers, which have no CPU kernel,
    become BatchNorm (statistics per process)."""

    def __init__(self, module, **kwargs):
        super().__init__(module=revert_sync_batchnorm(module), **kwargs)


@MODEL_WRAPPERS.register_module()
class InferenceOnlyWrapper(nn.Module):
    """A model that only predicts, in a distributed test or validation run: each process runs its share of
    the data, nothing is synchronised. For models without trainable parameters (a deployed model), which
    ``DistributedDataParallel`` refuses. The model is ``.module``, as in mmengine's wrappers."""

    def __init__(self, module, **kwargs):
        super().__init__()
        self.module = module

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def train_step(self, data, optim_wrapper):
        raise RuntimeError(f'{type(self.module).__name__} only predicts: it cannot be trained')
