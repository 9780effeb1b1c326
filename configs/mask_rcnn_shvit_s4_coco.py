# Mask R-CNN with SHViT-S4 + EfficientViTFPN, COCO 2017, 1x: the SHViT paper's setup
# (reported: 39.0 box AP / 35.9 mask AP on val2017). The backbone starts from the authors'
# ImageNet-1k release `shvit_s4.pth`, loaded strictly (put it in checkpoints/ or override
# model.backbone.init_cfg.checkpoint); all backbone BatchNorms stay in eval mode, no stage is frozen.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_shvit_det_1x.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='SHViT',
        arch='s4',
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/shvit_s4.pth')),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[224, 336, 448],
        out_channels=256,
        start_level=0,
        num_outs=5,
        num_extra_trans_convs=2))  # strides 4, 8 (transposed convs), 16, 32, 64 (stages)
