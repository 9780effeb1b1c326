# RetinaNet with LITv2-B + FPN, COCO 2017, 1x (reported: 46.7 AP on val2017).
# The LITv2-S recipe with the B backbone (`litv2_b.pth`), drop path 0.3 and gradient checkpointing,
# as the authors trained it.
_base_ = ['./retinanet_litv2_s_coco.py']

model = dict(
    backbone=dict(arch='b', drop_path_rate=0.3, with_cp=True,
                  init_cfg=dict(checkpoint='checkpoints/litv2_b.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
