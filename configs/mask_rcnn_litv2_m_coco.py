# Mask R-CNN with LITv2-M + FPN, COCO 2017, 1x (reported: 46.8 box AP / 42.3 mask AP on val2017).
# The LITv2-S recipe with the M backbone (`litv2_m.pth`).
_base_ = ['./mask_rcnn_litv2_s_coco.py']

model = dict(
    backbone=dict(arch='m', init_cfg=dict(checkpoint='checkpoints/litv2_m.pth')))
