# LITv2 segmentation recipe (the authors' mmseg 0.x configs, segmentation/configs/litv2/ and their
# schedule_80k.py): 80k iterations, 16 images per step (2 per GPU x 8 GPUs), AdamW lr 1e-4, weight
# decay 1e-4 on all parameters, poly decay (power 0.9) per iteration to 1e-6, no warm-up, no gradient
# clipping, fp32 (their segmentation code sets no fp16), SyncBN in the decode head. Checkpoints and
# mIoU on the validation set every 8k iterations. `--auto-scale-lr` rescales the lr.
#
# The poly decay is mmcv 1.x's, translated exactly: iteration i trains at
# (lr - 1e-6) * (1 - i / 80000) ** 0.9 + 1e-6. mmengine's PolyLR reaches eta_min at its last step
# (end - 1), so end=80001 (mmseg 1.x's schedule_80k.py has end=80000: the minimum one iteration early).
#
# DTM offsets train at the full lr, as in the authors' runs: their DeformConv2dPack tags the offset
# conv with lr_mult=0.1, but no mmcv / mmseg optimiser constructor reads that tag (see
# schedule_litv2_det_1x.py for the line that trains them at 0.1x).
_base_ = ['mmseg::_base_/schedules/schedule_80k.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=80001, by_epoch=False)]
# The model configs set train_dataloader.batch_size=2 (x 8 GPUs = 16).
auto_scale_lr = dict(enable=False, base_batch_size=16)
