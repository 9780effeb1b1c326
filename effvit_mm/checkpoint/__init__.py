"""Checkpoints: loading into backbones and whole models with one-line errors (:mod:`.loading`), torch's
``weights_only`` loading with a per-load allow-list (:mod:`.safe_load`), and conversion of the authors' /
timm's releases (:mod:`.convert`)."""
from .loading import (PARTIAL_OPTION, CheckpointFitHook, CheckpointMismatchError, extract_state_dict,
                      fit_state_dict, load_model_checkpoint, load_pretrained, rename_keys)
from .safe_load import CheckpointFileError, safe_load

__all__ = ['PARTIAL_OPTION', 'CheckpointFileError', 'CheckpointFitHook', 'CheckpointMismatchError',
           'extract_state_dict', 'fit_state_dict', 'load_model_checkpoint', 'load_pretrained', 'rename_keys',
           'safe_load']
