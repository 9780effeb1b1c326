"""The command-line switches of the tools, per codebase (effvit_mm.engine.config_switches), and the CPU launch
(effvit_mm.engine.launch)."""
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from effvit_mm.engine.config_switches import (check_amp_device, check_data_roots, check_pretrained, drop_amp_options,
                                       dump_predictions, enable_amp, enable_auto_scale_lr, enable_tta,
                                       enable_visualization, load_config)
from effvit_mm.engine.launch import setup_cpu_distributed

ROOT = Path(__file__).parents[2]


def test_missing_config_and_data_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='config nothing.py not found'):
        load_config('nothing.py')
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
        type='CocoDataset', data_root=str(tmp_path / 'coco'))))))
    with pytest.raises(FileNotFoundError, match=r'coco \(train set\) not found.*train_dataloader.dataset.data_root'):
        check_data_roots(cfg, ['train'])
    check_data_roots(cfg, ['val'])  # no val loader: nothing to check
    cfg = Config(dict(model=dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='nowhere.pth')))))
    with pytest.raises(FileNotFoundError, match=r'nowhere.pth not found.*model.backbone.init_cfg=None'):
        check_pretrained(cfg)
    cfg.model.backbone.init_cfg = None
    check_pretrained(cfg)
    cfg.model.teacher = dict(name='regnety_160', checkpoint='no_teacher.pth')
    with pytest.raises(FileNotFoundError, match=r'teacher checkpoint no_teacher.pth not found.*model.teacher=None'):
        check_pretrained(cfg)


@pytest.mark.parametrize('scope, hook, expected', [
    ('mmdet', dict(type='DetVisualizationHook'), dict(draw=True, test_out_dir='vis')),
    ('mmseg', dict(type='SegVisualizationHook'), dict(draw=True, interval=1)),
    ('mmpretrain', dict(type='VisualizationHook'), dict(enable=True, out_dir='vis', interval=1)),
])
def test_show_dir_per_codebase(scope, hook, expected):
    cfg = Config(dict(default_scope=scope, default_hooks=dict(visualization=hook), visualizer=dict()))
    enable_visualization(cfg, show_dir='vis')
    assert expected.items() <= dict(cfg.default_hooks.visualization).items()
    assert cfg.visualizer.get('save_dir') == ('vis' if scope == 'mmseg' else None)


@pytest.mark.parametrize('scope, metric', [('mmdet', 'DumpDetResults'), ('mmpretrain', 'DumpResults')])
def test_out_per_codebase(scope, metric):
    cfg = Config(dict(default_scope=scope, test_evaluator=dict(type='Metric')))
    dump_predictions(cfg, 'preds.pkl')
    assert [e['type'] for e in cfg.test_evaluator] == ['Metric', metric]
    cfg = Config(dict(default_scope='mmseg', test_evaluator=dict(type='IoUMetric')))
    dump_predictions(cfg, 'masks')
    assert cfg.test_evaluator == dict(type='IoUMetric', output_dir='masks')


def test_amp_auto_scale_lr_and_tta_need_their_config():
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper'), model=dict(type='M'),
                      test_dataloader=dict(dataset=dict(pipeline=[]))))
    with pytest.raises(ValueError, match='already trains with AmpOptimWrapper'):
        enable_amp(cfg)
    with pytest.raises(ValueError, match='no mixed-precision variant of SGDWrapper'):
        enable_amp(Config(dict(optim_wrapper=dict(type='SGDWrapper'))))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='needs a GPU.*optim_wrapper.type=OptimWrapper'):
            check_amp_device(cfg)
    check_amp_device(Config(dict(optim_wrapper=dict(type='OptimWrapper'))))
    with pytest.raises(ValueError, match='auto_scale_lr = dict'):
        enable_auto_scale_lr(cfg)
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=16)
    enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr.enable
    with pytest.raises(ValueError, match='--tta needs'):
        enable_tta(cfg)
    cfg.update(tta_model=dict(type='TTA'), tta_pipeline=['flip'])
    enable_tta(cfg)
    assert cfg.model == dict(type='TTA', module=dict(type='M')) and cfg.test_dataloader.dataset.pipeline == ['flip']


@pytest.mark.parametrize('own_wrapper', [None, dict(type='MMDistributedDataParallel', find_unused_parameters=True)])
def test_cpu_slurm_launch_starts_gloo(monkeypatch, own_wrapper):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for name, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_NODELIST='node[01-02]', MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(port), RANK='', WORLD_SIZE='', LOCAL_RANK='').items():
        monkeypatch.setenv(name, value)  # restored afterwards
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(model=dict(type='M'), sync_bn='torch', model_wrapper_cfg=own_wrapper))
    setup_cpu_distributed(cfg, 'slurm')
    try:
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1 and os.environ['RANK'] == '0'
    finally:
        dist.destroy_process_group()
    assert 'sync_bn' not in cfg
    kept = dict(find_unused_parameters=True) if own_wrapper else dict(broadcast_buffers=False,
                                                                      find_unused_parameters=False)
    assert cfg.model_wrapper_cfg == dict(type='CPUDistributedDataParallel', device_ids=None, **kept)


def test_amp_keeps_adaptive_gradient_clipping(monkeypatch):
    """--amp on an SHViT recipe (AGCOptimWrapper) switches to AGCAmpOptimWrapper, not to a plain
    AmpOptimWrapper that would drop the clipping."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = Config(dict(optim_wrapper=dict(type='AGCOptimWrapper', clip_factor=0.02)))
    enable_amp(cfg)
    assert cfg.optim_wrapper == dict(type='AGCAmpOptimWrapper', clip_factor=0.02, loss_scale='dynamic')


def test_the_fp32_override_of_an_amp_config_builds():
    """The override check_amp_device names, on the LITv2 detectors' AMP wrapper: the plain wrapper
    builds (the AMP-only loss_scale is dropped with the type)."""
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(str(ROOT / 'configs/mask_rcnn_litv2_s_coco.py'),
                      cfg_options={'optim_wrapper.type': 'OptimWrapper'})
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    drop_amp_options(cfg)
    check_amp_device(cfg)
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
