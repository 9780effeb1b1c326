# SwiftFormer detection recipe. SwiftFormer published Mask R-CNN results trained with EfficientFormer's
# detection recipe (its own detection code was never released; EfficientFormer's detection/configs,
# mmdet 2.19): 1x (12 epochs, lr steps at 8 and 11), linear warm-up of 500 iterations from 1e-6 of the
# lr (their schedule_1x.py: `warmup_ratio=1e-6  # 0.001`), AdamW lr 2e-4, weight decay 1e-4 on all
# parameters, no gradient clipping, fp32, 16 images per step (samples_per_gpu=2 x 8 GPUs, their
# README's command; mmdet's COCO data base has batch_size=2). `--auto-scale-lr` rescales the lr.
#
# The warm-up is mmcv 1.x's, translated exactly: iteration i < 500 trains at
# lr * (1 - (1 - i / 500) * (1 - 1e-6)) and iteration 500 at the full lr. mmengine's LinearLR reaches
# its end factor at its last step (end - 1), hence end=501.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=501),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
