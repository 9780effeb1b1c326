# Semantic FPN with a SwiftFormer backbone on ADE20K, EfficientFormer's segmentation recipe (see
# fpn_ade20k.py and schedule_swiftformer_seg_40k.py). The backbone gives its four stages (strides
# 4..32) through the per-output BatchNorms norm0..norm6, which start fresh; its BatchNorms train
# (norm_eval=False, nothing frozen) and it has no drop path, as in the detection configs. The variant
# files set the arch, the FPN inputs and the ImageNet-1k checkpoint.
_base_ = ['./fpn_ade20k.py', './schedule_swiftformer_seg_40k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwiftFormer',
        arch='l1',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/SwiftFormer_L1_ckpt.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))

train_dataloader = dict(batch_size=4)  # x 8 GPUs = 32 images per step
