# ImageNet-1k data of the authors' classification recipes. SHViT and SwiftFormer train with DeiT's
# script, LITv2 with Swin's; all three build their pipelines with timm's `create_transform` and the
# same settings, which mmpretrain's `imagenet_bs64_swin_224.py` reproduces:
#   train: RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3, bicubic), horizontal flip 0.5,
#          RandAugment `rand-m9-mstd0.5-inc1` (2 ops, magnitude 9, std 0.5, 'timm_increasing'),
#          random erasing 0.25 ('pixel' mode: normal noise, area 0.02-1/3); timm's colour jitter 0.4
#          is off whenever RandAugment is on (see swiftformer_xs_in1k.py, the one recipe without it);
#   test:  resize the shorter side to int(256 / 224 * size) = 256 (bicubic), centre crop 224
#          (crop_pct 0.875), as the authors' `build_transform`.
# Mixup 0.8 / CutMix 1.0 and label smoothing 0.1 are in the model (family bases).
#
# Data: data/imagenet/{train,val}/<wnid>/*.JPEG, the class-folder layout of the authors' READMEs
# (labels = sorted folder names, as torchvision's ImageFolder). To use mmpretrain's annotation-file
# layout instead (data/imagenet/meta/{train,val}.txt with `path label` lines relative to train/ or
# val/), set `ann_file='meta/train.txt'` / `'meta/val.txt'` in the datasets, or replace
# `data_prefix=..., ann_file=''` by `split='train'` / `split='val'` (mmpretrain then reads the list
# when it exists). `python tools/dataset_converters/generate_data.py imagenet` writes a small set with both layouts.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

data_root = 'data/imagenet/'
train_dataloader = dict(
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type='ImageNet', data_root=data_root, split='', data_prefix='train', ann_file=''))
val_dataloader = dict(
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type='ImageNet', data_root=data_root, split='', data_prefix='val', ann_file=''))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
