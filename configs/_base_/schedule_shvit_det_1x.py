# SHViT detection recipe (the authors' downstream/ configs, mmdet 2.25): 1x schedule (12 epochs, lr
# steps at 8 and 11, linear warm-up of 500 iterations from 1e-3 of the lr), AdamW lr 1e-4, weight
# decay 0.05 on all parameters (their no-decay keys `attention_biases` name no SHViT parameter), no
# gradient clipping, fp32, 2 images per GPU x 8 GPUs. `--auto-scale-lr` rescales the lr for another
# total batch size.
#
# The warm-up is mmcv 1.x's, translated exactly: iteration i < 500 trains at
# lr * (1 - (1 - i / 500) * (1 - 1e-3)) and iteration 500 at the full lr. mmengine's LinearLR reaches
# its end factor at its last step (end - 1), so end=501 (mmdet 3's schedule_1x.py has end=500, which
# reaches the full lr one iteration early, on a slightly steeper ramp).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=501),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
