# RetinaNet with LITv2-M + FPN, COCO 2017, 1x (reported: 46.0 AP on val2017).
# The LITv2-S recipe with the M backbone (`litv2_m.pth`).
_base_ = ['./retinanet_litv2_s_coco.py']

model = dict(
    backbone=dict(arch='m', init_cfg=dict(checkpoint='checkpoints/litv2_m.pth')))
