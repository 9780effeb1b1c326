# Mask R-CNN with LITv2-S + FPN, COCO 2017, 1x: the LITv2 authors' setup (reported: 44.9 box AP /
# 40.8 mask AP on val2017). Backbone from the authors' ImageNet-1k release `litv2_s.pth`, loaded
# strictly (put it in checkpoints/ or override model.backbone.init_cfg.checkpoint); the output
# LayerNorms norm1..3 start fresh, as in the authors' runs. Mixed precision, AdamW lr 2e-4,
# no weight decay on parameters named `norm`, DTM offsets at the full lr (see
# _base_/schedule_litv2_det_1x.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_litv2_det_1x.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='LITv2',
        arch='s',
        alpha=0.9,
        local_ws=[0, 0, 2, 1],
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/litv2_s.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}))
