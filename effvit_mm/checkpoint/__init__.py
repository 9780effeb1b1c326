"""Checkpoints: loading into backbones and whole models with one-line errors (:mod:`.loading`), torch's
``weights_only`` loading with a per-load allow-list (:mod:`.safe_load`), conversion of the authors' /
timm's releases (:mod:`.convert`), files written atomically (:mod:`.atomic`) and the checkpoint that
``--resume`` continues from (:mod:`.resume`)."""
from .atomic import AtomicLocalBackend, CheckpointWriteError, atomic_write
from .loading import (PARTIAL_OPTION, CheckpointFitHook, CheckpointMismatchError, extract_state_dict,
                      fit_state_dict, load_model_checkpoint, load_pretrained, rename_keys)
from .resume import newest_training_checkpoint, resume_from
from .safe_load import CheckpointFileError, safe_load

__all__ = ['PARTIAL_OPTION', 'AtomicLocalBackend', 'CheckpointFileError', 'CheckpointWriteError', 'atomic_write',
           'newest_training_checkpoint', 'resume_from', 'CheckpointFitHook', 'CheckpointMismatchError',
           'extract_state_dict', 'fit_state_dict', 'load_model_checkpoint', 'load_pretrained', 'rename_keys',
           'safe_load']
