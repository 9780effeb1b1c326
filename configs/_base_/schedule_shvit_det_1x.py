# SHViT detection recipe (SHViT paper / authors' mmdet configs): 1x schedule (12 epochs, lr steps at
# 8 and 11, linear warm-up of 500 iterations from 1e-3), AdamW lr 1e-4, weight decay 0.05, 2 images
# per GPU x 8 GPUs. `--auto-scale-lr` rescales the lr for another total batch size.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
auto_scale_lr = dict(enable=False, base_batch_size=16)
