"""Model wrappers (registered in mmengine's ``MODEL_WRAPPERS``)."""
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for gloo on CPU: SyncBN layers, which have no CPU kernel,
    become BatchNorm (statistics per process)."""

    def __init__(self, module, **kwargs):
        super().__init__(module=revert_sync_batchnorm(module), **kwargs)
