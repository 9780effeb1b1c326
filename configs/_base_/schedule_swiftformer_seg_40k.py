# SwiftFormer segmentation recipe. SwiftFormer published Semantic FPN results trained with
# EfficientFormer's segmentation recipe (its own segmentation code was never released): 40k
# iterations, 32 images per step (4 per GPU x 8 GPUs), AdamW lr 2e-4, weight decay 1e-4 on all
# parameters, poly decay (power 0.9) per iteration, no warm-up, fp32. The end lr is 0 (mmcv's poly
# default; the recipe gives no floor). Checkpoints and mIoU on the validation set every 4k iterations.
# `--auto-scale-lr` rescales the lr for another total batch size.
_base_ = ['mmseg::_base_/schedules/schedule_40k.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000, by_epoch=False)]
# The model configs set train_dataloader.batch_size=4 (x 8 GPUs = 32).
auto_scale_lr = dict(enable=False, base_batch_size=32)
