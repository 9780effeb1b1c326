"""Checkpoints read with torch's ``weights_only`` unpickler (torch's default) without switching that
protection off, and a one-line :class:`CheckpointFileError` for a file it refuses or cannot read.

The allow-list :data:`SAFE_GLOBALS` (mmengine's message-hub data, numpy arrays, scalars and dtypes under
their numpy 1 and 2 names, ``argparse.Namespace``) is applied only during a load, with
``torch.serialization.safe_globals``, never to the whole process. Loads go through :func:`safe_load` (a
file read directly) or mmengine's ``CheckpointLoader.load_checkpoint`` (``load_from``, ``--resume``,
``Pretrained`` init, the inferencers, :mod:`effvit_mm.checkpoint`), which ``import effvit_mm`` wraps
(:func:`wrap_checkpoint_loader`): the wrapper is installed at import, the allow-list it enters lasts
one load.
"""
import argparse
import contextlib
import functools
import pickle
import re

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['SAFE_GLOBALS', 'CheckpointFileError', 'checkpoint_globals', 'safe_load', 'wrap_checkpoint_loader']

# numpy dtype codes of the arrays and scalars a checkpoint may hold: bool, integers, floats,
# complex numbers, bytes and str (no object dtype).
_NUMPY_DTYPE_CODES = '?bBhHiIlLqQefdgFDGSU'


def _history_buffer_method(owner, name):
    """Stand-in for ``builtins.getattr`` in torch's ``weights_only`` unpickler. mmengine pickles
    each ``HistoryBuffer`` with its statistics functions, referenced as ``getattr(HistoryBuffer,
    'mean')``; exactly those four references are resolved, any other ``getattr`` is refused."""
    if owner is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refusing getattr({owner!r}, {name!r}) in a checkpoint')


def _numpy_globals():
    """numpy arrays, dtypes and scalars, with the reconstruction functions under both module names."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    functions = [(getattr(multiarray, fn), f'{module}.multiarray.{fn}')
                 for fn in ('_reconstruct', 'scalar') for module in ('numpy.core', 'numpy._core')]
    dtypes = dict.fromkeys(type(np.dtype(code)) for code in _NUMPY_DTYPE_CODES)
    return [np.ndarray, np.dtype, *dtypes, *functions]


# What a checkpoint may hold beyond torch's own types: mmengine's message hub (``HistoryBuffer`` and
# its statistics), numpy data, argparse namespaces (the ``args`` of timm / DeiT-style checkpoints).
SAFE_GLOBALS = [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), *_numpy_globals(),
                argparse.Namespace]


class CheckpointFileError(ValueError):
    """A checkpoint file that was not loaded: it could run code when unpickled, or it is not a
    (complete) checkpoint."""


def _file_error(filename, error):
    """The one-line :class:`CheckpointFileError` of a file that torch refused or could not read."""
    culprit = re.search(r'GLOBAL (\S+)|(refusing getattr\(.*?\))', str(error))
    if isinstance(error, pickle.UnpicklingError) and culprit:
        what = f'Unsupported global: {culprit[1]}' if culprit[1] else culprit[2]
        return CheckpointFileError(f'checkpoint {filename} was NOT loaded: it could run code when unpickled '
                                   f'({what}, not one of the data classes a checkpoint may hold)')
    reason = str(error).strip().split('\n')[0].split('. ')[0]
    if not isinstance(error, RuntimeError):  # KeyError, EOFError: their message alone says little
        reason = f'{type(error).__name__} {reason}'.strip()
    return CheckpointFileError(f'checkpoint {filename} is truncated, corrupted or not a checkpoint (torch: {reason})')


@contextlib.contextmanager
def checkpoint_globals():
    """:data:`SAFE_GLOBALS` allow-listed for torch's ``weights_only`` unpickler inside the block; those
    already allowed (by an enclosing block, or the caller) stay allowed after it."""
    allowed = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([g for g in SAFE_GLOBALS if g not in allowed]):
        yield


@contextlib.contextmanager
def _loading(filename):
    """The allow-list on, and a file that torch refuses or cannot read raised as a one-line
    :class:`CheckpointFileError`."""
    try:
        with checkpoint_globals():
            yield
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError) as error:
        raise _file_error(filename, error) from None


def safe_load(path, map_location='cpu', mmap=False):
    """``torch.load(path, weights_only=True)`` with :data:`SAFE_GLOBALS` allowed; a file that torch
    refuses or cannot read raises :class:`CheckpointFileError`. ``mmap``: tensors mapped from the file,
    read when used (a look at the meta data reads only the pickle)."""
    with _loading(path):
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


def wrap_checkpoint_loader():
    """Make mmengine's ``CheckpointLoader.load_checkpoint`` (every scheme) load with :data:`SAFE_GLOBALS`
    allowed and raise :class:`CheckpointFileError` for a file that torch refuses or cannot read. Idempotent."""
    load = CheckpointLoader.load_checkpoint.__func__
    if getattr(load, 'loads_safely', False):
        return

    @functools.wraps(load)
    def wrapped(cls, filename, *args, **kwargs):
        with _loading(filename):
            return load(cls, filename, *args, **kwargs)

    wrapped.loads_safely = True
    CheckpointLoader.load_checkpoint = classmethod(wrapped)
