# Semantic FPN with SHViT-S4, ADE20K, 512x512, 40k iterations. The SHViT paper reports no
# segmentation result (no reference number exists) and its authors released no segmentation code:
# this config is our choice. Recipe: that of the SwiftFormer configs (EfficientFormer's: batch 32,
# AdamW lr 2e-4, weight decay 1e-4, poly 0.9; see _base_/schedule_swiftformer_seg_40k.py), the
# backbone's BatchNorms training. SHViT's stages are at strides 16, 32, 64, so the neck is SHViT's
# detection neck EfficientViTFPN: two transposed 2x convs on the finest (merged) lateral make
# strides 4 and 8, giving 5 levels (strides 4, 8, 16, 32, 64) of 256 channels; mmseg's FPNHead reads
# all five (the stride-64 one through 4 upsampling stages), so that no neck or backbone parameter is
# unused under DDP. Backbone from the authors' ImageNet-1k release `shvit_s4.pth`.
_base_ = ['./_base_/fpn_ade20k.py', './_base_/schedule_swiftformer_seg_40k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='SHViT',
        arch='s4',
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/shvit_s4.pth')),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[224, 336, 448],
        out_channels=256,
        start_level=0,
        num_outs=5,
        num_extra_trans_convs=2),  # strides 4, 8 (transposed convs), 16, 32, 64 (stages)
    decode_head=dict(
        in_channels=[256] * 5,
        in_index=[0, 1, 2, 3, 4],
        feature_strides=[4, 8, 16, 32, 64]))

train_dataloader = dict(batch_size=4)  # x 8 GPUs = 32 images per step
