# RetinaNet with SHViT-S4 + EfficientViTFPN, COCO 2017, 1x: the SHViT paper's setup
# (reported: 38.8 AP on val2017). Backbone from the authors' ImageNet-1k release `shvit_s4.pth`.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
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
        add_extra_convs='on_input',
        num_extra_trans_convs=1))  # strides 8 (transposed conv), 16, 32, 64 (stages), 128 (extra conv)
