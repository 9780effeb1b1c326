# LITv2 ImageNet-1k recipe (the authors' Swin-based classification code: config.py, optimizer.py,
# lr_scheduler.py, main.py, configs/litv2-*.yaml; LITv2 paper, NeurIPS 2022): 300 epochs, 8 GPUs x
# 128 = 1024 images per step (the last incomplete batch dropped), AdamW (betas 0.9/0.999, eps 1e-8)
# base lr 5e-4 per 512 images -> 1e-3, weight decay 0.05, none on biases and 1-D parameters (norms);
# deformable-token-merging offsets (`conv_offset.weight`) in a group of their own at 0.01x lr (their
# biases get the full lr and no decay, as optimizer.py); gradient-norm clipping 5.0; mixed precision
# (apex O1 in the authors' runs); RandAugment, random erasing 0.25, mixup 0.8 / cutmix 1.0 (switch
# probability 0.5, every batch), label smoothing 0.1; drop path S 0.2, M 0.3, B 0.5; no EMA, no
# repeated augmentation. Reported top-1: S 82.0, M 83.3, B 83.6 (B at 384: 84.7).
#
# Schedule: timm's CosineLRScheduler as Swin's build_scheduler builds it, counted in updates
# (t_initial = int(300 * updates per epoch), 20 warm-up epochs from 5e-7 per 512 images -> 1e-6,
# minimum 5e-6 per 512 -> 1e-5, both shared by all groups as in timm), stepped after every update
# as main.py's `step_update(epoch * num_steps + idx)`, so update i trains with timm's value for i - 1
# (see effvit_mm/engine/timm_scheduler.py). The offset group warms up from 1e-6 to its own 1e-5 and
# then stays there (its base equals the minimum). `--auto-scale-lr` scales the lr, the warm-up start
# and the minimum together, as main.py does.
# Mixed precision needs a GPU: on CPU use `--cfg-options optim_wrapper.type=OptimWrapper`.
_base_ = [
    './imagenet_timm_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='LITv2', arch='s', alpha=0.9, local_ws=[0, 0, 2, 1], out_indices=(3, ), drop_path_rate=0.2),
    neck=None,
    head=dict(
        type='LITv2ClsHead',
        num_classes=1000,
        in_channels=768,  # s / m 768, b 1024
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=128, drop_last=True)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

lr = 5e-4 * 1024 / 512
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'conv_offset.weight': dict(lr_mult=0.01)}))

max_epochs = 300
param_scheduler = dict(_delete_=True, type='TimmLRScheduler', timm_type='CosineLRScheduler', by_epoch=True,
                       convert_to_iter_based=True, scale_floors=True, t_initial=max_epochs, warmup_t=20,
                       warmup_lr_init=5e-7 * 1024 / 512, lr_min=5e-6 * 1024 / 512, cycle_limit=1)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
