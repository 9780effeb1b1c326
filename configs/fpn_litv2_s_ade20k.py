# Semantic FPN with LITv2-S, ADE20K, 512x512, 80k iterations: the authors' setup (reported: 44.3 mIoU
# on the validation set, single scale; see _base_/fpn_litv2_ade20k.py). Backbone from the authors'
# ImageNet-1k release `litv2_s.pth`; drop path 0.2.
_base_ = ['./_base_/fpn_litv2_ade20k.py']
