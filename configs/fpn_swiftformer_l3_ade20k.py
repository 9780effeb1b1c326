# Semantic FPN with SwiftFormer-L3, ADE20K, 512x512, 40k iterations (reported: 43.9 mIoU on the
# validation set, single scale), EfficientFormer's recipe (see _base_/fpn_swiftformer_ade20k.py).
# The backbone starts from the authors' ImageNet-1k release `SwiftFormer_L3_ckpt.pth`.
_base_ = ['./_base_/fpn_swiftformer_ade20k.py']

model = dict(
    backbone=dict(arch='l3', init_cfg=dict(checkpoint='checkpoints/SwiftFormer_L3_ckpt.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
