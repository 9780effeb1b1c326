# RetinaNet with SwiftFormer-L1 + FPN, COCO 2017, 1x. No RetinaNet result or recipe was published for
# SwiftFormer: this config uses the Mask R-CNN optimiser settings (EfficientFormer recipe: AdamW lr 2e-4,
# weight decay 1e-4, warm-up 500 iterations from 1e-6, steps 8/11, 16 images per step) with mmdet's
# standard RetinaNet: FPN on stages 2-4 (strides 8, 16, 32) plus two extra stride-2 convs (64, 128).
# Stage 1 is not an output, so it has no output norm (no unused parameter under DDP).
# There is no paper number to compare with.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/schedule_swiftformer_det_1x.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwiftFormer',
        arch='l1',
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/SwiftFormer_L1_ckpt.pth')),
    neck=dict(in_channels=[96, 192, 384], start_level=0, add_extra_convs='on_input', num_outs=5))
