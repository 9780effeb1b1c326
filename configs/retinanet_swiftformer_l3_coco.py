# RetinaNet with SwiftFormer-L3 + FPN, COCO 2017, 1x (no published result or recipe; see the L1 config).
_base_ = ['./retinanet_swiftformer_l1_coco.py']

model = dict(
    backbone=dict(arch='l3', init_cfg=dict(checkpoint='checkpoints/SwiftFormer_L3_ckpt.pth')),
    neck=dict(in_channels=[128, 320, 512]))
