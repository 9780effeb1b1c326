# Semantic FPN with SwiftFormer-L1, ADE20K, 512x512, 40k iterations (reported: 41.4 mIoU on the
# validation set, single scale), EfficientFormer's recipe (see _base_/fpn_swiftformer_ade20k.py).
# The backbone starts from the authors' ImageNet-1k release (put `SwiftFormer_L1_ckpt.pth` in
# checkpoints/; use the files published after the July 2023 attention fix).
_base_ = ['./_base_/fpn_swiftformer_ade20k.py']
