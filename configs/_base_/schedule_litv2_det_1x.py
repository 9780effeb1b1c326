# LITv2 detection recipe (the authors' mmdet 2.11 configs, detection/configs/litv2/ up to their commit
# f320e43, which produced the published results; their later mmdet 3 port keeps the old keys, which
# mmengine ignores): 1x (12 epochs, lr steps at 8 and 11, linear warm-up of 500 iterations from 1e-3
# of the lr), AdamW with weight decay 1e-4, mixed precision (apex fp16 in their runs), no gradient
# clipping, 2 images per GPU x 8 GPUs. The lr (1e-4 RetinaNet, 2e-4 Mask R-CNN) and the Mask R-CNN's
# no-decay rule for parameters named `norm` are set by the configs. `--auto-scale-lr` rescales the lr.
#
# The warm-up is mmcv 1.x's, translated exactly: iteration i < 500 trains at
# lr * (1 - (1 - i / 500) * (1 - 1e-3)) and iteration 500 at the full lr. mmengine's LinearLR reaches
# its end factor at its last step (end - 1), hence end=501.
#
# DTM offsets train at the full lr, as in the authors' runs: their DeformConv2dPack tags the offset
# conv with lr_mult=0.1, but no mmcv / mmdet optimiser constructor reads that tag (their ImageNet
# recipe puts the offsets at 0.01x through a group of its own). To train them at 0.1x, add
# `paramwise_cfg=dict(custom_keys={'conv_offset': dict(lr_mult=0.1)})` to optim_wrapper.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=501),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
