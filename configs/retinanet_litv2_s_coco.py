# RetinaNet with LITv2-S + FPN, COCO 2017, 1x: the LITv2 authors' setup (reported: 44.0 AP on
# val2017). Backbone from the authors' ImageNet-1k release `litv2_s.pth`. FPN on stages 2-4
# (strides 8, 16, 32) plus two extra stride-2 convs on the last input (strides 64, 128).
# Mixed precision, AdamW lr 1e-4, weight decay 1e-4 on all parameters (the authors' RetinaNet
# configs carry a no-decay rule for norms in a form mmdet ignores, so their runs decayed norms too),
# DTM offsets at the full lr (see _base_/schedule_litv2_det_1x.py).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
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
    neck=dict(in_channels=[96, 192, 384, 768], start_level=1, add_extra_convs='on_input', num_outs=5))

optim_wrapper = dict(optimizer=dict(lr=1e-4))
