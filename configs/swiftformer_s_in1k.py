# SwiftFormer-S on ImageNet-1k, 224x224, the authors' recipe with distillation (see
# _base_/swiftformer_in1k.py) without mixup and cutmix (dist_train.sh: --mixup 0 --cutmix 0), so the
# loss is cross-entropy with label smoothing 0.1 on hard labels. Reported: 78.5 top-1.
_base_ = ['./_base_/swiftformer_in1k.py']

model = dict(backbone=dict(arch='s'), head=dict(in_channels=224), train_cfg=None)
