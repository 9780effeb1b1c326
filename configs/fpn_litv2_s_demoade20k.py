# The README's segmentation example: fpn_litv2_s_ade20k.py trained from scratch on the generated
# ADE20K-style set (`tools/dataset_converters/generate_data.py ade20k --out data/demo_ade20k`: 4 classes, background and
# textured shapes, 128x96, 64 train / 16 val images, label 0 ignored as in ADE20K) for a short CPU
# schedule: 64x64 crops, batch 4, AdamW lr 1e-3 with poly decay, fp32, no pretrained weights
# (nothing is downloaded). mmseg's ADE20KDataset knows only the 150 ADE20K classes, so the set is read
# with BaseSegDataset and its own classes (effvit_mm.datasets.synthetic_ade20k).
_base_ = ['./fpn_litv2_s_ade20k.py']

data_root = 'data/demo_ade20k/'
metainfo = dict(classes=('background', 'red_flat', 'green_hstripes', 'blue_vstripes'),
                palette=[[40, 40, 40], [220, 40, 40], [40, 200, 60], [50, 80, 230]])
img_scale, crop_size = (128, 96), (64, 64)
max_iters = 300

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    decode_head=dict(num_classes=len(metainfo['classes'])))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(_delete_=True, type='BaseSegDataset', data_root=data_root, img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True, metainfo=metainfo)
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
val_dataloader = val_evaluator = val_cfg = None

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(by_epoch=False, interval=max_iters))
