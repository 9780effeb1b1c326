# Semantic FPN on ADE20K (Kirillov et al., Panoptic FPN, CVPR 2019), the setting of the SwiftFormer
# (EfficientFormer recipe) and LITv2 segmentation results: mmseg's `fpn_r50.py` model (FPN neck of
# 4 levels x 256 channels on strides 4..32, FPNHead of 128 channels, dropout 0.1, SyncBN in the head,
# cross-entropy) with the backbone swapped by the configs, mmseg's ADE20K data (random resize of
# (2048, 512) x 0.5-2.0, 512x512 crops with cat_max_ratio 0.75, flip, photometric distortion; test:
# resize to (2048, 512) keeping the ratio, whole-image inference) and runtime. 150 classes,
# `reduce_zero_label=True`: label 0 ("other") of the PNGs is ignored (255), classes 1..150 -> 0..149.
#
# Data: data/ade/ADEChallengeData2016/{images,annotations}/{training,validation}, the layout of the
# ADEChallengeData2016.zip release. SyncBN needs distributed training on GPUs: in a single-process
# run mmengine's Runner turns it back into BatchNorm, and so do CPU launches (gloo) through
# tools/dist_train.sh (effvit_mm.engine.launch.setup_cpu_distributed). `python tools/dataset_converters/generate_data.py
# ade20k` writes a small ADE20K-style set (see effvit_mm/datasets/synthetic_ade20k.py).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
]

custom_imports = dict(imports=['effvit_mm'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    pretrained=None,  # the backbones load their ImageNet weights through init_cfg
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150))
