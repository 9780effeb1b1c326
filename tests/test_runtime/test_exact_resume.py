"""A real run of a demo config, killed with SIGKILL at a random iteration and resumed with
``--resume``, ends with the weights, optimiser state and logged losses of the run that was never
interrupted, bit for bit (effvit_mm.engine.exact_resume), with randomness on: flips, crops, random
erasing, mixup / cutmix, the detector's samplers, drop path."""
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from effvit_mm.checkpoint.safe_load import safe_load

ROOT = Path(__file__).parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), PYTHON=sys.executable)

# Small runs of the three demo configs: randomness on, a checkpoint every epoch (every 4 iterations for
# the iteration-based segmentation loop), a log line every iteration.
CONFIGS = {
    'classification': """
_base_ = '{root}/configs/shvit_s1_demoimagenet.py'
data_root = '{data}/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0), backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomErasing', erase_prob=0.5, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3),
    dict(type='PackInputs'),
]
model = dict(backbone=dict(drop_path_rate=0.1),
             train_cfg=dict(_delete_=True, augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root, pipeline=train_pipeline),
                        sampler=dict(_delete_=True, type='RepeatAugSampler', num_repeats=3, shuffle=True))
val_dataloader = dict(batch_size=24, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
param_scheduler = dict(_delete_=True, type='TimmLRScheduler', timm_type='CosineLRScheduler', by_epoch=True,
                       convert_to_iter_based=True, t_initial=4, warmup_t=1, warmup_lr_init=1e-4, lr_min=1e-5)
train_cfg = dict(max_epochs=4, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
""",
    'detection': """
_base_ = '{root}/configs/mask_rcnn_shvit_s4_demococo.py'
data_root = '{data}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
model = dict(backbone=dict(drop_path_rate=0.1))
train_cfg = dict(max_epochs=3)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
""",
    'segmentation': """
_base_ = '{root}/configs/fpn_litv2_s_demoade20k.py'
data_root = '{data}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(backbone=dict(drop_path_rate=0.1))
train_cfg = dict(max_iters=12, val_interval=12)
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=12, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=4))
""",
}
DATA = {'classification': ['imagenet', '--num-classes', '6', '--num-train', '4', '--num-val', '2'],
        'detection': ['coco', '--num-train', '8', '--num-val', '2', '--width', '128', '--height', '96'],
        'segmentation': ['ade20k', '--num-train', '16', '--num-val', '2']}
LOADERS = {'workers0': ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'],
           'workers2': ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=False'],
           'workers2_persistent': ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True']}
LOG_LINE = re.compile(r'(?:Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]|Iter\(train\)\s*\[\s*(\d+)/\d+\])')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def write_config(task, tmp):
    data = tmp / f'data_{task}'
    if not data.is_dir():
        subprocess.run([sys.executable, 'tools/dataset_converters/generate_data.py', *DATA[task], '--out', str(data)], cwd=ROOT,
                       env=ENV, check=True, capture_output=True)
    path = tmp / f'{task}.py'
    path.write_text(CONFIGS[task].format(root=ROOT, data=data))
    return path


def descendants(pid):
    """The processes started by ``pid``, and by them, ... (torchrun starts its workers in sessions of
    their own)."""
    children = subprocess.run(['pgrep', '-P', str(pid)], capture_output=True, text=True).stdout.split()
    return [p for child in map(int, children) for p in [child, *descendants(child)]]


def kill(pid):
    """SIGKILL ``pid`` and every process below it, as a job scheduler kills a job; wait until they are gone."""
    pids = [pid, *descendants(pid)]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    while any(map(running, pids[1:])):
        time.sleep(0.1)


def running(pid):
    try:
        return 'zombie' not in Path(f'/proc/{pid}/status').read_text()
    except FileNotFoundError:
        return False


def train(config, work_dir, loader, nproc=1, kill_at=None, resume=False):
    """Run tools/train.py (tools/dist_train.sh for ``nproc`` > 1); with ``kill_at``, SIGKILL it and all
    its processes once the log shows that training iteration (1-based, counted over the run).
    Returns the log and the iteration it was killed at (None if it ran to the end)."""
    options = ['--cfg-options', 'randomness.seed=0', *LOADERS[loader]]
    cmd = (['bash', 'tools/dist_train.sh', str(config), str(nproc)] if nproc > 1 else
           [sys.executable, 'tools/train.py', str(config)]) + ['--work-dir', str(work_dir), *options]
    cmd += ['--resume'] if resume else []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(ENV, PORT=str(free_port())), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, killed = [], None
    for line in proc.stdout:
        lines.append(line)
        m = LOG_LINE.search(line)
        if kill_at and m:
            it = int(m[4]) if m[4] else (int(m[1]) - 1) * int(m[3]) + int(m[2])
            if it >= kill_at:
                kill(proc.pid)
                killed = it
                break
    proc.wait(timeout=600)
    log = ''.join(lines)
    assert killed or proc.returncode == 0, log[-3000:]
    return log, killed


def logged(work_dir):
    """{step: {loss name: value}} of every scalars.json under ``work_dir`` (every run in it)."""
    out = {}
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if 'loss' in entry:
                out.setdefault(entry['step'], []).append({k: v for k, v in entry.items() if k.startswith('loss')})
    return out


def max_diff(a, b):
    """Largest absolute difference between two nests of tensors / numbers with the same structure."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return max([max_diff(a[k], b[k]) for k in a] or [0.0])
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        return max([max_diff(x, y) for x, y in zip(a, b)] or [0.0])
    if isinstance(a, torch.Tensor):
        return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    return abs(a - b) if isinstance(a, float) else float(a != b)


def last_checkpoint(work_dir):
    return safe_load(Path(work_dir) / Path((Path(work_dir) / 'last_checkpoint').read_text().strip()).name,
                     map_location='cpu')


def check_resume(task, loader, nproc, tmp, reference=None, kill_at=None):
    """Kill a run at a random iteration after its first checkpoint, resume it, compare with the
    uninterrupted run (``reference``: its work dir, trained here if None). Returns the figures."""
    config = write_config(task, tmp)
    if reference is None:
        reference = tmp / f'{task}_{nproc}_full'
        train(config, reference, loader, nproc)
    expected = last_checkpoint(reference)
    total = expected['meta']['iter']
    first_checkpoint = 4 if task == 'segmentation' else total // expected['meta']['epoch']
    kill_at = kill_at or random.randint(first_checkpoint + 1, total - 1)
    work = tmp / f'{task}_{loader}_{nproc}_killed'
    _, killed = train(config, work, loader, nproc, kill_at=kill_at)
    assert killed, 'the run ended before it could be killed'
    log, _ = train(config, work, loader, nproc, resume=True)
    resumed_at = int(re.search(r'resumed epoch: \d+, iter: (\d+)', log)[1])
    got = last_checkpoint(work)
    assert resumed_at <= killed < total and got['meta']['iter'] == total
    reference_losses, losses = logged(reference), logged(work)
    steps = sorted(losses)
    assert steps and steps[-1] == total and all(s > resumed_at for s in steps if len(losses[s]) > 1)
    return dict(task=task, loader=loader, nproc=nproc, iters=total, killed_at=killed, resumed_at=resumed_at,
                weights=max_diff(expected['state_dict'], got['state_dict']),
                optimizer=max_diff(expected['optimizer'], got['optimizer']),
                losses=max(max_diff(reference_losses[s][0], entry) for s in steps for entry in losses[s]),
                logged_steps=len(steps))


def assert_exact(result):
    print(json.dumps(result))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0, result


@pytest.mark.slow  # about a minute: .ci/run runs it among its slow checks
def test_classification_with_persistent_workers_resumes_exactly(tmp_path):
    """Mixup / cutmix, random erasing, drop path, 2 persistent workers, a validation every epoch."""
    assert_exact(check_resume('classification', 'workers2_persistent', 1, tmp_path))


@pytest.mark.slow  # about a minute: .ci/run runs it among its slow checks
def test_segmentation_iteration_loop_resumes_exactly(tmp_path):
    assert_exact(check_resume('segmentation', 'workers0', 1, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize('nproc', [1, 2])
@pytest.mark.parametrize('task', list(CONFIGS))
def test_every_demo_config_and_loader_resumes_exactly(task, nproc, tmp_path):
    """One uninterrupted run (workers0) is the reference for every loader setting: a sample's
    augmentation depends on neither the number of workers nor their lifetime."""
    config = write_config(task, tmp_path)
    reference = tmp_path / 'full'
    train(config, reference, 'workers0', nproc)
    results = [check_resume(task, loader, nproc, tmp_path, reference) for loader in LOADERS]
    for result in results:
        print(json.dumps(result))
    assert all(r['weights'] == r['optimizer'] == r['losses'] == 0.0 for r in results), results


def test_exact_resume_and_fault_tolerance_in_either_order(tmp_path):
    """enable_exact_resume and enable_fault_tolerance give the same config whichever runs first, and the
    train set's workers leave the preemption signals to the main process either way."""
    from mmengine.config import Config
    from toy_task import write_config as toy_config

    from effvit_mm.engine import enable_exact_resume, enable_fault_tolerance
    configs = []
    for order in ([enable_exact_resume, enable_fault_tolerance], [enable_fault_tolerance, enable_exact_resume]):
        cfg = Config.fromfile(toy_config(tmp_path / 'toy.py', tmp_path / 'work'))
        for enable in order + order:  # idempotent, too
            enable(cfg)
        configs.append(cfg)
    first, second = (c.to_dict() for c in configs)
    assert first['train_dataloader'] == second['train_dataloader']
    assert sorted(h['type'] for h in first['custom_hooks']) == sorted(h['type'] for h in second['custom_hooks']) == \
        ['NonFiniteLossHook', 'PreemptionHook', 'RandomStateHook']
    dataset = first['train_dataloader']['dataset']
    assert dataset['type'] == 'SeededDataset' and dataset['worker_signals'] == ['SIGTERM', 'SIGUSR1']
    assert dataset['dataset']['type'] != 'SeededDataset'
