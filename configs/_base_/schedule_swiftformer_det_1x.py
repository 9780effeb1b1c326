# SwiftFormer detection recipe. SwiftFormer published Mask R-CNN results trained with EfficientFormer's
# detection recipe (its own detection code was never released): 1x (12 epochs, lr steps at 8 and 11),
# linear warm-up of 500 iterations from 1e-6 of the lr, AdamW lr 2e-4, weight decay 1e-4, 32 images per
# step (4 per GPU x 8 GPUs; the configs set batch_size=4). `--auto-scale-lr` rescales the lr for another
# total batch size.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
