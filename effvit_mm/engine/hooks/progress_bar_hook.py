"""``ProgressBarHook``: a progress bar over the batches of every validation and test pass.

mmengine's loops log one line every ``LoggerHook.interval`` batches; ``tools/test.py`` adds this hook
so that an evaluation also shows how far it is (mmengine's ``ProgressBar``, on the main process).
"""
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A ``ProgressBar`` of ``len(dataloader)`` batches, advanced after each val / test batch and ended
    with a line break after the last one (before the metrics print, e.g. mmseg's per-class table).
    Its priority is above ``LoggerHook``'s, whose per-interval lines go after the bar's update."""
    priority = 'NORMAL'

    def __init__(self):
        self.bar = None

    def _start(self, dataloader):
        self.bar = ProgressBar(len(dataloader)) if is_main_process() else None

    def _advance(self):
        if self.bar is not None:
            self.bar.update()
            if self.bar.completed >= self.bar.task_num:  # before metrics that print their own tables
                self._end()

    def _end(self):
        if self.bar is not None:
            self.bar.file.write('\n')
            self.bar.file.flush()
            self.bar = None

    def before_val_epoch(self, runner):
        self._start(runner.val_dataloader)

    def before_test_epoch(self, runner):
        self._start(runner.test_dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._advance()

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._advance()

    def after_val_epoch(self, runner, metrics=None):
        self._end()

    def after_test_epoch(self, runner, metrics=None):
        self._end()
