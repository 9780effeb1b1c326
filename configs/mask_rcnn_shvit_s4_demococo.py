# The README's main job: mask_rcnn_shvit_s4_coco.py trained from scratch on the generated COCO-format
# set (`tools/dataset_converters/generate_data.py coco --out data/demo_coco`: rectangles, ellipses and triangles with
# polygon masks, 256x192) for a short CPU schedule (about 6 minutes on 2 cores);
# it is evaluated once, by tools/test.py (tools/run_demo.sh), not during training. No pretrained weights (nothing is downloaded),
# so the backbone's BatchNorms train (norm_eval=False) and the lr is higher with a short warm-up.
_base_ = ['./mask_rcnn_shvit_s4_coco.py']

data_root = 'data/demo_coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'))
img_scale = (256, 192)
max_epochs = 8

model = dict(
    backbone=dict(norm_eval=False, init_cfg=None),
    rpn_head=dict(anchor_generator=dict(scales=[4])),  # small images: anchors of 16..256 px
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
val_dataloader = val_evaluator = val_cfg = None

train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs))
