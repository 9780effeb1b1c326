"""ADE20K Semantic FPN configs through mmseg on the generated ADE20K-style set (CPU, small crops).

Every config trains one iteration and tests once (its SyncBN reverted to BatchNorm in a
single-process run, every parameter reached by the loss), a small LITv2 learns the set from scratch
well above chance (whole-image and sliding-window inference), and tools/test.py reports mmseg's
IoUMetric and draws the predictions.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS
from mmengine.runner import Runner
from mmseg.structures import SegDataSample
from PIL import Image

from effvit_mm.datasets import make_ade20k
from effvit_mm.datasets.synthetic_ade20k import metainfo

ROOT = Path(__file__).parents[1]
NUM_CLASSES = 4
IMG_SIZE = (96, 80)  # (W, H) of the generated images
CONFIGS = ['fpn_swiftformer_l1_ade20k', 'fpn_swiftformer_l3_ade20k', 'fpn_litv2_s_ade20k', 'fpn_litv2_m_ade20k',
           'fpn_litv2_b_ade20k', 'fpn_shvit_s4_ade20k']
# The short run: a tiny 4-stage LITv2 (one block per stage) in fpn_litv2_s_ade20k.py, from scratch.
TINY_LITV2 = dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8])


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    make_ade20k(root, num_train=24, num_val=6, size=IMG_SIZE, num_classes=NUM_CLASSES, seed=0)
    return root


def small_config(name, data_root, work_dir, crop=(64, 64), batch_size=2, max_iters=1, lr=None):
    """The config ``name`` on the generated set: small crops, no pretrained weights, no validation."""
    cfg = Config.fromfile(ROOT / 'configs' / f'{name}.py')
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.num_classes = NUM_CLASSES
    cfg.model.data_preprocessor.size = crop
    if cfg.optim_wrapper.type == 'AmpOptimWrapper':  # mixed precision needs a GPU
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    dataset = dict(type='BaseSegDataset', data_root=str(data_root), img_suffix='.jpg', seg_map_suffix='.png',
                   reduce_zero_label=True, metainfo=metainfo(NUM_CLASSES))
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='RandomResize', scale=IMG_SIZE, ratio_range=(0.8, 1.25), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=IMG_SIZE, keep_ratio=True),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs'),
    ]
    cfg.train_dataloader.update(batch_size=batch_size, num_workers=0, persistent_workers=False, dataset=dict(
        dataset, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
    cfg.test_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False, dataset=dict(
        dataset, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
    for scheduler in cfg.param_scheduler:
        scheduler.end = max_iters
    cfg.default_hooks.checkpoint.update(interval=max_iters, save_last=True)
    cfg.default_hooks.logger.interval = 10
    cfg.env_cfg.cudnn_benchmark = False
    return cfg


def chance_miou(data_root):
    """mIoU (%) of predicting the most frequent class everywhere on the validation set."""
    labels = np.concatenate([np.asarray(Image.open(p)).ravel()
                             for p in sorted((Path(data_root) / 'annotations/validation').glob('*.png'))])
    labels = labels[labels > 0]
    counts = np.bincount(labels, minlength=NUM_CLASSES + 1)[1:]
    return 100 * counts.max() / counts.sum() / NUM_CLASSES


def assert_every_parameter_learns(runner):
    model = runner.model
    model.train()
    data = model.data_preprocessor(next(iter(runner.train_dataloader)), True)
    model.zero_grad(set_to_none=True)
    losses = model(**data, mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, unused


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_tests(name, ade, tmp_path):
    """One iteration and one whole-image test, single process on CPU: the SyncBN of the head (the
    config is left as it is) becomes BatchNorm."""
    cfg = small_config(name, ade, tmp_path)
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in runner.model.modules())
    metrics = runner.test()
    assert {'aAcc', 'mIoU', 'mAcc'} <= set(metrics) and 0 <= metrics['mIoU'] <= 100
    assert_every_parameter_learns(runner)  # no parameter unused under DDP (SHViT: all 5 neck levels)


def test_slide_inference_covers_larger_images(ade, tmp_path, mmseg_scope):
    """Sliding windows of 64x64 over an image larger than the crop, in both dimensions or one."""
    cfg = small_config('fpn_shvit_s4_ade20k', ade, tmp_path)
    cfg.model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48))
    model = MODELS.build(cfg.model).eval()
    for h, w in ((100, 130), (64, 150), (40, 40)):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        with torch.no_grad():
            out = model.predict(torch.randn(1, 3, h, w), [sample])
        assert out[0].seg_logits.data.shape == (NUM_CLASSES, h, w)
        assert out[0].pred_sem_seg.data.shape == (1, h, w)


@pytest.fixture(scope='module')
def short_run(ade, tmp_path_factory):
    """A tiny LITv2 Semantic FPN (fpn_litv2_s_ade20k.py, arch TINY_LITV2) trained from scratch on CPU."""
    work_dir = tmp_path_factory.mktemp('short_run')
    cfg = small_config('fpn_litv2_s_ade20k', ade, work_dir, batch_size=4, max_iters=150, lr=2e-3)
    cfg.model.backbone.update(arch=TINY_LITV2, drop_path_rate=0.0)
    cfg.model.neck.in_channels = TINY_LITV2['embed_dims']
    cfg.model.neck.out_channels = 64
    cfg.model.decode_head.update(in_channels=[64] * 4, channels=64)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    whole = runner.test()
    runner.model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64), stride=(32, 32))
    slide = runner.test()
    cfg.dump(work_dir / 'config.py')
    return work_dir, whole, slide


def test_short_run_learns_the_set(short_run, ade):
    _, whole, slide = short_run
    chance = chance_miou(ade)
    print(f'\nshort run mIoU: whole {whole["mIoU"]:.1f}, slide {slide["mIoU"]:.1f}; '
          f'chance (most frequent class everywhere) {chance:.1f}; aAcc {whole["aAcc"]:.1f}')
    assert whole['mIoU'] > max(2 * chance, 50)
    assert slide['mIoU'] > max(2 * chance, 50)


def test_tools_test_reports_miou_and_draws(short_run, tmp_path):
    work_dir, whole, _ = short_run
    show_dir = tmp_path / 'show'
    result = subprocess.run(
        [sys.executable, 'tools/test.py', str(work_dir / 'config.py'), str(work_dir / 'iter_150.pth'),
         '--work-dir', str(tmp_path / 'test'), '--show-dir', str(show_dir)],  # draws all 6 (not every 50th)
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    match = re.search(r'aAcc: ([\d.]+)\s+mIoU: ([\d.]+)\s+mAcc: ([\d.]+)', log)
    assert match, log[-3000:]
    assert float(match.group(2)) == pytest.approx(whole['mIoU'], abs=0.01)
    drawn = sorted(show_dir.rglob('*.png'))
    assert len(drawn) == 6, log[-2000:]
    image = np.asarray(Image.open(drawn[0]))
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[1] >= IMG_SIZE[0]


@pytest.mark.slow  # .ci/run runs it
def test_exported_short_run_gives_the_same_classes_and_miou(short_run, tmp_path):
    """The trained short run exported whole (tools/deployment/export_model.py, onnxruntime): every pixel of
    the test set gets mmseg's class, and tools/test.py --deployed reports mmseg's mIoU."""
    work_dir, whole, _ = short_run
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    config, checkpoint, deployed = str(work_dir / 'config.py'), str(work_dir / 'iter_150.pth'), str(tmp_path / 'dep')

    def tool(*args):
        result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env=env)
        return result.returncode, result.stdout + result.stderr

    code, log = tool('tools/deployment/export_model.py', config, checkpoint, '--out', deployed)
    assert code == 0, log[-3000:]
    code, log = tool('tools/deployment/compare_model.py', config, checkpoint, deployed)
    assert code == 0 and 'OK: the deployed model' in log, log[-3000:]
    assert re.search(r'^mIoU: PyTorch [\d.]+, deployed [\d.]+ \(diff [\d.]+, bound 0.2\)$', log, re.M), log[-3000:]
    worst = float(re.search(r'pixels with the same class ([\d.]+)%', log).group(1))
    print(f'\nexported short run: pixels with the same class {worst:.3f}% (worst image)')
    assert worst >= 99.9
    code, log = tool('tools/test.py', config, deployed, '--deployed', '--work-dir', str(tmp_path / 'test'))
    assert code == 0, log[-3000:]
    miou = float(re.search(r'aAcc: [\d.]+\s+mIoU: ([\d.]+)', log).group(1))
    print(f'mIoU: deployed {miou:.2f}, PyTorch {whole["mIoU"]:.2f}')
    assert miou == pytest.approx(whole['mIoU'], abs=0.2)
    # one image in Python, as mmseg users call a model: mmseg's inference_model on init_deployed's model
    from mmseg.apis import inference_model, init_model

    from effvit_mm.deployment import init_deployed
    image = str(sorted((ade_root(config) / 'images/validation').iterdir())[0])
    expected = inference_model(init_model(config, checkpoint, device='cpu'), image)
    got = inference_model(init_deployed(config, deployed), image)
    assert got.pred_sem_seg.data.shape == expected.pred_sem_seg.data.shape
    assert (got.pred_sem_seg.data == expected.pred_sem_seg.data).float().mean() >= 0.999


@pytest.mark.slow  # .ci/run runs it
def test_exported_short_run_at_int8_keeps_its_miou(short_run, tmp_path):
    """The trained short run at int8 (OpenVINO, NNCF on its train images, accuracy-controlled: --max-drop 1.0):
    the fp32 and int8 mIoU deploy.json records are mmseg's and the folder's as tools/deployment/compare_model.py
    measures them, and it holds the folder's mIoU within 1.0 of mmseg's."""
    work_dir, whole, _ = short_run
    config, checkpoint, deployed = str(work_dir / 'config.py'), str(work_dir / 'iter_150.pth'), tmp_path / 'int8'
    train_images = len(list((ade_root(config) / 'images/training').iterdir()))
    for args in (['tools/deployment/export_model.py', config, checkpoint, '--out', deployed, '--backend', 'openvino',
                  '--precision', 'int8', '--calib-images', str(train_images), '--max-drop', '1.0'],
                 ['tools/deployment/compare_model.py', config, checkpoint, deployed, '--out', f'{deployed}.json']):
        result = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                                timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        log = result.stdout + result.stderr
        assert result.returncode == 0, log[-3000:]
    print('\nint8 short run:', *[line for line in log.splitlines() if line.startswith(('mIoU', '6 images'))])
    assert re.search(r'^mIoU: PyTorch [\d.]+, deployed [\d.]+ \(drop -?[\d.]+, bound 1.0\)$', log, re.M), log[-3000:]
    assert 'OK: the deployed model gives the PyTorch model\'s metrics within 1.0' in log, log[-3000:]
    control = json.loads((deployed / 'deploy.json').read_text())['quantization']
    metrics = json.loads(Path(f'{deployed}.json').read_text())['metrics']
    assert control['method'] == 'quantize_with_accuracy_control' and control['max_drop'] == 1.0
    assert control['validation']['metrics'] == ['mIoU'] and control['validation']['images'] == 6, control
    for precision, model, tol in (('fp32', 'pytorch', 0.2), ('int8', 'deployed', 0.01)):  # fp32: OpenVINO's
        assert abs(control['validation'][precision]['mIoU'] - metrics[model]['mIoU']) <= tol, (control, metrics)


def ade_root(config):
    from mmengine.config import Config
    return Path(Config.fromfile(config).test_dataloader.dataset.data_root)
