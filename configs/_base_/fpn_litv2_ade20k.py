# Semantic FPN with a LITv2 backbone on ADE20K: the authors' setup (segmentation/configs/litv2/ and
# fpn_r50_lit.py in their repository; see fpn_ade20k.py and schedule_litv2_seg_80k.py). The backbone
# gives its four stages (strides 4..32; alpha 0.9, local windows [0, 0, 2, 1]) to mmseg's FPN; no
# norm in the neck, SyncBN in the head, as theirs. Drop path S 0.2, M 0.2, B 0.3 (their segmentation
# configs; M's is lower than its ImageNet 0.3); no activation checkpointing (their configs set
# use_checkpoint=False; `--cfg-options model.backbone.with_cp=True` saves memory). The variant files
# set the arch, the drop path, the FPN inputs and the ImageNet-1k checkpoint.
_base_ = ['./fpn_ade20k.py', './schedule_litv2_seg_80k.py']

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

train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16 images per step
