# Semantic FPN with LITv2-M, ADE20K, 512x512, 80k iterations: the authors' setup (reported: 45.7 mIoU
# on the validation set, single scale; see _base_/fpn_litv2_ade20k.py). Backbone from the authors'
# ImageNet-1k release `litv2_m.pth`; drop path 0.2, as their segmentation config.
_base_ = ['./_base_/fpn_litv2_ade20k.py']

model = dict(
    backbone=dict(arch='m', drop_path_rate=0.2, init_cfg=dict(checkpoint='checkpoints/litv2_m.pth')))
