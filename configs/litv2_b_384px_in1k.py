# LITv2-B fine-tuned at 384x384 from the 224 model, the authors' recipe (configs/litv2-base-finetune-
# 384.yaml on top of _base_/litv2_in1k.py): 30 epochs, base lr 2e-5 per 512 images -> 4e-5 at 1024
# (warm-up from 2e-8 -> 4e-8, cosine to 2e-7 -> 4e-7, the authors' linear scaling; timm's scheduler
# stepped per update as in the 224 recipe), weight decay 1e-8, 5 warm-up epochs, drop path 0.5, the
# augmentation of the 224 recipe at 384 (RandomResizedCrop 384), and at test a plain resize to
# 384x384 without centre crop (TEST.CROP False).
# Reported: 84.7 top-1.
#
# Initialisation: the whole 224 classifier (backbone, final norm, head), as the authors' fine-tune
# (MODEL.PRETRAINED) does. Convert their release to our classifier's key names first:
#     python tools/model_converters/convert_checkpoint.py checkpoints/litv2_b.pth checkpoints/litv2_b_mmpretrain.pth
# or point `load_from` at the last checkpoint of a litv2_b_in1k.py run.
_base_ = ['./litv2_b_in1k.py']

load_from = 'checkpoints/litv2_b_mmpretrain.pth'

img_size = 384
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),  # BGR mean / std (pad_val: rounded mean)
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

lr = 2e-5 * 1024 / 512
optim_wrapper = dict(optimizer=dict(lr=lr, weight_decay=1e-8))
max_epochs = 30
param_scheduler = dict(t_initial=max_epochs, warmup_t=5, warmup_lr_init=2e-8 * 1024 / 512, lr_min=2e-7 * 1024 / 512)
train_cfg = dict(max_epochs=max_epochs)
