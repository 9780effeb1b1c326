# Semantic FPN with LITv2-B, ADE20K, 512x512, 80k iterations: the authors' setup (reported: 47.2 mIoU
# on the validation set, single scale; see _base_/fpn_litv2_ade20k.py). Backbone from the authors'
# ImageNet-1k release `litv2_b.pth`; drop path 0.3, as their segmentation config.
_base_ = ['./_base_/fpn_litv2_ade20k.py']

model = dict(
    backbone=dict(arch='b', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/litv2_b.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
