# The README's classification example: shvit_s1_in1k.py trained from scratch on the generated
# ImageNet-style set (`tools/dataset_converters/generate_data.py imagenet --out data/demo_imagenet --num-classes 6`:
# 6 classes of coloured shapes on noise, 64x64, 64 train / 16 val images per class, in class folders
# n00000000..n00000005 in label order, named in meta/classes.txt)
# for a short CPU schedule. The recipe's optimiser stays (AdamW, AGC 0.02, no decay on biases and
# 1-D parameters); mixup / cutmix, RandAugment and erasing, which need hundreds of epochs, are off, the
# lr is higher with a one-epoch warm-up, every image is seen once an epoch (no repeated augmentation).
# No pretrained weights (nothing is downloaded).
_base_ = ['./shvit_s1_in1k.py']

data_root = 'data/demo_imagenet/'
classes = ('red disc', 'green square', 'blue triangle', 'yellow cross', 'magenta disc', 'cyan square')
img_size = 64
max_epochs = 8

data_preprocessor = dict(num_classes=len(classes))
model = dict(head=dict(num_classes=len(classes), topk=(1, )), train_cfg=None)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    drop_last=False, sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),  # every image once an epoch
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs))
