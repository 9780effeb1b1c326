# SHViT-S4 on ImageNet-1k, the authors' recipe (see _base_/shvit_in1k.py): weight decay 0.03, trained
# and tested at 256x256 (--input-size 256): RandomResizedCrop 256; at test the shorter side resized
# to int(256 / 224 * 256) = 292, centre crop 256, as the authors' build_transform.
# Reported: 79.4 top-1.
_base_ = ['./_base_/shvit_in1k.py']

model = dict(backbone=dict(arch='s4'), head=dict(in_channels=448))
optim_wrapper = dict(optimizer=dict(weight_decay=0.03))

img_size = 256
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),  # BGR mean / std (pad_val: rounded mean)
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=int(256 / 224 * img_size), edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
