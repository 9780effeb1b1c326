"""A tiny regression task registered into mmengine's root registries, for testing the tools
(resume, distributed launch, test loop) in seconds."""
import atexit
import errno
import os
import signal as signal_module
import time

import torch
import torch.nn as nn
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.fileio import register_backend
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS

from effvit_mm.checkpoint.atomic import AtomicLocalBackend


@DATASETS.register_module()
class ToyRegression(BaseDataset):
    """64 fixed samples (x in R^4, y = x @ w)."""

    def __init__(self, **kwargs):
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        return [dict(inputs=x[i], target=y[i]) for i in range(64)]


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """BatchNorm (or SyncBN, which has no CPU kernel) and a linear layer."""

    def __init__(self, sync_bn=False):
        super().__init__()
        self.bn = (nn.SyncBatchNorm if sync_bn else nn.BatchNorm1d)(4)
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, target, mode='tensor', **meta):
        pred = self.linear(self.bn(inputs)).squeeze(1)
        if mode == 'loss':
            return dict(loss=((pred - target) ** 2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, target)]


@METRICS.register_module()
class ToyMSE(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [float((s['pred'] - s['target']) ** 2) for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


@HOOKS.register_module()
class StopAfter(Hook):
    """Ends training after ``iters`` iterations, like a killed job (its checkpoints stay)."""
    priority = 'LOWEST'  # after CheckpointHook

    def __init__(self, iters):
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 >= self.iters:
            runner.train_loop.stop_training = True


@HOOKS.register_module()
class PoisonAt(Hook):
    """Sets the first parameter of the model to NaN before training iteration ``iteration`` (1-based): that
    iteration's loss is NaN."""

    def __init__(self, iteration):
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.iteration:
            with torch.no_grad():
                next(runner.model.parameters()).fill_(float('nan'))


@HOOKS.register_module()
class SignalAt(Hook):
    """Sends ``signal`` to this process after training iteration ``iteration`` (1-based)."""

    def __init__(self, iteration, signal='SIGTERM'):
        self.iteration, self.signal = iteration, getattr(signal_module, signal)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), self.signal)


@HOOKS.register_module()
class SlowExit(Hook):
    """Makes the process's exit take ``seconds`` (an exit handler that sleeps), as a slow teardown does."""

    def __init__(self, seconds):
        self.seconds = seconds

    def before_train(self, runner):
        atexit.register(time.sleep, self.seconds)


@register_backend('faulty_atomic_local')
class FaultyAtomicLocalBackend(AtomicLocalBackend):
    """effvit_mm's atomic checkpoint writes, with faults for the tests: the write of a file whose name ends
    with ``slow`` is slowed down (64 kB per 10 ms) and announced on stdout ("writing PATH"), so that a test
    can signal or kill a run while writing it; that of a file whose name ends with ``full`` stops half-way
    with the error of a full disk (ENOSPC)."""

    def __init__(self, slow=None, full=None):
        self.slow, self.full = slow, full

    def write(self, f, obj, filepath):
        if self.full and filepath.endswith(self.full):
            f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if not (self.slow and filepath.endswith(self.slow)):
            return super().write(f, obj, filepath)
        print(f'writing {filepath}', flush=True)
        for start in range(0, len(obj), 1 << 16):
            f.write(obj[start:start + (1 << 16)])
            time.sleep(0.01)


def write_config(path, work_dir, max_iters=12, interval=4, sync_bn=False, stop_after=None):
    """A deterministic config for the toy task: SGD, an iteration-based loop, a checkpoint every
    ``interval`` iterations, a seeded shuffling sampler; ``stop_after`` iterations if given."""
    loader = ("dict(batch_size=8, num_workers=0, dataset=dict(type='ToyRegression'), "
              "sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='default_collate'))")
    path.write_text(f"""
custom_imports = dict(imports=['toy_task'], allow_failed_imports=False)
model = dict(type='ToyRegressor', sync_bn={sync_bn})
work_dir = {str(work_dir)!r}
train_dataloader = {loader}
val_dataloader = {loader}
test_dataloader = {loader}
val_evaluator = dict(type='ToyMSE')
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=False, max_iters={max_iters}, val_interval={max_iters})
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[6], gamma=0.5)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval={interval}),
                     logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0, deterministic=True)
log_processor = dict(by_epoch=False)
custom_hooks = {[dict(type='StopAfter', iters=stop_after)] if stop_after else []}
""")
    return path
