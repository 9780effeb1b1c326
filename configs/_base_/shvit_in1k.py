# SHViT ImageNet-1k recipe (the authors' DeiT-based main.py and README; SHViT paper, CVPR 2024):
# 300 epochs, 8 GPUs x 256 = 2048 images per step, AdamW (betas 0.9/0.999, eps 1e-8) with lr
# 1e-3 per 512 images, which the authors' main.py scales linearly: 1e-3 * 2048 / 512 = 4e-3;
# weight decay per variant (S1 0.025, S2 0.032, S3 0.035, S4 0.03), none on biases and 1-D
# parameters (norms) as timm's optimizer factory; adaptive gradient clipping 0.02 (timm's AGC over
# all parameters, see effvit_mm/engine/optim_wrappers.py); fp32 (the authors' autocast is commented
# out). RandAugment, random erasing 0.25, mixup 0.8 / cutmix 1.0 (switch probability 0.5, every
# batch), label smoothing 0.1, no distillation, no drop path. Reported top-1: S1 72.8, S2 75.2,
# S3 77.4, S4 79.4 (at 256).
#
# Schedule: timm's CosineLRScheduler as DeiT's create_scheduler builds it (t_initial 300, 5 warm-up
# epochs from 1e-6, minimum 1e-5; the 10 cool-down epochs it reports are never run), stepped after
# each epoch as main.py does, so epoch e trains with timm's value for e - 1 (epochs 0 and 1 at 1e-6);
# see effvit_mm/engine/timm_scheduler.py. `--auto-scale-lr` rescales the lr as main.py does, not
# the 1e-6 / 1e-5 floors (main.py does not scale them).
# Data: DeiT's repeated augmentation (on by default in main.py): every image 3 times per epoch,
# each copy on another GPU, and the last incomplete batch dropped. main.py also keeps an EMA of the
# weights (decay 0.99996) that it never evaluates; the reported numbers are the trained weights', so
# no EMA is kept here.
_base_ = ['./imagenet_timm_224.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='SHViT', arch='s1', out_indices=(2, ), drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='SHViTClsHead',
        num_classes=1000,
        in_channels=320,  # last embed dim: s1 320, s2 / s3 / s4 448
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(
    batch_size=256, drop_last=True, sampler=dict(type='RepeatAugSampler', num_repeats=3, shuffle=True))
val_dataloader = dict(batch_size=384)  # 1.5x, as DeiT
test_dataloader = val_dataloader

lr = 1e-3 * 2048 / 512
optim_wrapper = dict(
    type='AGCOptimWrapper',
    clip_factor=0.02,
    eps=1e-3,
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.025),
    # timm's `filter_bias_and_bn`: no decay on biases and on every 1-D parameter
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))

max_epochs = 300
param_scheduler = dict(type='TimmLRScheduler', timm_type='CosineLRScheduler', by_epoch=True, t_initial=max_epochs,
                       warmup_t=5, warmup_lr_init=1e-6, lr_min=1e-5, cycle_limit=1)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=2048)
