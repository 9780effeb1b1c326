"""ImageNet classification through mmpretrain: the 12 configs with the authors' recipes build, train
one step and validate on a small generated ImageNet-style set, a short run learns it, and AGC clips as
timm's does (the authors' per-parameter rules and schedules: test_recipes.py)."""
import copy
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import effvit_mm  # noqa: F401
from effvit_mm.datasets import make_imagenet

ROOT = Path(__file__).parents[1]
CONFIGS = ['shvit_s1_in1k', 'shvit_s2_in1k', 'shvit_s3_in1k', 'shvit_s4_in1k',
           'swiftformer_xs_in1k', 'swiftformer_s_in1k', 'swiftformer_l1_in1k', 'swiftformer_l3_in1k',
           'litv2_s_in1k', 'litv2_m_in1k', 'litv2_b_in1k', 'litv2_b_384px_in1k']
NUM_CLASSES = 6
SIZE = 64


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet')
    return root, make_imagenet(root, num_classes=NUM_CLASSES, num_train_per_class=40, num_val_per_class=10,
                               size=SIZE, seed=0)


def _resize_pipeline(pipeline, size):
    """The config's pipeline with its crop / resize sizes scaled so that the crop is ``size``."""
    pipeline = copy.deepcopy(pipeline)
    crop = next((t['crop_size'] for t in pipeline if t['type'] == 'CenterCrop'), None)
    for t in pipeline:
        if t['type'] == 'RandomResizedCrop':
            t['scale'] = size
        elif t['type'] == 'ResizeEdge':
            t['scale'] = round(t['scale'] * size / crop)
        elif t['type'] == 'CenterCrop':
            t['crop_size'] = size
        elif t['type'] == 'Resize':
            t['scale'] = (size, size)
    return pipeline


def small_cfg(name, root, classes, work_dir, size=SIZE, batch_size=4):
    """The config on the generated set: ``size`` px, small batches, CPU, no teacher file."""
    cfg = Config.fromfile(ROOT / 'configs' / f'{name}.py')
    cfg.work_dir = str(work_dir)
    cfg.data_preprocessor.num_classes = len(classes)
    cfg.model.head.num_classes = len(classes)
    if cfg.model.type == 'DistilledImageClassifier':
        cfg.model.teacher = None
    cfg.model.backbone.init_cfg = None
    cfg.load_from = None
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=str(root), metainfo=dict(classes=classes),
                              pipeline=_resize_pipeline(loader.dataset.pipeline, size))
    if cfg.optim_wrapper.type == 'AmpOptimWrapper' and not torch.cuda.is_available():
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale')
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1000)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1000, save_last=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    return cfg


def test_recipes():
    """The numbers of the authors' recipes (see the config headers; the schedules, the per-parameter rules
    and the rest of the training recipe are checked against the authors' scripts in test_recipes.py)."""
    expect = {  # lr, total batch, weight decay, warm-up epochs, epochs
        'shvit_s1_in1k': (4e-3, 2048, 0.025, 5, 300), 'shvit_s2_in1k': (4e-3, 2048, 0.032, 5, 300),
        'shvit_s3_in1k': (4e-3, 2048, 0.035, 5, 300), 'shvit_s4_in1k': (4e-3, 2048, 0.03, 5, 300),
        'swiftformer_xs_in1k': (2e-3, 2048, 0.025, 5, 300), 'swiftformer_s_in1k': (2e-3, 2048, 0.025, 5, 300),
        'swiftformer_l1_in1k': (2e-3, 2048, 0.025, 5, 300), 'swiftformer_l3_in1k': (2e-3, 2048, 0.025, 5, 300),
        'litv2_s_in1k': (1e-3, 1024, 0.05, 20, 300), 'litv2_m_in1k': (1e-3, 1024, 0.05, 20, 300),
        'litv2_b_in1k': (1e-3, 1024, 0.05, 20, 300), 'litv2_b_384px_in1k': (4e-5, 1024, 1e-8, 5, 30)}
    drop_path = {'litv2_s_in1k': 0.2, 'litv2_m_in1k': 0.3, 'litv2_b_in1k': 0.5, 'litv2_b_384px_in1k': 0.5}
    for name, (lr, batch, wd, warmup, epochs) in expect.items():
        cfg = Config.fromfile(ROOT / 'configs' / f'{name}.py')
        optim = cfg.optim_wrapper
        assert cfg.default_scope == 'mmpretrain'
        assert math.isclose(optim.optimizer.lr, lr) and optim.optimizer.weight_decay == wd, name
        assert optim.optimizer.type == 'AdamW' and optim.optimizer.betas == (0.9, 0.999)
        assert batch == cfg.train_dataloader.batch_size * 8, name
        if not name.startswith('swiftformer'):  # its recipe keeps the lr at every batch size
            assert cfg.auto_scale_lr.base_batch_size == batch, name
        sched = cfg.param_scheduler
        assert (sched.type, sched.timm_type, sched.t_initial, sched.warmup_t) == \
            ('TimmLRScheduler', 'CosineLRScheduler', epochs, warmup), name
        assert cfg.train_cfg.max_epochs == epochs
        assert (optim.paramwise_cfg.bias_decay_mult, optim.paramwise_cfg.flat_decay_mult) == (0.0, 0.0)
        assert cfg.model.backbone.drop_path_rate == drop_path.get(name, 0.0), name
        assert (cfg.val_evaluator.type, cfg.val_evaluator.topk) == ('Accuracy', (1, 5))
        assert cfg.train_dataloader.dataset.data_root == 'data/imagenet/'
        assert (cfg.train_dataloader.dataset.data_prefix, cfg.val_dataloader.dataset.data_prefix) == ('train', 'val')
        loss = cfg.model.head.loss
        assert (loss.type, loss.label_smooth_val) == ('LabelSmoothLoss', 0.1)
        train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
        assert train['RandomErasing']['erase_prob'] == 0.25
        mix = cfg.model.get('train_cfg')
        if name in ('swiftformer_xs_in1k', 'swiftformer_s_in1k'):
            assert mix is None
        else:
            assert mix.augments == [dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]
        if name == 'swiftformer_xs_in1k':
            assert 'RandAugment' not in train and train['ColorJitter']['brightness'] == 0.4
        else:
            ra = train['RandAugment']
            assert (ra['policies'], ra['num_policies'], ra['magnitude_level'], ra['magnitude_std']) == \
                ('timm_increasing', 2, 9, 0.5)
        if name.startswith('shvit'):
            assert (optim.type, optim.clip_factor) == ('AGCOptimWrapper', 0.02)
            assert (sched.warmup_lr_init, sched.lr_min, sched.by_epoch) == (1e-6, 1e-5, True)
        elif name.startswith('swiftformer'):
            assert (optim.type, optim.clip_factor) == ('AGCOptimWrapper', 0.01)
            assert (sched.warmup_lr_init, sched.lr_min, sched.by_epoch) == (1e-6, 1e-5, True)
            assert cfg.model.type == 'DistilledImageClassifier' and cfg.model.distill_alpha == 0.5
            assert cfg.model.teacher == dict(name='regnety_160', checkpoint='checkpoints/regnety_160.pth')
        else:
            assert optim.type == 'AmpOptimWrapper' and optim.clip_grad == dict(max_norm=5.0)
            assert optim.paramwise_cfg.norm_decay_mult == 0.0
            assert optim.paramwise_cfg.custom_keys['conv_offset.weight'] == dict(lr_mult=0.01)
            assert math.isclose(sched.warmup_lr_init, lr / 1000) and math.isclose(sched.lr_min, lr / 100)
            assert sched.convert_to_iter_based and sched.scale_floors
    sizes = {'shvit_s4_in1k': (256, [292, 256]), 'litv2_b_384px_in1k': (384, [(384, 384)]),
             'litv2_s_in1k': (224, [256, 224])}
    for name, (train_size, test_sizes) in sizes.items():
        cfg = Config.fromfile(ROOT / 'configs' / f'{name}.py')
        assert cfg.train_dataloader.dataset.pipeline[1].scale == train_size
        test = cfg.test_dataloader.dataset.pipeline[1:-1]
        assert [t.get('scale', t.get('crop_size')) for t in test] == test_sizes
        assert all(t.get('interpolation') in (None, 'bicubic') for t in test)
    assert Config.fromfile(ROOT / 'configs/litv2_b_384px_in1k.py').load_from == 'checkpoints/litv2_b_mmpretrain.pth'


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_validates(name, imagenet, tmp_path):
    root, summary = imagenet
    cfg = small_cfg(name, root, summary['classes'], tmp_path)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert type(model).__name__ == cfg.model.type
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    data = next(iter(runner.build_dataloader(cfg.train_dataloader)))
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    metrics = runner.val()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    assert 0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100


def test_agc_matches_timm():
    """AGCOptimWrapper clips every parameter exactly as timm's NativeScaler(clip_mode='agc')."""
    from mmengine.optim import build_optim_wrapper
    from timm.utils.agc import adaptive_clip_grad

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 6 * 6, 5))
    reference = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, dict(type='AGCOptimWrapper', clip_factor=0.02,
                                              optimizer=dict(type='SGD', lr=0.1)))
    assert (type(wrapper).__name__, wrapper.clip_factor) == ('AGCOptimWrapper', 0.02)
    x = torch.randn(4, 3, 8, 8)
    wrapper.backward(model(x).pow(2).sum() * 100)
    reference(x).pow(2).sum().mul(100).backward()
    unclipped = [p.grad.clone() for p in reference.parameters()]
    adaptive_clip_grad(reference.parameters(), 0.02, eps=1e-3)
    assert any(not torch.equal(a, p.grad) for a, p in zip(unclipped, reference.parameters()))  # it clips
    wrapper.step()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * p.grad
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='clip_grad'):
        build_optim_wrapper(model, dict(type='AGCOptimWrapper', clip_grad=dict(max_norm=1.0),
                                        optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(ValueError, match='clip_factor'):
        build_optim_wrapper(model, dict(type='AGCOptimWrapper', clip_factor=0.0, optimizer=dict(type='SGD', lr=0.1)))


def test_short_training_learns(imagenet, tmp_path):
    """SHViT-S1 from scratch, its recipe's optimiser (AdamW, AGC 0.02, no decay on 1-D), on the generated
    set at 64 px: a few CPU epochs reach well above chance (1/6) top-1 on the held-out images."""
    root, summary = imagenet
    cfg = small_cfg('shvit_s1_in1k', root, summary['classes'], tmp_path, batch_size=16)
    cfg.model.train_cfg = None  # no mixup / cutmix, RandAugment or erasing: a few epochs only
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=SIZE, crop_ratio_range=(0.6, 1.0), backend='pillow',
             interpolation='bicubic'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')]
    epochs = 6
    cfg.optim_wrapper.optimizer.lr = 2e-3
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=epochs, convert_to_iter_based=True)]
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=epochs)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    print(f"short run: top-1 {metrics['accuracy/top1']:.1f} % (chance {100 / NUM_CLASSES:.1f} %)")
    assert metrics['accuracy/top1'] > 2 * 100 / NUM_CLASSES
