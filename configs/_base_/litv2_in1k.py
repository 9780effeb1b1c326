# LITv2 ImageNet-1k recipe (the authors' Swin-based classification code: config.py, optimizer.py,
# lr_scheduler.py, configs/litv2-*.yaml; LITv2 paper, NeurIPS 2022): 300 epochs, 8 GPUs x 128 = 1024
# images per step, AdamW (betas 0.9/0.999, eps 1e-8) base lr 5e-4 per 512 images -> 1e-3, weight
# decay 0.05, none on biases and 1-D parameters (norms); deformable-token-merging offsets
# (`conv_offset.weight`) at 0.01x lr (their biases get the full lr and no decay, as optimizer.py);
# cosine stepped per iteration to 5e-6 per 512 -> 1e-5 after 20 linear warm-up epochs from 5e-7 per
# 512 -> 1e-6 (1e-3 of the lr); gradient-norm clipping 5.0; mixed precision (apex O1 in the authors'
# runs); RandAugment, random erasing 0.25, mixup 0.8 / cutmix 1.0, label smoothing 0.1; drop path
# S 0.2, M 0.3, B 0.5. Reported top-1: S 82.0, M 83.3, B 83.6 (B at 384: 84.7).
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

train_dataloader = dict(batch_size=128)
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

warmup_epochs, max_epochs = 20, 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-6 * 1024 / 512, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
