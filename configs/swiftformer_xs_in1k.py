# SwiftFormer-XS on ImageNet-1k, 224x224, the authors' recipe with distillation (see
# _base_/swiftformer_in1k.py) without RandAugment, mixup and cutmix (dist_train.sh: --aa="" --mixup 0
# --cutmix 0). Without RandAugment timm's create_transform applies its colour jitter 0.4
# (brightness, contrast, saturation), which the pipeline below therefore has; random erasing 0.25
# stays. Reported: 75.7 top-1.
_base_ = ['./_base_/swiftformer_in1k.py']

model = dict(backbone=dict(arch='xs'), head=dict(in_channels=220), train_cfg=None)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),  # BGR mean / std (pad_val: rounded mean)
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
