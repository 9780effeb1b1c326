"""Checkpoint files that are complete or absent.

- :func:`atomic_write`: a file is written to a temporary file in the same folder (``PATH.tmpPID``),
  flushed, fsynced, renamed, and the folder fsynced, so a kill or a power cut while saving leaves the
  previous files as they were; a failed write (a full disk) removes the temporary file and fails in one line.
- ``AtomicLocalBackend``: mmengine's local file backend (``'atomic_local'``, what the training runs'
  checkpoint hook writes through) whose ``put`` is :func:`atomic_write`.
"""
import os
import os.path as osp

import mmengine
from mmengine.fileio import LocalBackend, register_backend

__all__ = ['TEMPORARY', 'AtomicLocalBackend', 'CheckpointWriteError', 'atomic_write']

TEMPORARY = '.tmp'  # a file being written is PATH.tmpPID until it is renamed to PATH


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (the reason and the fix in one line)."""


def _fsync_folder(path):
    """Make a rename in the folder ``path`` durable (POSIX: the folder's entry is data of the folder)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Replace ``path`` at once: ``write(f)`` fills a temporary file in the same folder, which is flushed,
    fsynced and renamed to ``path``, then the folder is fsynced; a reader sees the old contents or the
    new, never a part. On an ``OSError`` (a full disk) the temporary file is removed and
    :class:`CheckpointWriteError` says so in one line; ``path`` is as it was."""
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    mmengine.mkdir_or_exist(folder)
    tmp = f'{path}{TEMPORARY}{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)
    except OSError as error:
        if osp.exists(tmp):
            os.remove(tmp)
        raise CheckpointWriteError(f'could not write {path} ({error.strerror or error}): the previous checkpoints '
                                   'are kept; free some space or choose another --work-dir') from None


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put`` replaces the file at once (:func:`atomic_write`)."""

    def put(self, obj, filepath):
        atomic_write(filepath, lambda f: self.write(f, obj, str(filepath)))

    def write(self, f, obj, filepath):
        """Write the bytes ``obj`` of ``filepath`` into the open temporary file ``f``."""
        f.write(obj)
