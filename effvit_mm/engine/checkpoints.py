"""Checkpoints that are complete or absent, and resuming from the newest complete one.

- ``AtomicLocalBackend`` (mmengine file backend ``'atomic_local'``, used by the training runs' checkpoint
  hook): a checkpoint is written to a temporary file in the same folder, flushed, fsynced and renamed,
  so a kill while saving leaves the previous files as they were; a failed write (a full disk) removes
  the temporary file and fails in one line.
- :func:`atomic_write`: the same for any file; :class:`AtomicCheckpointHook` (mmengine's checkpoint hook)
  writes ``last_checkpoint`` so, after the checkpoint is complete.
- :func:`newest_complete_checkpoint`: what ``--resume`` (auto) resumes from: the newest checkpoint of the
  work dir whose file is whole (its zip records check out), after one line for each newer one that is not.
- :func:`resume_from`: the checkpoint ``--resume`` means, after removing what killed saves left behind.
"""
import builtins
import contextlib
import glob
import io
import logging
import os
import os.path as osp
import re
import sys
import zipfile

import mmengine
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['AtomicCheckpointHook', 'AtomicLocalBackend', 'CheckpointWriteError', 'atomic_write', 'checkpoint_problem',
           'newest_complete_checkpoint', 'resume_from']

TEMPORARY = '.tmp'  # a file being written is PATH.tmpPID until it is renamed to PATH


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (the reason and the fix in one line)."""


def atomic_write(path, write):
    """Replace ``path`` at once: ``write(f)`` fills a temporary file in the same folder, which is flushed,
    fsynced and renamed to ``path``; a reader sees the old contents or the new, never a part. On an
    ``OSError`` (a full disk) the temporary file is removed and :class:`CheckpointWriteError` says so in
    one line; ``path`` is as it was."""
    path = str(path)
    mmengine.mkdir_or_exist(osp.dirname(path))
    tmp = f'{path}{TEMPORARY}{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if osp.exists(tmp):
            os.remove(tmp)
        raise CheckpointWriteError(f'could not write {path} ({error.strerror or error}): the previous checkpoints '
                                   'are kept; free some space or choose another --work-dir') from None


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put`` replaces the file at once (module docstring)."""

    def put(self, obj, filepath):
        atomic_write(filepath, lambda f: self.write(f, obj, str(filepath)))

    def write(self, f, obj, filepath):
        """Write the bytes ``obj`` of ``filepath`` into the open temporary file ``f``."""
        f.write(obj)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose ``last_checkpoint`` file, which it writes with the builtin
    ``open`` of its module once the checkpoint is saved, is replaced at once (:func:`atomic_write`); the
    checkpoints themselves go through ``backend_args``' backend (``atomic_local`` in training runs)."""

    def _save_checkpoint_with_step(self, runner, step, meta):
        module = sys.modules[CheckpointHook.__module__]
        module.open = _open_atomically  # for this call: a name of that module's own, shadowing the builtin
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            del module.open


def _open_atomically(file, mode='r', *args, **kwargs):
    """``open``, except that a text file opened with mode 'w' is written by :func:`atomic_write` on close."""
    if mode != 'w':
        return builtins.open(file, mode, *args, **kwargs)

    @contextlib.contextmanager
    def text():
        buffer = io.StringIO()
        yield buffer
        atomic_write(file, lambda f: f.write(buffer.getvalue().encode()))

    return text()


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


def remove_partial_writes(work_dir):
    """Remove the temporary files (``*.tmpPID``) that saves killed before their rename left in ``work_dir``,
    one line each; a resumed run never reads them."""
    for path in sorted(glob.glob(osp.join(glob.escape(str(work_dir)), f'*{TEMPORARY}[0-9]*'))):
        if re.fullmatch(rf'.+{re.escape(TEMPORARY)}\d+', path):
            os.remove(path)
            print_log(f'removed {path}, left by a save that was killed before it ended', logger='current')


def resume_from(work_dir, resume):
    """The checkpoint ``--resume`` means: ``resume`` 'auto' -> :func:`newest_complete_checkpoint` of
    ``work_dir`` (None: none yet, the run starts from the beginning); a path -> that path (a missing or
    damaged file is refused in one line when it is loaded). Partial writes in ``work_dir`` are removed
    first (:func:`remove_partial_writes`)."""
    if osp.isdir(work_dir):
        remove_partial_writes(work_dir)
    if resume != 'auto':
        return resume
    path = newest_complete_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if path is None:
        print_log(f'no complete checkpoint in {work_dir}: training from the start', logger='current')
    return path
