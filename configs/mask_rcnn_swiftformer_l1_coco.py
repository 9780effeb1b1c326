# Mask R-CNN with SwiftFormer-L1 + FPN, COCO 2017, 1x (reported: 41.2 box AP / 38.1 mask AP on
# val2017), trained with the EfficientFormer recipe the SwiftFormer paper follows (see
# _base_/schedule_swiftformer_det_1x.py). The backbone starts from the authors' ImageNet-1k release
# (put `SwiftFormer_L1_ckpt.pth` in checkpoints/; use the files published after the July 2023
# attention fix: older ones load without error but compute the wrong features with this code). The
# per-output BatchNorms norm0..norm6 start fresh and the backbone's BatchNorms train, as in the
# EfficientFormer recipe.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_swiftformer_det_1x.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwiftFormer',
        arch='l1',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/SwiftFormer_L1_ckpt.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
