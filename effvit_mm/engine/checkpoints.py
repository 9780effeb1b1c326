"""Checkpoints that are complete or absent, and resuming from the newest complete one.

- ``AtomicLocalBackend`` (mmengine file backend ``'atomic_local'``, used by the training runs' checkpoint
  hook): a checkpoint is written to a temporary file in the same folder, flushed, fsynced and renamed,
  so a kill while saving leaves the previous files as they were; a failed write (a full disk) removes
  the temporary file and fails in one line.
- :func:`newest_complete_checkpoint`: what ``--resume`` (auto) resumes from: the newest checkpoint of the
  work dir whose file is whole (its zip records check out), after one line for each newer one that is not.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile

import mmengine
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

__all__ = ['AtomicLocalBackend', 'CheckpointWriteError', 'checkpoint_problem', 'newest_complete_checkpoint',
           'resume_from']


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (the reason and the fix in one line)."""


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put`` replaces the file at once (module docstring)."""

    def put(self, obj, filepath):
        filepath = str(filepath)
        mmengine.mkdir_or_exist(osp.dirname(filepath))
        tmp = f'{filepath}.tmp{os.getpid()}'
        try:
            with open(tmp, 'wb') as f:
                self.write(f, obj, filepath)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except OSError as error:
            if osp.exists(tmp):
                os.remove(tmp)
            raise CheckpointWriteError(f'could not write {filepath} ({error.strerror or error}): the previous '
                                       'checkpoints are kept; free some space or choose another --work-dir') from None

    def write(self, f, obj, filepath):
        """Write the bytes ``obj`` of ``filepath`` into the open temporary file ``f``."""
        f.write(obj)


def checkpoint_problem(path):
    """None for a whole checkpoint file (a torch zip archive whose records' CRCs check out), else why not."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        return f'unreadable ({error})'
    if bad is not None:
        return f'damaged (record {bad})'
    if not any(name.endswith('/data.pkl') or name == 'data.pkl' for name in names):
        return 'not a torch checkpoint (no data.pkl)'
    return None


def _order(path):
    """Sort key, newest last: iterations saved (``iter_N``; ``epoch_N`` by its modification time among
    them), then modification time."""
    match = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(path))
    return osp.getmtime(path), int(match.group(1)) if match else -1


def newest_complete_checkpoint(work_dir):
    """The newest whole ``*.pth`` checkpoint in ``work_dir`` (None without one); each newer damaged file is
    reported in one line and passed over."""
    for path in sorted(glob.glob(osp.join(work_dir, '*.pth')), key=_order, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        print_log(f'checkpoint {path} is {problem}: resuming from the previous complete one', logger='current',
                  level=logging.WARNING)
    return None


def resume_from(work_dir, resume):
    """The checkpoint ``--resume`` means: ``resume`` 'auto' -> :func:`newest_complete_checkpoint` of
    ``work_dir`` (None: none yet, the run starts from the beginning); a path -> that path (a missing or
    damaged file is refused in one line when it is loaded)."""
    if resume != 'auto':
        return resume
    path = newest_complete_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if path is None:
        print_log(f'no complete checkpoint in {work_dir}: training from the start', logger='current')
    return path
