# SwiftFormer ImageNet-1k recipe (the authors' DeiT-based main.py, dist_train.sh and README;
# SwiftFormer paper, ICCV 2023): 300 epochs, 2048 images per step (README: "16 GPUs x 128 or
# 8 GPUs x 256"; here 8 x 256), AdamW lr 2e-3 NOT rescaled with the batch (main.py: "better not to
# scale up lr for AdamW"; the default --lr 2e-3 is used at 2048), betas 0.9/0.999, eps 1e-8, weight
# decay 0.025 (main.py's default, which dist_train.sh keeps), none on biases and 1-D parameters
# (timm's optimizer factory; the (C, 1, 1) layer scales are decayed, as there); adaptive gradient
# clipping 0.01 (main.py's defaults --clip-grad 0.01 --clip-mode agc); fp32 (autocast commented
# out); RandAugment, random erasing 0.25, mixup 0.8 / cutmix 1.0 (switch probability 0.5, every
# batch), label smoothing 0.1 (XS: no RandAugment, mixup, cutmix; S: no mixup, cutmix); no drop
# path; hard distillation (alpha 0.5) from DeiT's RegNetY-16GF teacher (`regnety_160-a5fe301d.pth`:
# put it at checkpoints/regnety_160.pth, or train without a teacher with
# `--cfg-options model.teacher=None`). Evaluated every 20 epochs, as main.py.
# Reported top-1: XS 75.7, S 78.5, L1 80.9, L3 83.0.
#
# Schedule: timm's CosineLRScheduler as DeiT's create_scheduler builds it (t_initial 300, 5 warm-up
# epochs from 1e-6, minimum 1e-5), stepped after each epoch as main.py does, so epoch e trains with
# timm's value for e - 1 (see effvit_mm/engine/timm_scheduler.py). The recipe keeps lr 2e-3 at every
# batch size, so this config has no `auto_scale_lr` and `--auto-scale-lr` is refused.
# Data: DeiT's repeated augmentation (on by default in main.py): every image 3 times per epoch,
# each copy on another GPU, and the last incomplete batch dropped. main.py's EMA of the weights
# (decay 0.99996) is never evaluated there, so none is kept here.
_base_ = ['./imagenet_timm_224.py']

model = dict(
    type='DistilledImageClassifier',
    teacher=dict(name='regnety_160', checkpoint='checkpoints/regnety_160.pth'),
    distill_alpha=0.5,
    backbone=dict(type='SwiftFormer', arch='l1', out_indices=(3, ), drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='SwiftFormerClsHead',
        num_classes=1000,
        in_channels=384,  # last embed dim: xs 220, s 224, l1 384, l3 512
        distillation=True,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(
    batch_size=256, drop_last=True, sampler=dict(type='RepeatAugSampler', num_repeats=3, shuffle=True))
val_dataloader = dict(batch_size=384)  # 1.5x, as DeiT
test_dataloader = val_dataloader

lr = 2e-3
optim_wrapper = dict(
    type='AGCOptimWrapper',
    clip_factor=0.01,
    eps=1e-3,
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.025),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))

max_epochs = 300
param_scheduler = dict(type='TimmLRScheduler', timm_type='CosineLRScheduler', by_epoch=True, t_initial=max_epochs,
                       warmup_t=5, warmup_lr_init=1e-6, lr_min=1e-5, cycle_limit=1)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=20)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(
    refuse='the SwiftFormer recipe keeps lr 2e-3 at every batch size (main.py: "better not to scale up lr '
    'for AdamW"); set optim_wrapper.optimizer.lr yourself to change it')
