# SwiftFormer segmentation recipe. SwiftFormer published Semantic FPN results trained with
# EfficientFormer's segmentation recipe (its own segmentation code was never released;
# EfficientFormer's segmentation/configs/sem_fpn/, mmseg 0.19, `gpu_multiples = 2`): 40k iterations,
# 32 images per step (4 per GPU x 8 GPUs), AdamW lr 2e-4, weight decay 1e-4 on all parameters, poly
# decay (power 0.9) per iteration to 0 (their min_lr=0.0), no warm-up, fp32. Checkpoints and mIoU on
# the validation set every 4k iterations. `--auto-scale-lr` rescales the lr for another total batch
# size.
#
# The poly decay is mmcv 1.x's, translated exactly: iteration i trains at lr * (1 - i / 40000) ** 0.9.
# mmengine's PolyLR reaches eta_min at its last step (end - 1), hence end=40001.
_base_ = ['mmseg::_base_/schedules/schedule_40k.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40001, by_epoch=False)]
# The model configs set train_dataloader.batch_size=4 (x 8 GPUs = 32).
auto_scale_lr = dict(enable=False, base_batch_size=32)
