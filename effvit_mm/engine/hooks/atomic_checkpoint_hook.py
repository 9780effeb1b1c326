"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` with ``last_checkpoint`` replaced at once and
old checkpoints removed only after the new one is complete."""
import builtins
import contextlib
import io
import sys
from collections import deque

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ...checkpoint.atomic import atomic_write

__all__ = ['AtomicCheckpointHook']


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) whose checkpoints can be killed at any moment:

    - ``last_checkpoint``, which mmengine writes with the builtin ``open`` of its module once the
      checkpoint is saved, is replaced at once (:func:`~effvit_mm.checkpoint.atomic.atomic_write`);
      the checkpoints themselves go through ``backend_args``' backend (``atomic_local`` in training runs);
    - with ``max_keep_ckpts``, mmengine removes the oldest checkpoint *before* it writes the new one (a
      kill in between leaves, with ``max_keep_ckpts=1``, no checkpoint at all); here the oldest goes
      after the new one and ``last_checkpoint`` are written. The new checkpoint lists the old one among
      those kept, so a resumed run removes it if a kill came first.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        keep = self.max_keep_ckpts
        if keep > 0:  # one more while saving, so that mmengine's code removes none
            self.max_keep_ckpts, self.keep_ckpt_ids = keep + 1, deque(self.keep_ckpt_ids)
        module = sys.modules[CheckpointHook.__module__]
        module.open = _open_atomically  # for this call: a name of that module's own, shadowing the builtin
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            del module.open
            self.max_keep_ckpts = keep
        if keep > 0:
            while len(self.keep_ckpt_ids) > keep:
                step = self.keep_ckpt_ids.popleft()
                path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
                if is_main_process() and self.file_backend.isfile(path):
                    self.file_backend.remove(path)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))


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
