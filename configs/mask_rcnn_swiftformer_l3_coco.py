# Mask R-CNN with SwiftFormer-L3 + FPN, COCO 2017, 1x (reported: 42.7 box AP / 39.1 mask AP on
# val2017). The SwiftFormer-L1 recipe with the L3 backbone (`SwiftFormer_L3_ckpt.pth`).
_base_ = ['./mask_rcnn_swiftformer_l1_coco.py']

model = dict(
    backbone=dict(arch='l3', init_cfg=dict(checkpoint='checkpoints/SwiftFormer_L3_ckpt.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
