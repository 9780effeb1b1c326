"""Every config trains as the authors' scripts do, checked against those scripts written out here
independently of the configs (see the README's recipe table):

- the learning rate of every parameter at every epoch / iteration of the whole schedule, as our
  runner applies it (mmengine's ``Runner`` builds the optimiser wrapper, scales the lr, builds the
  schedulers, and its ``ParamSchedulerHook`` steps them), equals the authors' curve: timm's scheduler
  objects called as DeiT's / Swin's loops call them (SHViT, SwiftFormer, LITv2 classification), mmcv
  1.x's step-with-linear-warm-up and poly formulas from its documentation (mmdet 2 / mmseg 0.x
  recipes), within 1e-9 relative;
- weight decay and base lr per parameter, gradient clipping, drop path per block, label smoothing,
  mixup / cutmix, repeated augmentation, EMA, distillation and the total batch size.

The data sets are not read: the train loop gets a stand-in loader with the real epoch length.
"""
import copy
import functools
import math
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import ParamSchedulerHook
from mmengine.runner import Runner
from timm.layers import DropPath
from timm.scheduler import CosineLRScheduler, create_scheduler

import effvit_mm  # noqa: F401
from effvit_mm.engine.config_switches import enable_auto_scale_lr
from effvit_mm.engine import TimmLRScheduler
from effvit_mm.checkpoint.safe_load import safe_load

ROOT = Path(__file__).parents[1]
RTOL = 1e-9
FULL_GROUPS_ITERS = 200  # iterations checked with every parameter group (then one group per distinct lr)

# Epoch lengths: DeiT's repeated-augmentation sampler on 8 GPUs x 256 (160128 images per GPU,
# last batch dropped), Swin's loader on 8 x 128 (drop_last), COCO train2017 images with objects at 16
# per step. An epoch-stepped schedule does not depend on it.
DEIT_EPOCH = 160128 // 256
SWIN_EPOCH = math.ceil(1281167 / 8) // 128
COCO_EPOCH = math.ceil(117266 / 16)

# DeiT main.py's scheduler arguments (SHViT and SwiftFormer keep them).
DEIT_SCHED = dict(sched='cosine', epochs=300, warmup_epochs=5, warmup_lr=1e-6, min_lr=1e-5, decay_epochs=30,
                  cooldown_epochs=10, patience_epochs=10, decay_rate=0.1, lr_noise=None)
LITV2_DEPTHS = {'s': [2, 2, 6, 2], 'm': [2, 2, 18, 2], 'b': [2, 2, 18, 2]}


def _swin(base, warmup, minimum, batch=1024):
    """Swin / LITv2 main.py's linear scaling of BASE_LR, WARMUP_LR and MIN_LR (per 512 images)."""
    return base * batch / 512, warmup * batch / 512, minimum * batch / 512


def _cls(family, **kw):
    return dict(task='cls', family=family, **kw)


# The authors' recipes (their scripts' values, not the configs').
RECIPES = {
    **{f'shvit_{v}_in1k': _cls('shvit', lr=1e-3 * 256 * 8 / 512, wd=wd, clip=('agc', 0.02), mix=True, repeat=3,
                                distill=None, batch=2048, drop=0.0)
       for v, wd in (('s1', 0.025), ('s2', 0.032), ('s3', 0.035), ('s4', 0.03))},
    **{f'swiftformer_{v}_in1k': _cls('swiftformer', lr=2e-3, wd=0.025, clip=('agc', 0.01), mix=v in ('l1', 'l3'),
                                      repeat=3, distill=0.5, batch=2048, drop=0.0)
       for v in ('xs', 's', 'l1', 'l3')},
    **{f'litv2_{v}_in1k': _cls('litv2', swin=_swin(5e-4, 5e-7, 5e-6), epochs=300, warmup=20, wd=0.05,
                                clip=('norm', 5.0), mix=True, repeat=None, distill=None, batch=1024,
                                drop=(LITV2_DEPTHS[v], rate))
       for v, rate in (('s', 0.2), ('m', 0.3), ('b', 0.5))},
    'litv2_b_384px_in1k': _cls('litv2', swin=_swin(2e-5, 2e-8, 2e-7), epochs=30, warmup=5, wd=1e-8,
                               clip=('norm', 5.0), mix=True, repeat=None, distill=None, batch=1024,
                               drop=(LITV2_DEPTHS['b'], 0.5)),
    # mmdet 2 recipes: SHViT's downstream/ (2.25), EfficientFormer's (2.19; SwiftFormer), LITv2's (2.11)
    **{f'{det}_shvit_s4_coco': dict(task='det', lr=1e-4, ratio=1e-3, wd=0.05, no_decay=('attention_biases',),
                                    batch=16, drop=0.0) for det in ('mask_rcnn', 'retinanet')},
    **{f'{det}_swiftformer_{v}_coco': dict(task='det', lr=2e-4, ratio=1e-6, wd=1e-4, no_decay=(), batch=16, drop=0.0)
       for det in ('mask_rcnn', 'retinanet') for v in ('l1', 'l3')},
    **{f'mask_rcnn_litv2_{v}{ws}_coco': dict(task='det', lr=2e-4, ratio=1e-3, wd=1e-4, no_decay=('norm',), batch=16,
                                             drop=(LITV2_DEPTHS[v], rate))
       for v, rate in (('s', 0.2), ('m', 0.2), ('b', 0.3)) for ws in ('', '_ws4')},
    **{f'retinanet_litv2_{v}{ws}_coco': dict(task='det', lr=1e-4, ratio=1e-3, wd=1e-4, no_decay=(), batch=16,
                                             drop=(LITV2_DEPTHS[v], rate))
       for v, rate in (('s', 0.2), ('m', 0.2), ('b', 0.3)) for ws in ('', '_ws4')},
    # mmseg 0.x recipes: LITv2's (0.13), EfficientFormer's (0.19, gpu_multiples=2); SHViT: ours = the latter
    **{f'fpn_litv2_{v}_ade20k': dict(task='seg', lr=1e-4, iters=80000, min_lr=1e-6, wd=1e-4, batch=16,
                                     drop=(LITV2_DEPTHS[v], rate))
       for v, rate in (('s', 0.2), ('m', 0.2), ('b', 0.3))},
    **{f'fpn_{m}_ade20k': dict(task='seg', lr=2e-4, iters=40000, min_lr=0.0, wd=1e-4, batch=32, drop=0.0)
       for m in ('swiftformer_l1', 'swiftformer_l3', 'shvit_s4')},
}


class _StandInLoader:
    """What a train loop needs of a data loader to be built: a length (and an iterator)."""

    dataset = SimpleNamespace(metainfo={})

    def __init__(self, length):
        self.length = length

    def __len__(self):
        return self.length

    def __iter__(self):  # an iteration-based loop makes an iterator at once; no batch is drawn
        return iter(())


def _epoch_length(name, recipe):
    if recipe['task'] == 'cls':
        return SWIN_EPOCH if recipe['family'] == 'litv2' else DEIT_EPOCH
    return COCO_EPOCH if recipe['task'] == 'det' else 1


def build_runner(name, tmp_path, epoch_length, batch_size=None):
    """The config's runner (model, optimiser, schedulers, hooks) with a stand-in train loader."""
    cfg = Config.fromfile(ROOT / 'configs' / f'{name}.py')
    cfg.work_dir = str(tmp_path / name)
    cfg.log_level = 'WARNING'
    cfg.load_from = None
    if cfg.model.get('teacher'):
        cfg.model.teacher = None  # no teacher file here; the loss weights are checked on the config
    if cfg.optim_wrapper.type == 'AmpOptimWrapper':  # CPU: the lr handling is OptimWrapper's
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale')
    if batch_size:
        cfg.train_dataloader.batch_size = batch_size
    # Runner.from_cfg without `cfg=` (whose pretty-printing takes seconds) and without validation
    runner = Runner(model=cfg.model, work_dir=cfg.work_dir, train_dataloader=cfg.train_dataloader,
                    train_cfg=cfg.train_cfg, optim_wrapper=cfg.optim_wrapper, param_scheduler=cfg.param_scheduler,
                    auto_scale_lr=cfg.get('auto_scale_lr'), default_hooks=cfg.get('default_hooks'),
                    custom_hooks=cfg.get('custom_hooks'), env_cfg=cfg.get('env_cfg', dict(dist_cfg=dict(backend='gloo'))),
                    visualizer=cfg.get('visualizer'), log_level='WARNING', default_scope=cfg.get('default_scope'),
                    experiment_name=f'{tmp_path.name}_{name}')  # unique: mmengine keeps one scope per name
    runner._train_dataloader = _StandInLoader(epoch_length)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner._train_dataloader = cfg.train_dataloader  # what Runner.scale_lr reads the batch size from
    return runner, cfg


_RUNS = {}  # collapsed runs by everything that determines them (configs sharing a schedule run once)


def applied_lrs(runner, cfg, iters, collapse):
    """The lr the runner trains each of ``iters`` iterations with, per parameter group, as Runner.train()
    builds and ParamSchedulerHook steps the schedulers. Returns ``(owner, lrs)``: the column of each
    parameter name and an ``(iters, columns)`` array. ``collapse`` keeps one group per distinct lr
    (the schedulers treat groups independently, so those with the same lr follow the same curve); such
    a run depends only on those lrs, the schedulers, the loop, the epoch length and the lr scaling, and
    is reused for another config where all of these are the same."""
    runner.param_schedulers = copy.deepcopy(cfg.param_scheduler)
    runner.optim_wrapper = runner.build_optim_wrapper(copy.deepcopy(cfg.optim_wrapper))
    groups = runner.optim_wrapper.optimizer.param_groups
    names = {id(p): n for n, p in runner.model.named_parameters()}
    column = {}
    for group in groups:
        column.setdefault(group['lr'] if collapse else id(group), len(column))
    owner = {names[id(p)]: column[g['lr'] if collapse else id(g)] for g in groups for p in g['params']}
    if collapse:
        groups[:] = [next(g for g in groups if g['lr'] == lr) for lr in column]
    length, by_epoch = len(runner.train_dataloader), runner.train_loop.__class__.__name__ == 'EpochBasedTrainLoop'
    key = (repr(cfg.param_scheduler), repr(cfg.train_cfg), repr(runner.auto_scale_lr), cfg.train_dataloader.batch_size,
           length, iters, tuple(g['lr'] for g in groups))
    if collapse and key in _RUNS:
        return owner, _RUNS[key]
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    hook = next(h for h in runner.hooks if isinstance(h, ParamSchedulerHook))
    lrs = np.empty((iters, len(groups)))
    for i in range(iters):
        lrs[i] = [g['lr'] for g in groups]
        hook.after_train_iter(runner, i % length)
        if by_epoch and (i + 1) % length == 0:
            hook.after_train_epoch(runner)
    if collapse:
        _RUNS[key] = lrs
    return owner, lrs


# ----- the authors' curves -----

@functools.lru_cache
def deit_curve(lr, epochs, epoch_length):
    """DeiT main.py: ``create_scheduler(args, optimizer)``, ``train_one_epoch``, then ``lr_scheduler.step(epoch)``."""
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler, _ = create_scheduler(Namespace(**DEIT_SCHED), optimizer)
    per_epoch = []
    for epoch in range(epochs):
        per_epoch.append(optimizer.param_groups[0]['lr'])
        scheduler.step(epoch)
    return np.repeat(per_epoch, epoch_length)[:, None]


@functools.lru_cache
def swin_curve(group_lrs, epochs, warmup_epochs, warmup_lr, min_lr, epoch_length):
    """Swin / LITv2: ``build_scheduler(config, optimizer, len(data_loader_train))`` and
    ``lr_scheduler.step_update(epoch * num_steps + idx)`` after each update; one column per group."""
    optimizer = torch.optim.AdamW([dict(params=[torch.zeros(1, requires_grad=True)], lr=lr) for lr in group_lrs])
    scheduler = CosineLRScheduler(optimizer, t_initial=int(epochs * epoch_length), lr_min=min_lr,
                                  warmup_lr_init=warmup_lr, warmup_t=int(warmup_epochs * epoch_length),
                                  cycle_limit=1, t_in_epochs=False)
    lrs = np.empty((epochs * epoch_length, len(group_lrs)))
    for epoch in range(epochs):
        for idx in range(epoch_length):
            lrs[epoch * epoch_length + idx] = [g['lr'] for g in optimizer.param_groups]
            scheduler.step_update(epoch * epoch_length + idx)
    return lrs


def mmcv_step_curve(lr, warmup_ratio, epoch_length, epochs=12, steps=(8, 11), warmup_iters=500, gamma=0.1):
    """mmcv 1.x ``lr_config=dict(policy='step', warmup='linear', ...)`` by epoch: the regular lr is
    ``lr * gamma ** (number of steps <= epoch)``; iteration i < warmup_iters trains at
    ``regular * (1 - (1 - i / warmup_iters) * (1 - warmup_ratio))``, iteration warmup_iters at regular."""
    i = np.arange(epochs * epoch_length)
    regular = lr * gamma ** np.searchsorted(steps, i // epoch_length, side='right')
    k = (1 - i / warmup_iters) * (1 - warmup_ratio)
    return np.where(i < warmup_iters, regular * (1 - k), regular)[:, None]


def mmcv_poly_curve(lr, iters, min_lr, power=0.9):
    """mmcv 1.x ``lr_config=dict(policy='poly', power=0.9, min_lr=..., by_epoch=False)``:
    iteration i trains at ``(lr - min_lr) * (1 - i / max_iters) ** power + min_lr``."""
    i = np.arange(iters)
    return ((lr - min_lr) * (1 - i / iters) ** power + min_lr)[:, None]


def authors_schedule(name, recipe, model, epoch_length, scale=1.0):
    """``(column of each parameter, curve)`` of the authors' script for ``model``'s parameters."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if recipe['task'] == 'det':
        return dict.fromkeys(names, 0), mmcv_step_curve(recipe['lr'] * scale, recipe['ratio'], epoch_length)
    if recipe['task'] == 'seg':
        return dict.fromkeys(names, 0), mmcv_poly_curve(recipe['lr'] * scale, recipe['iters'], recipe['min_lr'])
    if recipe['family'] != 'litv2':
        return dict.fromkeys(names, 0), deit_curve(recipe['lr'] * scale, DEIT_SCHED['epochs'], epoch_length)
    base, warmup, minimum = (v * scale for v in recipe['swin'])
    # optimizer.py: offset weights (named conv_offset, not 1-D, not biases) in a group at BASE_LR * 0.01
    params = dict(model.named_parameters())
    column = {n: int('conv_offset' in n and params[n].ndim > 1 and not n.endswith('.bias')) for n in names}
    assert sum(column.values()) == 3, 'the three DTMs have offset weights'
    return column, swin_curve((base, base * 0.01), recipe['epochs'], recipe['warmup'], warmup, minimum, epoch_length)


def assert_same_curves(ours, theirs, name):
    """Every parameter's lr at every iteration: ours == the authors' within RTOL (relative)."""
    owner, lrs = ours
    column, curve = theirs
    assert set(owner) == set(column), name
    assert len(lrs) == len(curve), (name, len(lrs), len(curve))
    worst = 0.0
    for ours_col, their_col in {(owner[n], column[n]) for n in owner}:
        a, b = lrs[:, ours_col], curve[:, their_col]
        rel = np.abs(a - b) / np.abs(b)
        worst = max(worst, float(rel.max()))
        bad = np.flatnonzero(rel > RTOL)
        assert not len(bad), (f'{name}: first differing iteration {bad[0]}: ours {a[bad[0]]!r}, '
                              f'authors {b[bad[0]]!r}')
    return worst


# ----- the rest of the recipe -----

def authors_decay_and_lr(name, recipe, param, pname, base_lr):
    """(weight decay, base lr) of one parameter in the authors' optimiser."""
    key = pname.split('.', 1)[1] if pname.startswith(('backbone.', 'head.')) else pname
    if recipe['task'] == 'cls':  # timm's create_optimizer (DeiT) / Swin's set_weight_decay (LITv2)
        no_decay = param.ndim <= 1 or key.endswith('.bias')
        offset = recipe['family'] == 'litv2' and 'conv_offset' in key and not no_decay
        return (0.0 if no_decay else recipe['wd']), base_lr * (0.01 if offset else 1.0)
    # mmcv 1.x custom_keys (decay_mult=0 when the key is in the name); nothing else per parameter
    return (0.0 if any(k in pname for k in recipe.get('no_decay', ())) else recipe['wd']), base_lr


def assert_parameter_rules(runner, cfg, name, recipe):
    ow = runner.build_optim_wrapper(copy.deepcopy(cfg.optim_wrapper))
    base_lr = recipe['swin'][0] if 'swin' in recipe else recipe['lr']
    params = dict(runner.model.named_parameters())
    names = {id(p): n for n, p in params.items()}
    for group in ow.optimizer.param_groups:
        for p in group['params']:
            pname = names[id(p)]
            wd, lr = authors_decay_and_lr(name, recipe, p, pname, base_lr)
            assert group['weight_decay'] == pytest.approx(wd, rel=1e-12, abs=0), (name, pname)
            assert group['lr'] == pytest.approx(lr, rel=1e-12), (name, pname)
    if recipe['task'] != 'det' or not recipe['no_decay']:
        return
    matched = [n for n in params if any(k in n for k in recipe['no_decay'])]
    # SHViT's `attention_biases` rule (from EfficientViT's configs) names no SHViT parameter
    assert bool(matched) == ('litv2' in name), (name, matched[:3])


def assert_training_rules(runner, cfg, name, recipe):
    ow = runner.build_optim_wrapper(copy.deepcopy(cfg.optim_wrapper))
    clip = recipe.get('clip')
    if clip is None:
        assert not ow.clip_grad_kwargs, name
    elif clip[0] == 'agc':
        assert type(ow).__name__ == 'AGCOptimWrapper' and ow.clip_factor == clip[1] and \
            ow.clip_grad_kwargs['eps'] == 1e-3, name
    else:
        assert ow.clip_grad_kwargs == dict(max_norm=clip[1]) and ow.clip_func is torch.nn.utils.clip_grad_norm_, name
    # drop path per block (timm DropPath; Swin: linspace over all blocks; SHViT, SwiftFormer: none)
    drop = recipe['drop']
    expect = [] if drop == 0.0 else [p for p in torch.linspace(0, drop[1], sum(drop[0])).tolist() if p > 0]
    got = [m.drop_prob for m in runner.model.modules() if isinstance(m, DropPath)]
    assert got == pytest.approx(expect, rel=1e-6), name
    assert not any(type(h).__name__ == 'EMAHook' for h in runner.hooks), name  # no EMA evaluated by the authors
    assert cfg.train_dataloader.batch_size * 8 == recipe['batch'], name
    if recipe['task'] != 'cls':
        return
    loader = cfg.train_dataloader
    assert loader.drop_last, name  # DeiT's and Swin's loaders drop the last batch
    if recipe['repeat']:
        assert (loader.sampler.type, loader.sampler.num_repeats, loader.sampler.shuffle) == \
            ('RepeatAugSampler', recipe['repeat'], True), name
    else:
        assert loader.sampler.type == 'DefaultSampler', name
    loss = runner.model.head.loss_module
    assert (type(loss).__name__, loss.label_smooth_val, loss.mode) == ('LabelSmoothLoss', 0.1, 'original'), name
    augments = runner.model.data_preprocessor.batch_augments
    if recipe['mix']:  # timm Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode='batch')
        assert augments.probs is None and [(type(a).__name__, a.alpha) for a in augments.augments] == \
            [('Mixup', 0.8), ('CutMix', 1.0)], name
        assert augments.augments[1].cutmix_minmax is None and augments.augments[1].correct_lam, name
    else:
        assert augments is None, name
    if recipe['distill']:
        assert type(runner.model).__name__ == 'DistilledImageClassifier', name
        assert runner.model.distill_alpha == recipe['distill'] and runner.model.head.distillation, name
        assert Config.fromfile(ROOT / 'configs' / f'{name}.py').model.teacher.name == 'regnety_160', name
    else:
        assert type(runner.model).__name__ == 'ImageClassifier', name


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_equals_authors(name, tmp_path):
    """The whole lr schedule, every parameter (first iterations with every group), and the rest of the recipe."""
    recipe = RECIPES[name]
    epoch_length = _epoch_length(name, recipe)
    runner, cfg = build_runner(name, tmp_path, epoch_length)
    theirs = authors_schedule(name, recipe, runner.model, epoch_length)
    full = applied_lrs(runner, cfg, FULL_GROUPS_ITERS, collapse=False)
    assert_same_curves(full, (theirs[0], theirs[1][:FULL_GROUPS_ITERS]), name)
    worst = assert_same_curves(applied_lrs(runner, cfg, len(theirs[1]), collapse=True), theirs, name)
    print(f'{name}: {len(theirs[1])} iterations, largest relative lr difference {worst:.1e}')
    assert_parameter_rules(runner, cfg, name, recipe)
    assert_training_rules(runner, cfg, name, recipe)


def test_every_config_has_a_recipe():
    names = {p.stem for p in (ROOT / 'configs').glob('*.py') if 'demo' not in p.stem}
    assert names == set(RECIPES)
    assert sum(r['task'] == 'cls' for r in RECIPES.values()) == 12
    assert sum(r['task'] == 'det' for r in RECIPES.values()) == 18
    assert sum(r['task'] == 'seg' for r in RECIPES.values()) == 6


@pytest.mark.parametrize('name, batch, scale', [
    ('litv2_s_in1k', 64, 64 / 1024),        # Swin scales the lr, the warm-up start and the minimum
    ('shvit_s1_in1k', 128, 128 / 2048),     # DeiT scales the lr only
    ('mask_rcnn_litv2_s_coco', 1, 1 / 16),  # mmdet: the lr (the warm-up is relative)
    ('fpn_swiftformer_l1_ade20k', 2, 2 / 32),
])
def test_auto_scale_lr_scales_what_the_authors_scale(name, batch, scale, tmp_path):
    """``--auto-scale-lr`` on one process with another batch size: the authors' scripts at that batch."""
    recipe = RECIPES[name]
    epoch_length = 50 if recipe['task'] == 'cls' else _epoch_length(name, recipe)
    runner, cfg = build_runner(name, tmp_path, epoch_length, batch_size=batch)
    enable_auto_scale_lr(cfg)
    runner.auto_scale_lr = cfg.auto_scale_lr
    theirs = authors_schedule(name, recipe, runner.model, epoch_length, scale=scale)
    assert_same_curves(applied_lrs(runner, cfg, len(theirs[1]), collapse=True), theirs, name)


def test_swiftformer_refuses_auto_scale_lr():
    cfg = Config.fromfile(ROOT / 'configs' / 'swiftformer_l1_in1k.py')
    with pytest.raises(ValueError, match='--auto-scale-lr: the SwiftFormer recipe keeps lr 2e-3'):
        enable_auto_scale_lr(cfg)


@pytest.mark.parametrize('by_epoch', [True, False])
def test_timm_scheduler_state_and_errors(by_epoch, tmp_path):
    """The wrapper's state survives a weights-only checkpoint round trip and resumes the same curve;
    bad arguments name the problem (a kill-and-resume run: test_exact_resume.py)."""
    def make():
        optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-3)
        return optimizer, TimmLRScheduler(optimizer, 'CosineLRScheduler', by_epoch=by_epoch, t_initial=100,
                                          warmup_t=10, warmup_lr_init=1e-6, lr_min=1e-5)
    optimizer, scheduler = make()
    for _ in range(37):
        scheduler.step()
    torch.save(dict(state=scheduler.state_dict(), lr=optimizer.param_groups[0]['lr']), tmp_path / 's.pth')
    saved = safe_load(tmp_path / 's.pth')
    resumed_optimizer, resumed = make()
    resumed.load_state_dict(saved['state'])
    resumed_optimizer.param_groups[0]['lr'] = saved['lr']  # as the optimiser state restores it
    for _ in range(80):
        scheduler.step()
        resumed.step()
        assert resumed_optimizer.param_groups[0]['lr'] == optimizer.param_groups[0]['lr']
    assert optimizer.param_groups[0]['lr'] == 1e-5
    with pytest.raises(ValueError, match="no scheduler 'Cosine'"):
        TimmLRScheduler(optimizer, 'Cosine', t_initial=10)
    with pytest.raises(ValueError, match='set by_epoch, not t_in_epochs'):
        TimmLRScheduler(optimizer, 'CosineLRScheduler', t_initial=10, t_in_epochs=False)


@pytest.mark.parametrize('name', ['shvit_s1_in1k', 'swiftformer_xs_in1k', 'litv2_s_in1k'])
def test_smoothing_and_mixup_loss_equals_timms(name, mmpretrain_scope):
    """The config's loss on mmpretrain's mixed one-hot labels equals the authors' criterion: timm's
    ``SoftTargetCrossEntropy`` on ``mixup_target(..., smoothing=0.1)`` with the same pairs and ratio
    (mixup / cutmix on), or ``LabelSmoothingCrossEntropy(0.1)`` (XS, S: mixup off)."""
    from mmpretrain.registry import MODELS
    from timm.data.mixup import mixup_target
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    cfg = Config.fromfile(ROOT / 'configs' / f'{name}.py')
    loss = MODELS.build(cfg.model.head.loss)
    torch.manual_seed(0)
    logits, labels, lam = torch.randn(8, 1000, dtype=torch.float64), torch.randint(0, 1000, (8, )), 0.37
    if RECIPES[name]['mix']:
        pairs = torch.randperm(8)  # mmpretrain pairs by a permutation, timm by the flipped batch: same formula
        one_hot = torch.nn.functional.one_hot(labels, 1000).double()
        ours = loss(logits, lam * one_hot + (1 - lam) * one_hot[pairs])
        target = lam * mixup_target(labels, 1000, 1.0, 0.1) + (1 - lam) * mixup_target(labels[pairs], 1000, 1.0, 0.1)
        theirs = SoftTargetCrossEntropy()(logits, target)
    else:
        ours, theirs = loss(logits, labels), LabelSmoothingCrossEntropy(0.1)(logits, labels)
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=0)  # mmpretrain smooths hard labels in float32
